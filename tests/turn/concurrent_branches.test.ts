/**
 * Two devices working on one conversation at once. Every request is decided
 * under the per-user lock `chat_private.send_message` takes, one after the
 * other; the rule: every edit and regeneration keeps its branch, the one
 * decided last (the last to start) is current, however the replies finish,
 * and one message has one reply being written at a time (one model call).
 */
import assert from "node:assert/strict";
import type { ChatRequest, Script } from "../../local/stand_in_model.ts";
import { startTestApi, type TestUser } from "../support/api.ts";
import { json, readUntil, send } from "../support/http.ts";

const api = await startTestApi();

/** Replies `re: <message>`; slowly (about a second) when the message says "slow". */
const echo = (request: ChatRequest): Script => {
  const last = request.messages.at(-1)!.content;
  return last.includes("slow")
    ? { chunks: ["re: ", ...last.split(" ").map((w) => w + " ")], delayMs: 200 }
    : { chunks: [`re: ${last}`], delayMs: 20 };
};

const post = (user: TestUser, session: string, body: Record<string, unknown>) =>
  send(api, user, "POST", `/api/sessions/${session}?protocol=text`, body);

async function setUp() {
  api.model.script(echo);
  const user = await api.user();
  const session = crypto.randomUUID();
  await (await post(user, session, { messages: [{ role: "user", content: "q", id: "c-q" }] }))
    .text();
  await api.idle();
  const [question, reply] = (await json(send(api, user, "GET", `/api/sessions/${session}`))).body;
  return { user, session, question, reply };
}

interface Row {
  id: string;
  parent_id: string | null;
  role: string;
  content: string;
}

const tree = async (session: string) =>
  await api.db.admin<Row[]>`
    select id, parent_id, role, content from public.messages
    where chat_session_id = ${session} order by seq`;

const current = async (user: TestUser, session: string) =>
  ((await json(send(api, user, "GET", `/api/sessions/${session}`))).body as Row[])
    .map((m) => m.content);

Deno.test("edits of one message from several devices at once all keep their branch; the one decided last is current", async () => {
  const { user, session, question } = await setUp();
  const calls = api.model.requests.length;
  const edits = ["a", "b", "c", "d"].map((text) => `edit ${text}`);
  const answers = await Promise.all(edits.map(async (content, i) => {
    const response = await post(user, session, {
      messages: [{ role: "user", content, id: `c-${i}` }],
      messageId: "c-q",
    });
    return { status: response.status, text: await response.text() };
  }));
  await api.idle();
  assert.deepEqual(answers.map((a) => a.status), [200, 200, 200, 200]);
  assert.equal(api.model.requests.length, calls + 4);
  const rows = await tree(session);
  const byId = new Map(rows.map((r) => [r.id, r]));
  // every edit is a first message beside the question, each answered beneath it
  const roots = rows.filter((r) => r.parent_id === null).map((r) => r.content);
  assert.deepEqual(roots.slice(0, 1), ["q"]);
  assert.deepEqual(roots.slice(1).toSorted(), edits);
  for (const edit of rows.filter((r) => r.content.startsWith("edit"))) {
    const replies = rows.filter((r) => r.parent_id === edit.id);
    assert.deepEqual(replies.map((r) => r.content), [`re: ${edit.content}`]);
  }
  // decided last: the newest of them (numbered in the order the lock let them in)
  const last = rows.filter((r) => r.content.startsWith("edit")).at(-1)!;
  assert.deepEqual(await current(user, session), [last.content, `re: ${last.content}`]);
  assert.equal(byId.get(question.id)!.content, "q");
});

Deno.test("the branch started last is current even when an earlier one finishes after it", async () => {
  const { user, session } = await setUp();
  // device A edits with a slow reply; once it streams, device B regenerates, fast
  const slow = await post(user, session, {
    messages: [{ role: "user", content: "slow edit from a" }],
    messageId: "c-q",
  });
  const reader = slow.body!.getReader();
  await readUntil(reader, "re:");
  const fast = await post(user, session, {
    messages: [{ role: "user", content: "q", id: "c-q" }],
    trigger: "regenerate-message",
  });
  assert.equal(fast.status, 200);
  const regenerated = await fast.text();
  while (!(await reader.read()).done) { /* A's reply, finishing last */ }
  await api.idle();
  assert.deepEqual(await current(user, session), ["q", regenerated]);
  // A's branch is kept whole
  const rows = await tree(session);
  const edit = rows.find((r) => r.content === "slow edit from a")!;
  assert.deepEqual(rows.filter((r) => r.parent_id === edit.id).map((r) => r.content), [
    "re: slow edit from a ",
  ]);
});

Deno.test("regenerations of one reply from several devices at once: one model call and one new reply, the others 409", async () => {
  const { user, session, reply } = await setUp();
  api.model.script(() => ({ chunks: ["again"], delayMs: 200 }));
  const calls = api.model.requests.length;
  const statuses = await Promise.all(Array.from({ length: 4 }, async () => {
    const response = await post(user, session, {
      messages: [{ role: "user", content: "q", id: "c-q" }],
      trigger: "regenerate-message",
      messageId: reply.id,
    });
    await response.text();
    return response.status;
  }));
  await api.idle();
  assert.deepEqual(statuses.toSorted(), [200, 409, 409, 409]);
  assert.equal(api.model.requests.length, calls + 1);
  const rows = await tree(session);
  assert.deepEqual(rows.map((r) => r.content), ["q", reply.content, "again"]);
  assert.deepEqual(await current(user, session), ["q", "again"]);
});

Deno.test("a switch and a send decided at once: the send follows whichever leaf was current when it was decided", async () => {
  const { user, session, question } = await setUp();
  await (await post(user, session, {
    messages: [{ role: "user", content: "q2" }],
    messageId: "c-q",
  })).text();
  await api.idle();
  // switch back to q's branch while sending: the send lands after q's reply or q2's, never lost
  const [switched, sent] = await Promise.all([
    json(send(api, user, "PUT", `/api/sessions/${session}/current`, { message_id: question.id })),
    post(user, session, { messages: [{ role: "user", content: "next" }] }).then((r) => r.text()),
  ]);
  await api.idle();
  assert.equal(switched.status, 200);
  assert.equal(sent, "re: next");
  const rows = await tree(session);
  const next = rows.find((r) => r.content === "next")!;
  const parent = rows.find((r) => r.id === next.parent_id)!;
  assert.ok(["re: q", "re: q2"].includes(parent.content), parent.content);
  const branch = await current(user, session);
  // the switch decided after the send shows q's branch (with "next" when it went there)
  assert.ok(
    branch.at(-1) === "re: next" || branch.join() === "q,re: q",
    branch.join(),
  );
});
