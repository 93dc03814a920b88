/**
 * The SQL API of a send and of its reply, in chat_private, called as the
 * API calls it (as the user, under RLS): one send decides everything and
 * answers one tagged outcome; the reply's row records its model and protocol
 * from the start, is followed, stopped, and goes when the reply is stored or
 * released.
 */
import assert from "node:assert/strict";
import { asCaller, type Tx } from "../../supabase/functions/api/database.ts";
import { createTestDatabase } from "../support/database.ts";
import { signUp, sqlState, userClaims } from "../support/fixtures.ts";

const { admin } = await createTestDatabase();

interface Sent {
  outcome: string;
  user_message_id: string | null;
  reply_id: string | null;
  untitled: boolean | null;
  history: { role: string; content: string }[] | null;
  retry_after: number | null;
  content: string | null;
  finish_reason: string | null;
}

const as = <T>(user: string, work: (tx: Tx) => Promise<T>) =>
  asCaller(admin, userClaims(user), work);

/** A send with no quotas but those given, 1000 tokens of room, model m-1 and protocol ui. */
async function send(
  user: string,
  session: string,
  content: string,
  opts: { id?: string; perDay?: number; concurrent?: number; room?: number } = {},
): Promise<Sent> {
  const [row] = await as(user, (tx) =>
    tx<Sent[]>`
      select * from chat_private.send_message(
        p_session_id => ${session}, p_content => ${content},
        p_client_message_id => ${opts.id ?? null}, p_tokens => 1,
        p_history_tokens => ${opts.room ?? 1000}, p_messages_per_day => ${opts.perDay ?? 0},
        p_concurrent_replies => ${opts.concurrent ?? 0}, p_reply_seconds => 60,
        p_model => 'm-1', p_protocol => 'ui')`);
  return row!;
}

function save(user: string, session: string, sent: Sent, content: string, ending = "stop") {
  return as(user, (tx) =>
    tx<{ saved: boolean }[]>`
      select chat_private.save_reply(${sent.reply_id}, ${session}, ${content}, 'm-1', ${ending},
                                     1, 10, 20, ${sent.user_message_id}) as saved`)
    .then(([row]) => row!.saved);
}

const follow = (
  user: string,
  session: string,
  id: string | null = null,
  after: number | null = null,
) =>
  as(
    user,
    (tx) => tx`select * from chat_private.follow_reply(${session}, ${id}, ${after}::integer)`,
  )
    .then(([row]) => ({ ...row }));

const replyRows = async (user: string) =>
  (await admin`select count(*)::int as n from chat_private.replies where user_id = ${user}`)[0]!.n;

Deno.test("a first send creates the session, stores the message and its reply's row, with the model and protocol", async () => {
  const user = await signUp(admin);
  const session = crypto.randomUUID();
  const sent = await send(user, session, "Hello");
  assert.equal(sent.outcome, "new");
  assert.equal(sent.untitled, true);
  assert.deepEqual(sent.history, [{ role: "user", content: "Hello" }]);
  assert.deepEqual(await follow(user, session), {
    state: "streaming",
    id: sent.reply_id,
    user_message_id: sent.user_message_id,
    model: "m-1",
    protocol: "ui",
    // no offset asked for: no text read
    content: null,
    text_length: null,
    finish_reason: null,
    prompt_tokens: null,
    completion_tokens: null,
  });
});

Deno.test("a reply is written, followed and stored under its row's id, and its row goes", async () => {
  const user = await signUp(admin);
  const session = crypto.randomUUID();
  const sent = await send(user, session, "Tell me");
  const write = (delta: string, offset: number) =>
    as(
      user,
      (tx) =>
        tx`select chat_private.write_partial(${sent.reply_id}, ${session}, ${delta}, ${offset}) as state`,
    )
      .then(([row]) => row!.state);
  assert.equal(await write("Once ", 0), "streaming");
  assert.equal(await write("upon", 5), "streaming");
  const read = await follow(user, session, sent.reply_id, 0);
  assert.deepEqual([read.content, read.text_length], ["Once upon", 9]);
  // a reader asked for the text: its writer is told so
  assert.equal(await write(" a", 9), "followed");
  // a reader reads from where it is: the part it is in, cut, and those after
  const rest = await follow(user, session, sent.reply_id, 7);
  assert.deepEqual([rest.content, rest.text_length], ["on a", 11]);
  const none = await follow(user, session, sent.reply_id, 11);
  assert.deepEqual([none.content, none.text_length], ["", 11]);
  // a part written again (its first write committed, but its writer did not learn it) keeps the longer
  assert.equal(await write(" a ti", 9), "followed");
  assert.equal((await follow(user, session, sent.reply_id, 0)).content, "Once upon a ti");
  assert.equal(await save(user, session, sent, "Once upon a time"), true);
  assert.equal(await replyRows(user), 0);
  const [{ parts }] = await admin<[{ parts: number }]>`
    select count(*)::int as parts from chat_private.reply_parts where reply_id = ${sent.reply_id}`;
  assert.equal(parts, 0, "the parts go with the row");
  assert.equal(await write("more", 14), "released");
  const stored = await follow(user, session, sent.reply_id);
  assert.deepEqual(
    [stored.state, stored.id, stored.user_message_id, stored.protocol, stored.content],
    ["stored", sent.reply_id, sent.user_message_id, null, "Once upon a time"],
  );
  // a stored reply read from an offset: the rest
  const tail = await follow(user, session, sent.reply_id, 10);
  assert.deepEqual([tail.content, tail.text_length], ["a time", 16]);
  // the next send's history holds the exchange
  const next = await send(user, session, "And then?");
  assert.deepEqual(next.history!.map((m) => m.content), [
    "Tell me",
    "Once upon a time",
    "And then?",
  ]);
  assert.equal(next.untitled, true);
});

Deno.test("a stop is asked on the reply's row and seen by its writer; a released reply frees its row", async () => {
  const user = await signUp(admin);
  const session = crypto.randomUUID();
  const sent = await send(user, session, "Go on and on");
  const [asked] = await as(user, (tx) => tx`select chat_private.request_stop(${session}) as id`);
  assert.equal(asked!.id, sent.reply_id);
  const [state] = await as(
    user,
    (tx) => tx`select chat_private.write_partial(${sent.reply_id}, ${session}, '', 0) as state`,
  );
  assert.equal(state!.state, "stopped");
  await as(user, (tx) => tx`select chat_private.release_reply(${sent.reply_id})`);
  assert.equal(await replyRows(user), 0);
  assert.equal((await follow(user, session)).state, "gone");
});

Deno.test("a retry asks again, a finished reply is replayed, a different text conflicts, a later message supersedes", async () => {
  const user = await signUp(admin);
  const session = crypto.randomUUID();
  const first = await send(user, session, "Question", { id: "q-1" });
  // while its reply is being written, the same message again is busy
  assert.equal((await send(user, session, "Question", { id: "q-1" })).outcome, "busy");
  assert.equal(await save(user, session, first, "", "model_error"), true);
  const retry = await send(user, session, "Question", { id: "q-1" });
  assert.deepEqual(
    [retry.outcome, retry.user_message_id, retry.history],
    ["retry", first.user_message_id, [{ role: "user", content: "Question" }]],
  );
  assert.equal(await save(user, session, retry, "Answer"), true);
  const replay = await send(user, session, "Question", { id: "q-1" });
  assert.deepEqual(
    [replay.outcome, replay.reply_id, replay.content, replay.finish_reason],
    ["replay", retry.reply_id, "Answer", "stop"],
  );
  assert.equal((await send(user, session, "Other text", { id: "q-1" })).outcome, "conflict");
  const later = await send(user, session, "Later", { id: "q-2" });
  await save(user, session, later, "", "client_closed");
  const early = await send(user, session, "Question", { id: "q-3" });
  await save(user, session, early, "", "model_error");
  await send(user, session, "Last", { id: "q-4" });
  assert.equal((await send(user, session, "Question", { id: "q-3" })).outcome, "superseded");
});

Deno.test("refused sends store nothing: another user's session, and each quota with its Retry-After", async () => {
  const [user, other] = [await signUp(admin), await signUp(admin)];
  const session = crypto.randomUUID();
  await send(user, session, "Mine");
  assert.equal((await send(other, session, "Theirs")).outcome, "not_found");

  const fresh = crypto.randomUUID();
  const overReplies = await send(user, fresh, "A second at once", { concurrent: 1 });
  assert.equal(overReplies.outcome, "over_reply_quota");
  assert.ok(overReplies.retry_after! > 50 && overReplies.retry_after! <= 60);
  const overDay = await send(user, fresh, "One too many", { perDay: 1 });
  assert.equal(overDay.outcome, "over_daily_quota");
  assert.ok(overDay.retry_after! > 86_000 && overDay.retry_after! <= 86_400);
  const [created] = await admin`
    select count(*)::int as n from public.chat_sessions where id = ${fresh}`;
  assert.equal(created!.n, 0);
  const [sends] = await admin`
    select count(*)::int as n from chat_private.message_sends where user_id = ${user}`;
  assert.equal(sends!.n, 1);
});

Deno.test("the history is the newest turns that fit the room, oldest first, this message last", async () => {
  const user = await signUp(admin);
  const session = crypto.randomUUID();
  for (const content of ["one", "two", "three"]) {
    const sent = await send(user, session, content);
    await save(user, session, sent, `re ${content}`);
  }
  // each message costs 1 token + 4: room for two earlier messages
  const sent = await send(user, session, "four", { room: 10 });
  assert.deepEqual(sent.history!.map((m) => m.content), ["three", "re three", "four"]);
});

Deno.test("a reply's protocol is one the API speaks, and a reply row needs its model", async () => {
  const user = await signUp(admin);
  const session = crypto.randomUUID();
  const sent = await send(user, session, "Hi");
  const insert = (model: string | null, protocol: string) =>
    admin`insert into chat_private.replies
            (user_id, session_id, user_message_id, model, protocol, expires_at)
          values (${user}, ${session}, ${sent.user_message_id}, ${model}, ${protocol}, now())`;
  await admin`delete from chat_private.replies where id = ${sent.reply_id}`;
  assert.equal(await sqlState(() => insert("m-1", "html")), "23514"); // check_violation
  assert.equal(await sqlState(() => insert(null, "text")), "23502"); // not_null_violation
});
