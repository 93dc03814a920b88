/**
 * What a resumable reply costs, through what can be observed (issue #18 items
 * 1 and 2): a reply nobody can re-attach to writes no text while it streams
 * (its parts table stays empty) and is still stopped from another instance
 * within about a second; a reply whose client left but which goes on writes
 * its text; a follower gets the whole text exactly once, in order, however
 * late it joins, and the stored reply is what streamed; re-attached streams
 * and stops waiting are bounded per user, with a 429 that changes nothing.
 */
import assert from "node:assert/strict";
import type { UserClaims } from "../../supabase/functions/api/auth.ts";
import { asCaller } from "../../supabase/functions/api/database.ts";
import { SharedPolls } from "../../supabase/functions/api/reply/shared_polls.ts";
import { signAccessToken } from "../../local/signing_keys.ts";
import type { Script } from "../../local/stand_in_model.ts";
import { startTestApi, type TestApi, type TestUser } from "../support/api.ts";
import { eventually } from "../support/eventually.ts";
import { userClaims } from "../support/fixtures.ts";
import { recordFigure } from "../support/figures.ts";
import { readUntil, send, stored } from "../support/http.ts";

// the defaults: a writer nobody follows polls its row once a second
const api = await startTestApi();
// a second instance of the function over the same database (its own key), with tight bounds
const other = await startTestApi({
  db: api.db,
  env: { REATTACH_MAX_PER_USER: "2", STOP_WAIT_MAX_PER_USER: "1" },
});

const words = Array.from({ length: 60 }, (_, i) => `word${i} `);
const slow = (): Script => ({ chunks: words, delayMs: 50 });

/** The same user, signed in on the other instance (its own signing key). */
const on = async (instance: TestApi, user: TestUser): Promise<TestUser> => ({
  ...user,
  auth: { authorization: `Bearer ${await signAccessToken(instance.key, { id: user.id })}` },
});

const partsOf = async (session: string) =>
  (await api.db.admin<[{ parts: number; followed: boolean | null }]>`
    select (select count(*)::int from chat_private.reply_parts p where p.reply_id = r.id) as parts,
           r.followed
    from chat_private.replies r where r.session_id = ${session}`)[0];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** What is left of a streamed body. */
async function readRest(reader: ReadableStreamDefaultReader<Uint8Array>) {
  const decoder = new TextDecoder();
  let text = "";
  for (let r = await reader.read(); !r.done; r = await reader.read()) {
    text += decoder.decode(r.value, { stream: true });
  }
  return text;
}

function startReply(user: TestUser, session: string, query = "protocol=text") {
  return send(api, user, "POST", `/api/sessions/${session}?${query}`, {
    messages: [{ role: "user", content: "Talk" }],
  });
}

Deno.test("a reply nobody can re-attach to writes no text while it streams, and a stop from another instance is seen within about a second", async () => {
  api.model.script(slow);
  const user = await api.user();
  const session = crypto.randomUUID();
  const response = await startReply(user, session);
  const reader = response.body!.getReader();
  let received = await readUntil(reader, "word3 ");
  // well past a poll (REPLY_POLL_MS 1000) and several REPLY_PERSIST_MS: still no text written
  await sleep(1500);
  assert.deepEqual(await partsOf(session), { parts: 0, followed: false });

  const started = performance.now();
  const stop = await send(
    other,
    await on(other, user),
    "DELETE",
    `/api/sessions/${session}/stream`,
  );
  const took = performance.now() - started;
  assert.equal(stop.status, 200);
  const stopped = await stop.json();
  assert.equal(stopped.finish_reason, "stopped");
  // the writer's poll (at most 1 s apart) sees it; the save and the stop's own read follow
  assert.ok(took < 2500, `stopped after ${took.toFixed(0)} ms`);
  recordFigure(
    "Resumable replies",
    "a stop from another instance, nobody following",
    `${took.toFixed(0)} ms`,
  );

  received += await readRest(reader);
  await api.idle();
  const [, reply] = await stored(api, session);
  assert.deepEqual([reply!.content, reply!.finish_reason], [received, "stopped"]);
  assert.equal(stopped.content, received);
});

Deno.test("a reply whose client left and which goes on writes its text, followed or not", async () => {
  api.model.script(slow);
  const user = await api.user();
  const session = crypto.randomUUID();
  const response = await startReply(user, session, "protocol=text&on_disconnect=continue");
  const reader = response.body!.getReader();
  await readUntil(reader, "word3 ");
  await reader.cancel();
  await eventually(() => partsOf(session), (row) => (row?.parts ?? 0) > 0, "its text written");
  assert.equal((await partsOf(session))!.followed, false, "nobody followed it");
  await eventually(() => stored(api, session), (rows) => rows.length === 2, "the reply stored");
  await api.idle();
  const [, reply] = await stored(api, session);
  assert.deepEqual([reply!.content, reply!.finish_reason], [words.join(""), "stop"]);
});

Deno.test("followers that join early and late, on another instance, each get the whole text exactly once, in order; the stored reply is what streamed", async () => {
  api.model.script(slow);
  const user = await api.user();
  const elsewhere = await on(other, user);
  const session = crypto.randomUUID();
  const response = await startReply(user, session);
  const reader = response.body!.getReader();
  await readUntil(reader, "word3 ");
  assert.equal((await partsOf(session))!.parts, 0, "no text written before a follower asks");

  const follow = () =>
    send(other, elsewhere, "GET", `/api/sessions/${session}/stream?protocol=sse`);
  const early = await follow();
  assert.equal(early.status, 200);
  const earlyText = early.text();
  // the follower asked: the writer writes its text from the start (its next poll), then as it grows
  await eventually(() => partsOf(session), (row) => (row?.parts ?? 0) > 0, "the text written");
  assert.equal((await partsOf(session))!.followed, true);
  await eventually(() => partsOf(session), (row) => (row?.parts ?? 0) > 2, "more parts");
  const late = await follow();
  assert.equal(late.status, 200);
  // both read through one poll of the reply on their instance
  assert.equal(other.app.readers.polls.size, 1);
  const [a, b, sent] = await Promise.all([earlyText, late.text(), readRest(reader)]);
  await api.idle();
  for (const events of [a, b]) {
    const deltas = events.split("\n\n").filter((e) => e.startsWith("event: delta"))
      .map((e) => JSON.parse(e.split("data: ")[1]!).content).join("");
    assert.equal(deltas, words.join(""), "the whole reply, nothing lost or doubled");
    assert.match(events, /event: done\ndata: .*"finish_reason":"stop"/);
  }
  const [, reply] = await stored(api, session);
  assert.deepEqual([reply!.content, reply!.finish_reason], [words.join(""), "stop"]);
  assert.ok(words.join("").endsWith(sent), "the sender got the rest of it");
  // the parts went with the row
  const [{ parts }] = await api.db.admin<[{ parts: number }]>`
    select count(*)::int as parts from chat_private.reply_parts where reply_id = ${reply!.id}`;
  assert.equal(parts, 0);
});

/**
 * A reply row with no writer, as a send creates it: it streams, as far as any
 * reader can tell, until its lease lapses (5 s), so re-attached streams and
 * stops wait on it that long.
 */
async function writerlessReply(user: TestUser) {
  const session = crypto.randomUUID();
  const [row] = await asCaller(
    api.db.admin,
    userClaims(user.id),
    (tx) =>
      tx<{ reply_id: string }[]>`
      select reply_id from chat_private.send_message(
        p_session_id => ${session}, p_content => 'held', p_client_message_id => null,
        p_tokens => 1, p_history_tokens => 1000, p_messages_per_day => 0,
        p_concurrent_replies => 0, p_reply_seconds => 60, p_model => 'test-model',
        p_protocol => 'text')`,
  );
  return { session, reply: row!.reply_id };
}

Deno.test("re-attached streams are bounded per user: past REATTACH_MAX_PER_USER a 429 with Retry-After, other users unaffected", async () => {
  const user = await on(other, await api.user());
  const { session } = await writerlessReply(user);
  const reattach = (who: TestUser) =>
    send(other, who, "GET", `/api/sessions/${session}/stream?protocol=text`);
  const open = [await reattach(user), await reattach(user)];
  assert.deepEqual(open.map((r) => r.status), [200, 200]);
  const refused = await reattach(user);
  assert.equal(refused.status, 429);
  assert.ok(Number(refused.headers.get("retry-after")) >= 1);
  assert.match((await refused.json()).detail, /at most 2/);
  // the same bound where AI SDK 5+ clients re-attach
  const refusedChat = await send(other, user, "GET", `/api/chat/${session}/stream`);
  assert.equal(refusedChat.status, 429);
  await refusedChat.body?.cancel();
  // another user is not held back by this one's streams (the session is not theirs: 204)
  const stranger = await on(other, await api.user());
  const theirs = await reattach(stranger);
  assert.equal(theirs.status, 204);
  await theirs.body?.cancel();
  // a stream that ends gives its place back
  await open[0]!.body!.cancel();
  const again = await reattach(user);
  assert.equal(again.status, 200);
  await Promise.all([open[1]!.body!.cancel(), again.body!.cancel()]);
});

Deno.test("stops waiting are bounded per user: past STOP_WAIT_MAX_PER_USER a 429 that asks nothing, other users unaffected", async () => {
  const user = await on(other, await api.user());
  const first = await writerlessReply(user);
  const second = await writerlessReply(user);
  // its writer never sees it: the stop waits until the row is known dead
  const waiting = send(other, user, "DELETE", `/api/sessions/${first.session}/stream`);
  await eventually(
    () => api.db.admin`select stop_requested from chat_private.replies where id = ${first.reply}`,
    (rows) => rows[0]?.stop_requested === true,
    "the first stop asked",
  );
  const refused = await send(other, user, "DELETE", `/api/sessions/${second.session}/stream`);
  assert.equal(refused.status, 429);
  assert.equal(refused.headers.get("retry-after"), "10");
  await refused.body?.cancel();
  const refusedChat = await send(other, user, "DELETE", `/api/chat/${second.session}/stream`);
  assert.equal(refusedChat.status, 429);
  await refusedChat.body?.cancel();
  const [row] = await api.db.admin`
    select stop_requested from chat_private.replies where id = ${second.reply}`;
  assert.equal(row!.stop_requested, false, "the refused stop asked nothing");
  const stranger = await on(other, await api.user());
  const theirs = await send(other, stranger, "DELETE", `/api/sessions/${second.session}/stream`);
  assert.equal(theirs.status, 204);
  await theirs.body?.cancel();
  // the first ends once its writer is known dead: stored as `shutdown`, with no text written
  const ended = await waiting;
  assert.equal(ended.status, 200);
  assert.deepEqual(await ended.json(), {
    id: first.reply,
    content: "",
    finish_reason: "shutdown",
  });
});

Deno.test("a follower waiting through many reads adds one abort listener to its signal, and aborting wakes its current wait at once", async () => {
  const user = await api.user();
  const { session, reply } = await writerlessReply(user);
  const polls = new SharedPolls({ sql: api.db.admin, everyMs: 20, log: () => {} });
  const member = polls.join(userClaims(user.id) as UserClaims, session, reply, true);
  const controller = new AbortController();
  let listeners = 0;
  const add = controller.signal.addEventListener.bind(controller.signal);
  controller.signal.addEventListener = ((...args: Parameters<typeof add>) => {
    listeners++;
    return add(...args);
  }) as typeof add;
  // a follower of a five-minute reply waits on about 1,200 reads: each used to add a listener
  for (let read = 0; read < 25; read++) await member.next(controller.signal);
  assert.equal(member.view().last?.state, "streaming");
  assert.equal(listeners, 1);
  const waiting = member.next(controller.signal).then(() => "woken");
  controller.abort();
  // the wake is the abort's own: it settles before any timer (the poll's next read) can run
  const first = await Promise.race([
    waiting,
    new Promise((resolve) => setTimeout(() => resolve("a read came first"), 0)),
  ]);
  assert.equal(first, "woken");
  member.leave();
  await eventually(() => Promise.resolve(polls.size), (size) => size === 0, "the poll stopped");
});
