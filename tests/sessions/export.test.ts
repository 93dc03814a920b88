/** GET /api/sessions/:id/export: the whole conversation as a streamed download. */
import assert from "node:assert/strict";
import { startTestApi } from "../support/api.ts";
import { addConversation, createSession } from "../support/fixtures.ts";
import { json, send } from "../support/http.ts";

const api = await startTestApi();

async function conversation(userId: string, count: number) {
  const session = await createSession(api.db.admin, userId, "Exported chat");
  await addConversation(
    api.db.admin,
    session,
    count,
    (i) => `message ${i + 1}: "quotes", ünïcødé 🙂\nsecond line`,
  );
  return session;
}

Deno.test("export as JSON: the session and every message in order, as a download, streamed in pages", async () => {
  const user = await api.user();
  const session = await conversation(user.id, 1234);
  const response = await send(api, user, "GET", `/api/sessions/${session}/export`);
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("content-type"), "application/json; charset=utf-8");
  assert.equal(
    response.headers.get("content-disposition"),
    `attachment; filename="chat-${session}.json"`,
  );
  let chunks = 0;
  let text = "";
  const reader = response.body!.getReader();
  for (let r = await reader.read(); !r.done; r = await reader.read()) {
    chunks++;
    text += new TextDecoder().decode(r.value);
  }
  assert.ok(chunks >= 3, `streamed in pages, not at once (${chunks} chunks)`);
  const exported = JSON.parse(text);
  assert.equal(exported.session.id, session);
  assert.equal(exported.session.title, "Exported chat");
  assert.equal(exported.messages.length, 1234);
  const history = (await json(send(api, user, "GET", `/api/sessions/${session}`))).body;
  assert.deepEqual(exported.messages, history);
});

Deno.test("export as Markdown: a title, then each message under its role and time", async () => {
  const user = await api.user();
  const session = await conversation(user.id, 3);
  const response = await send(api, user, "GET", `/api/sessions/${session}/export?format=markdown`);
  assert.equal(response.headers.get("content-type"), "text/markdown; charset=utf-8");
  assert.equal(
    response.headers.get("content-disposition"),
    `attachment; filename="chat-${session}.md"`,
  );
  const text = await response.text();
  assert.match(text, /^# Exported chat\n\n_Started .+, last active .+\._\n\n/);
  assert.match(
    text,
    /### User · \S+\n\nmessage 1: "quotes", ünïcødé 🙂\nsecond line\n\n### Assistant · /,
  );
  assert.equal(text.match(/^### /gm)!.length, 3);
});

Deno.test("export: an empty session, another user's session (404) and an unknown format (422)", async () => {
  const [me, other] = [await api.user(), await api.user()];
  const empty = await createSession(api.db.admin, me.id, "Nothing yet");
  const exported = JSON.parse(
    await (await send(api, me, "GET", `/api/sessions/${empty}/export`)).text(),
  );
  assert.deepEqual(exported.messages, []);
  const theirs = await conversation(other.id, 2);
  assert.deepEqual(await json(send(api, me, "GET", `/api/sessions/${theirs}/export`)), {
    status: 404,
    body: { detail: "Chat session not found" },
  });
  const bad = await json(send(api, me, "GET", `/api/sessions/${empty}/export?format=pdf`));
  assert.equal(bad.status, 422);
  assert.deepEqual(bad.body.detail[0].loc, ["query", "format"]);
});
