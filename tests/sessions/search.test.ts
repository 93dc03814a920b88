/** GET /api/sessions?q=: the caller's sessions whose title or messages match, best first, with a snippet. */
import assert from "node:assert/strict";
import { startTestApi } from "../support/api.ts";
import { addMessage, createSession } from "../support/fixtures.ts";
import { json, send } from "../support/http.ts";

const api = await startTestApi();

async function library() {
  const [me, other] = [await api.user(), await api.user()];
  const titled = await createSession(api.db.admin, me.id, "Trip to Rome");
  const chatty = await createSession(api.db.admin, me.id, "Holiday ideas");
  await addMessage(api.db.admin, chatty, "user", "What should I see at night?");
  await addMessage(
    api.db.admin,
    chatty,
    "assistant",
    "The Colosseum in Rome is lit at night, and the Trevi fountain too.",
  );
  const unrelated = await createSession(api.db.admin, me.id, "Tax forms");
  await addMessage(api.db.admin, unrelated, "user", "How do I file taxes?");
  const theirs = await createSession(api.db.admin, other.id, "Rome, Rome, Rome");
  await addMessage(api.db.admin, theirs, "user", "Rome secrets of another user");
  return { me, titled, chatty };
}

Deno.test("search finds the caller's sessions by title or message, best match first, with a highlighted snippet", async () => {
  const { me, titled, chatty } = await library();
  const { status, body } = await json(send(api, me, "GET", "/api/sessions?q=rome"));
  assert.equal(status, 200);
  assert.deepEqual(body.map((s: { id: string }) => s.id), [titled, chatty]);
  assert.deepEqual(Object.keys(body[0]), [
    "id",
    "title",
    "created_at",
    "updated_at",
    "snippet",
    // the tree (issue 17): the message that matched (null: the title)
    "message_id",
  ]);
  assert.equal(body[0].snippet, "Trip to **Rome**");
  assert.equal(body[0].message_id, null);
  const [matched] = await api.db.admin<[{ id: string }]>`
    select id from public.messages where chat_session_id = ${chatty} and content like '%Colosseum%'`;
  assert.equal(body[1].message_id, matched.id);
  assert.match(body[1].snippet, /Colosseum in \*\*Rome\*\* is lit/);
  assert.ok(!JSON.stringify(body).includes("another user"));
});

Deno.test("search pages with limit, the query kept in the Link", async () => {
  const { me, titled, chatty } = await library();
  const first = await send(api, me, "GET", "/api/sessions?q=rome&limit=1");
  assert.deepEqual((await first.json()).map((s: { id: string }) => s.id), [titled]);
  const link = first.headers.get("link")!;
  assert.match(link, /^<\?q=rome&limit=1&before=[\w.-]+>; rel="next"$/);
  const second = await send(api, me, "GET", `/api/sessions${link.slice(1, link.indexOf(">"))}`);
  assert.deepEqual((await second.json()).map((s: { id: string }) => s.id), [chatty]);
  assert.equal(second.headers.get("link"), null);
  // a search cursor is bound to its query
  const other = await json(
    send(api, me, "GET", `/api/sessions?q=taxes&before=${first.headers.get("x-next-cursor")}`),
  );
  assert.equal(other.status, 422);
});

Deno.test("search: no match is an empty list; a blank or NUL query is a 422", async () => {
  const { me } = await library();
  assert.deepEqual(await json(send(api, me, "GET", "/api/sessions?q=zanzibar")), {
    status: 200,
    body: [],
  });
  for (const q of ["", "%20%20", "a%00b"]) {
    const { status, body } = await json(send(api, me, "GET", `/api/sessions?q=${q}`));
    assert.equal(status, 422, q);
    assert.deepEqual(body.detail[0].loc, ["query", "q"]);
  }
});
