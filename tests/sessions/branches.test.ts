/**
 * The conversation tree over HTTP, as curl and any client use it: edit and
 * regenerate with a documented body, read any branch (`?leaf=`, pages), make
 * one current (`PUT .../current`), delete one (`DELETE .../messages/{id}`),
 * and every route following the current branch: the prompt, export, search,
 * re-attach, usage. Another user's ids are 404, malformed ones 422.
 */
import assert from "node:assert/strict";
import type { ChatRequest, Script } from "../../local/stand_in_model.ts";
import { startTestApi, type TestUser } from "../support/api.ts";
import { json, readUntil, send, stored } from "../support/http.ts";

const api = await startTestApi({ env: { MAX_BODY_BYTES: "65536" } });

let calls = 0;
const echo = (request: ChatRequest): Script => ({
  chunks: [`re: ${request.messages.at(-1)!.content} #${++calls}`],
});

/** A send as curl makes it (plain text), with any extra body fields; the reply's text. */
async function post(user: TestUser, session: string, body: Record<string, unknown>) {
  const response = await send(api, user, "POST", `/api/sessions/${session}?protocol=text`, body);
  const text = await response.text();
  await api.idle();
  return { status: response.status, text, headers: response.headers };
}

const say = (user: TestUser, session: string, content: string, id?: string) =>
  post(user, session, { messages: [{ role: "user", content, ...(id ? { id } : {}) }] });

interface Read {
  id: string;
  role: string;
  content: string;
  parent_id: string | null;
  sibling_ids: string[];
}

const read = async (user: TestUser, session: string, query = "") => {
  const { status, body } = await json(send(api, user, "GET", `/api/sessions/${session}${query}`));
  assert.equal(status, 200, JSON.stringify(body));
  return body as Read[];
};
const contents = (branch: Read[]) => branch.map((m) => m.content);

Deno.test("curl edits with messageId and regenerates with trigger; each answers on its own branch, which becomes current", async () => {
  api.model.script(echo);
  const user = await api.user();
  const session = crypto.randomUUID();
  await say(user, session, "one", "c-1");
  await say(user, session, "two", "c-2");
  const [, , two] = await read(user, session);

  // an edit: the new text beside "two", its own id, answered on its branch
  const edit = await post(user, session, {
    messages: [{ role: "user", content: "two, edited", id: "c-3" }],
    messageId: two!.id,
  });
  assert.equal(edit.status, 200);
  assert.match(edit.text, /^re: two, edited #\d+$/);
  const edited = await read(user, session);
  assert.deepEqual(contents(edited).slice(2), ["two, edited", edit.text]);
  assert.deepEqual(edited[2]!.sibling_ids, [two!.id, edited[2]!.id]);
  assert.equal(edited[2]!.id, edit.headers.get("x-user-message-id"));
  // sent again with its id, the edit is a retry like any send: its reply is replayed
  const calledBefore = api.model.requests.length;
  const again = await post(user, session, {
    messages: [{ role: "user", content: "two, edited", id: "c-3" }],
    messageId: two!.id,
  });
  assert.equal(again.text, edit.text);
  assert.equal(api.model.requests.length, calledBefore);

  // a regeneration: no message of its own needed; the current branch's last is answered again
  const regenerated = await post(user, session, { messages: [], trigger: "regenerate-message" });
  assert.equal(regenerated.status, 200);
  const after = await read(user, session);
  assert.deepEqual(contents(after).slice(2), ["two, edited", regenerated.text]);
  assert.equal(after[3]!.sibling_ids.length, 2);
  assert.equal(api.model.requests.at(-1)!.messages.at(-1)!.content, "two, edited");
});

Deno.test("ai 3/4 reload(): the same message again is a retry and replays; trigger regenerate-message asks for a new reply", async () => {
  api.model.script(echo);
  const user = await api.user();
  const session = crypto.randomUUID();
  const first = await say(user, session, "hello", "m-1");
  const calledBefore = api.model.requests.length;
  // reload() as ai 3/4 sends it: the messages without the last reply, nothing else
  assert.equal((await say(user, session, "hello", "m-1")).text, first.text);
  assert.equal(api.model.requests.length, calledBefore);
  // reload({ body: { trigger: "regenerate-message" } })
  const fresh = await post(user, session, {
    messages: [{ role: "user", content: "hello", id: "m-1" }],
    trigger: "regenerate-message",
  });
  assert.notEqual(fresh.text, first.text);
  assert.equal(api.model.requests.length, calledBefore + 1);
  assert.deepEqual(contents(await read(user, session)), ["hello", fresh.text]);
  // and a retry now replays the newest reply
  assert.equal((await say(user, session, "hello", "m-1")).text, fresh.text);
});

Deno.test("a regeneration of a message whose reply is being written is a 409 with Retry-After: one model call per message", async () => {
  api.model.script(() => ({ chunks: ["slow ", "reply"], delayMs: 300 }));
  const user = await api.user();
  const session = crypto.randomUUID();
  const streaming = await send(api, user, "POST", `/api/sessions/${session}?protocol=text`, {
    messages: [{ role: "user", content: "hi", id: "m-1" }],
  });
  const reader = streaming.body!.getReader();
  await readUntil(reader, "slow");
  const calls = api.model.requests.length;
  const busy = await json(send(api, user, "POST", `/api/sessions/${session}?protocol=text`, {
    messages: [{ role: "user", content: "hi", id: "m-1" }],
    trigger: "regenerate-message",
  }));
  assert.equal(busy.status, 409);
  assert.match(busy.body.detail, /already being written/);
  assert.equal(api.model.requests.length, calls);
  // re-attaching follows the reply being written
  const followed = await send(api, user, "GET", `/api/sessions/${session}/stream?protocol=text`);
  assert.equal(followed.status, 200);
  while (!(await reader.read()).done) { /* the rest of the reply */ }
  assert.equal(await followed.text(), "slow reply");
  await api.idle();
});

Deno.test("re-attaching follows whatever reply is being written in the session: a regeneration's too", async () => {
  api.model.script(echo);
  const user = await api.user();
  const session = crypto.randomUUID();
  await say(user, session, "hi");
  api.model.script(() => ({ chunks: ["second ", "thoughts"], delayMs: 200 }));
  const regenerating = await send(api, user, "POST", `/api/sessions/${session}?protocol=text`, {
    messages: [],
    trigger: "regenerate-message",
  });
  const reader = regenerating.body!.getReader();
  await readUntil(reader, "second");
  const followed = await send(api, user, "GET", `/api/sessions/${session}/stream?protocol=text`);
  assert.equal(followed.status, 200);
  assert.equal(
    followed.headers.get("x-assistant-message-id"),
    regenerating.headers.get("x-assistant-message-id"),
  );
  while (!(await reader.read()).done) { /* the rest */ }
  assert.equal(await followed.text(), "second thoughts");
  await api.idle();
  assert.deepEqual(contents(await read(user, session)), ["hi", "second thoughts"]);
});

Deno.test("names that do not fit: an unknown or another user's message is 404, a reply to edit 422, bad ids 422", async () => {
  api.model.script(echo);
  const [user, other] = [await api.user(), await api.user()];
  const session = crypto.randomUUID();
  await say(user, session, "mine");
  const [mine, reply] = await read(user, session);
  const theirs = crypto.randomUUID();
  await say(other, theirs, "theirs");
  const [their] = await read(other, theirs);
  const before = await stored(api, session);

  const edit = (body: Record<string, unknown>) =>
    json(send(api, user, "POST", `/api/sessions/${session}`, {
      messages: [{ role: "user", content: "x" }],
      ...body,
    }));
  for (const messageId of ["nope", crypto.randomUUID(), their!.id]) {
    const refused = await edit({ messageId });
    assert.deepEqual(refused, {
      status: 404,
      body: { detail: "Message not found in this session" },
    });
  }
  const onReply = await edit({ messageId: reply!.id });
  assert.equal(onReply.status, 422);
  assert.deepEqual(onReply.body.detail[0].loc, ["body", "messageId"]);
  assert.equal((await edit({ trigger: "continue" })).status, 422);
  assert.deepEqual(await stored(api, session), before);

  // reads and moves: another user's ids are 404, malformed ones 422
  const cases: [string, string, unknown, number][] = [
    ["GET", `/api/sessions/${session}?leaf=${their!.id}`, undefined, 404],
    ["GET", `/api/sessions/${session}?leaf=${their!.id}&limit=5`, undefined, 404],
    ["GET", `/api/sessions/${session}?leaf=not-a-uuid`, undefined, 422],
    ["PUT", `/api/sessions/${session}/current`, { message_id: their!.id }, 404],
    ["PUT", `/api/sessions/${theirs}/current`, { message_id: their!.id }, 404],
    ["PUT", `/api/sessions/${session}/current`, { message_id: "nope" }, 422],
    ["PUT", `/api/sessions/${session}/current`, {}, 422],
    ["PUT", `/api/sessions/${session}/current`, { message_id: "x".repeat(70_000) }, 413],
    ["DELETE", `/api/sessions/${session}/messages/${their!.id}`, undefined, 404],
    ["DELETE", `/api/sessions/${theirs}/messages/${their!.id}`, undefined, 404],
    ["DELETE", `/api/sessions/${session}/messages/nope`, undefined, 422],
  ];
  for (const [method, path, body, status] of cases) {
    const answer = await json(send(api, user, method, path, body));
    assert.equal(answer.status, status, `${method} ${path}: ${JSON.stringify(answer.body)}`);
  }
  assert.deepEqual(await stored(api, session), before);
  assert.equal((await read(other, theirs)).length, 2, "the other user's branch is untouched");
  assert.equal((await read(user, session))[0]!.id, mine!.id);
});

Deno.test("any branch reads by ?leaf= (through a message, to its newest leaf), in pages too; PUT .../current switches to it", async () => {
  api.model.script(echo);
  const user = await api.user();
  const session = crypto.randomUUID();
  for (const text of ["a", "b", "c"]) await say(user, session, text);
  const [a, , b] = await read(user, session);
  await post(user, session, { messages: [{ role: "user", content: "b2" }], messageId: b!.id });
  await say(user, session, "d");
  const current = await read(user, session);
  assert.deepEqual(contents(current).filter((_, i) => i % 2 === 0), ["a", "b2", "d"]);

  // the older branch through "b", to its newest leaf
  const older = await read(user, session, `?leaf=${b!.id}`);
  assert.deepEqual(contents(older).filter((_, i) => i % 2 === 0), ["a", "b", "c"]);
  // a page at a time, newest first; the cursor carries on up the branch it started on
  const page1 = await send(api, user, "GET", `/api/sessions/${session}?leaf=${b!.id}&limit=4`);
  const cursor = page1.headers.get("x-next-cursor")!;
  const page2 = await read(user, session, `?limit=4&before=${encodeURIComponent(cursor)}`);
  assert.deepEqual([...page2, ...await page1.json()], older);
  // reading it did not switch to it; PUT does
  assert.deepEqual(await read(user, session), current);
  const switched = await json(send(api, user, "PUT", `/api/sessions/${session}/current`, {
    message_id: a!.id.toUpperCase(),
  }));
  assert.deepEqual(switched, { status: 200, body: { current_message_id: current.at(-1)!.id } });
  const back = await json(send(api, user, "PUT", `/api/sessions/${session}/current`, {
    message_id: b!.id,
  }));
  assert.equal(back.body.current_message_id, older.at(-1)!.id);
  assert.deepEqual(await read(user, session), older);
  // the next send follows the branch switched to, and so does its prompt
  await say(user, session, "e");
  assert.deepEqual(
    api.model.requests.at(-1)!.messages.slice(1).map((m) => m.content).filter((_, i) =>
      i % 2 === 0
    ),
    ["a", "b", "c", "e"],
  );
});

Deno.test("DELETE .../messages/{id} deletes a branch (the message and all after it); the current leaf moves to what remains", async () => {
  api.model.script(echo);
  const user = await api.user();
  const session = crypto.randomUUID();
  for (const text of ["a", "b"]) await say(user, session, text);
  const [, , b] = await read(user, session);
  await post(user, session, { messages: [{ role: "user", content: "b2" }], messageId: b!.id });
  const withEdit = await read(user, session);
  const deleted = await json(
    send(api, user, "DELETE", `/api/sessions/${session}/messages/${withEdit[2]!.id}`),
  );
  assert.equal(deleted.status, 200);
  assert.equal(deleted.body.deleted, 2);
  // the current branch was in it: current moves to the newest leaf left under its parent
  const left = await read(user, session);
  assert.deepEqual(contents(left).filter((_, i) => i % 2 === 0), ["a", "b"]);
  assert.equal(deleted.body.current_message_id, left.at(-1)!.id);
  assert.deepEqual(left[2]!.sibling_ids, [b!.id]);
  // the first message takes the whole conversation with it; the session stays, empty
  const all = await json(
    send(api, user, "DELETE", `/api/sessions/${session}/messages/${left[0]!.id}`),
  );
  assert.deepEqual([all.body.deleted, all.body.current_message_id], [4, null]);
  assert.deepEqual(await read(user, session), []);
  assert.equal((await say(user, session, "fresh")).status, 200);
  assert.deepEqual(contents(await read(user, session))[0], "fresh");
});

Deno.test("export: markdown is the current branch; json ?branches=all carries the whole tree with parent ids and the current leaf", async () => {
  api.model.script(echo);
  const user = await api.user();
  const session = crypto.randomUUID();
  await say(user, session, "first");
  const [first] = await read(user, session);
  await post(user, session, {
    messages: [{ role: "user", content: "second" }],
    messageId: first!.id,
  });
  const markdown =
    await (await send(api, user, "GET", `/api/sessions/${session}/export?format=markdown`))
      .text();
  assert.match(markdown, /### User · \S+\n\nsecond\n\n/);
  assert.doesNotMatch(markdown, /\nfirst\n/);
  const branch = await (await send(api, user, "GET", `/api/sessions/${session}/export`)).json();
  assert.deepEqual(branch.messages, await read(user, session));
  const tree = await (await send(api, user, "GET", `/api/sessions/${session}/export?branches=all`))
    .json();
  assert.equal(tree.messages.length, 4);
  assert.equal(tree.session.current_message_id, branch.messages.at(-1).id);
  const byId = new Map(tree.messages.map((m: Read) => [m.id, m]));
  for (const m of tree.messages as Read[]) {
    assert.ok(m.parent_id === null || byId.has(m.parent_id), "every parent is in the export");
  }
  assert.deepEqual(tree.messages.filter((m: Read) => m.parent_id === null).length, 2);
  const bad = await json(
    send(api, user, "GET", `/api/sessions/${session}/export?format=markdown&branches=all`),
  );
  assert.equal(bad.status, 422);
  assert.deepEqual(bad.body.detail[0].loc, ["query", "branches"]);
});

Deno.test("search finds a message on any branch and names it; its branch reads by ?leaf=", async () => {
  api.model.script(echo);
  const user = await api.user();
  const session = crypto.randomUUID();
  await say(user, session, "tell me about zanzibar");
  const [question] = await read(user, session);
  await post(user, session, {
    messages: [{ role: "user", content: "tell me about mars" }],
    messageId: question!.id,
  });
  const { body } = await json(send(api, user, "GET", "/api/sessions?q=zanzibar"));
  assert.equal(body.length, 1);
  assert.ok((await stored(api, session)).some((m) => m.id === body[0].message_id));
  const branch = await read(user, session, `?leaf=${body[0].message_id}`);
  assert.ok(contents(branch).some((c) => c.includes("zanzibar")));
  assert.ok(!contents(await read(user, session)).some((c) => c.includes("zanzibar")));
});

Deno.test("usage counts every reply, on any branch", async () => {
  api.model.script(() => ({ chunks: ["ok"], usage: { prompt_tokens: 10, completion_tokens: 1 } }));
  const user = await api.user();
  const session = crypto.randomUUID();
  await say(user, session, "q");
  await post(user, session, { messages: [], trigger: "regenerate-message" });
  const [q] = await read(user, session);
  await post(user, session, { messages: [{ role: "user", content: "q2" }], messageId: q!.id });
  const today = new Date().toISOString().slice(0, 10);
  const { body } = await json(send(api, user, "GET", `/api/usage?from=${today}&to=${today}`));
  assert.deepEqual(
    body.map((r: { replies: number; prompt_tokens: number }) => [r.replies, r.prompt_tokens]),
    [[3, 30]],
  );
  assert.equal((await read(user, session)).length, 2, "one branch shows, three replies count");
});
