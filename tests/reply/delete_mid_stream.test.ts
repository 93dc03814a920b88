/**
 * Deleting a session while its reply streams, from this instance or another
 * one over the same database: the model call stops, the reply's slot is
 * freed, the stream ends with a clear event, and nothing is logged as an error.
 */
import assert from "node:assert/strict";
import { signAccessToken } from "../../local/signing_keys.ts";
import { startTestApi, type TestApi, type TestUser } from "../support/api.ts";
import { eventually } from "../support/eventually.ts";
import { recordFigure } from "../support/figures.ts";
import { readUntil, send, stored } from "../support/http.ts";

const api = await startTestApi({ env: { REPLY_POLL_MS: "100" } });
// a second instance of the function over the same database, as on another worker
const other = await startTestApi({ db: api.db, env: { REPLY_POLL_MS: "100" } });
const words = Array.from({ length: 200 }, (_, i) => `word${i} `);

const expectedEnd: Record<string, RegExp> = {
  data:
    /\n3:"The session was deleted while this reply was being written"\nd:\{"finishReason":"error"[^\n]*\n$/,
  sse:
    /event: error\ndata: \{[^\n]*"finish_reason":"session_deleted"[^\n]*"detail":"The session was deleted while this reply was being written"\}\n\n$/,
  text: /word3 [^\n]*$/,
};

const DELETED = "Deleting a session while its reply streams (REPLY_POLL_MS=100)";

async function deleteWhileStreaming(protocol: string, deleter: TestApi, where: string) {
  api.model.script(() => ({ chunks: words, delayMs: 30 }));
  const user = await api.user();
  const session = crypto.randomUUID();
  const abandonedBefore = api.model.abandonedStreams;
  const logsBefore = api.logs.length;
  const response = await send(api, user, "POST", `/api/sessions/${session}?protocol=${protocol}`, {
    messages: [{ role: "user", content: "Talk a lot" }],
  });
  assert.equal(response.status, 200);
  const reader = response.body!.getReader();
  let received = await readUntil(reader, "word3");
  const [slots] = await api.db.admin`
    select count(*)::int as n from chat_private.replies where user_id = ${user.id}`;
  assert.equal(slots!.n, 1, "the reply holds a slot while it streams");

  // the same user, with a token the deleting instance trusts
  const token = deleter === api ? user.token : await signAccessToken(deleter.key, { id: user.id });
  const asUser: TestUser = { id: user.id, token, auth: { authorization: `Bearer ${token}` } };
  const deletedAt = performance.now();
  const deleted = await send(deleter, asUser, "DELETE", `/api/sessions/${session}`);
  assert.equal(deleted.status, 200);
  await deleted.body?.cancel();

  for (let next = await reader.read(); !next.done; next = await reader.read()) {
    received += new TextDecoder().decode(next.value);
  }
  const tookMs = performance.now() - deletedAt;
  await api.idle();
  assert.match(received, expectedEnd[protocol]!);
  assert.ok(!received.includes("word199"), "the reply was cut short");
  // the poll runs every 100 ms; the rest of the reply would take about 6 s
  assert.ok(tookMs < 2000, `the stream ended ${tookMs} ms after the delete was sent`);
  // the stand-in counts a stream its client abandoned once it notices the closed connection
  await eventually(
    () => Promise.resolve(api.model.abandonedStreams),
    (n) => n === abandonedBefore + 1,
    "the model call to be stopped",
  );
  assert.equal(api.model.openStreams, 0);
  const [after] = await api.db.admin`
    select count(*)::int as n from chat_private.replies where user_id = ${user.id}`;
  assert.equal(after!.n, 0, "the reply's slot is freed");
  assert.deepEqual(await stored(api, session), []);
  assert.deepEqual(api.logs.slice(logsBefore), [], "nothing logged");
  recordFigure(
    DELETED,
    `${protocol}, deleted ${where}: ms from sending the delete to the stream's end`,
    Math.round(tookMs),
  );
}

for (const protocol of ["data", "sse", "text"]) {
  Deno.test(`${protocol} protocol: deleting a session while its reply streams stops the model, frees the slot and ends the stream`, async () => {
    await deleteWhileStreaming(protocol, api, "on the same instance");
  });
}

Deno.test("deleting a session through another instance stops the reply streaming on this one", async () => {
  await deleteWhileStreaming("data", other, "through another instance");
});
