/**
 * The conversation tree in SQL, called as the API calls it (as the user,
 * under RLS): every message has its parent, its running token total counts
 * its branch only, a send follows the current leaf, an edit goes beside the
 * message it edits, a regeneration beside the earlier reply, and the history
 * the model gets is the branch's. Switching and deleting branches move the
 * current leaf by a documented rule.
 */
import assert from "node:assert/strict";
import { asCaller, type Tx } from "../../supabase/functions/api/database.ts";
import { createTestDatabase } from "../support/database.ts";
import { addMessage, createSession, signUp, sqlState, userClaims } from "../support/fixtures.ts";

const { admin } = await createTestDatabase();

interface Sent {
  outcome: string;
  user_message_id: string | null;
  reply_id: string | null;
  history: { role: string; content: string }[] | null;
}

const as = <T>(user: string, work: (tx: Tx) => Promise<T>) =>
  asCaller(admin, userClaims(user), work);

async function send(
  user: string,
  session: string,
  content: string,
  opts: { id?: string; regenerate?: boolean; messageId?: string; room?: number } = {},
): Promise<Sent> {
  const [row] = await as(user, (tx) =>
    tx<Sent[]>`
      select * from chat_private.send_message(
        p_session_id => ${session}, p_content => ${content},
        p_client_message_id => ${opts.id ?? null}, p_tokens => 1,
        p_history_tokens => ${opts.room ?? 1000}, p_messages_per_day => 0,
        p_concurrent_replies => 0, p_reply_seconds => 60,
        p_model => 'm-1', p_protocol => 'ui', p_regenerate => ${opts.regenerate ?? false},
        p_message_id => ${opts.messageId ?? null})`);
  return row!;
}

async function save(user: string, session: string, sent: Sent, content: string, ending = "stop") {
  const [row] = await as(user, (tx) =>
    tx<{ saved: boolean }[]>`
      select chat_private.save_reply(${sent.reply_id}, ${session}, ${content}, 'm-1', ${ending},
                                     1, 10, 20, ${sent.user_message_id}) as saved`);
  return row!.saved;
}

/** A send and its stored reply: `re <content>`. */
async function exchange(user: string, session: string, content: string, opts = {}) {
  const sent = await send(user, session, content, opts);
  assert.ok(sent.reply_id, `${content}: ${sent.outcome}`);
  await save(user, session, sent, `re ${content}`);
  return sent;
}

interface Row {
  id: string;
  parent_id: string | null;
  role: string;
  content: string;
  tokens_before: string;
}

const rows = async (session: string) =>
  new Map(
    (await admin<Row[]>`
      select id, parent_id, role, content, tokens_before from public.messages
      where chat_session_id = ${session} order by seq`).map((r) => [r.id, r]),
  );

/** The current branch's contents, root first, read past RLS. */
async function currentBranch(session: string): Promise<string[]> {
  const [{ current }] = await admin<[{ current: string | null }]>`
    select current_message_id as current from public.chat_sessions where id = ${session}`;
  const all = await rows(session);
  const path: string[] = [];
  for (let at = current; at; at = all.get(at)!.parent_id) path.unshift(all.get(at)!.content);
  return path;
}

const switchTo = (user: string, session: string, message: string) =>
  as(user, (tx) => tx`select * from chat_private.switch_branch(${session}, ${message})`)
    .then(([row]) => ({ ...row }));

const deleteBranch = (user: string, session: string, message: string) =>
  as(user, (tx) => tx`select * from chat_private.delete_branch(${session}, ${message})`)
    .then(([row]) => ({ ...row }));

Deno.test("every message has its parent: a send follows the current leaf, a reply its message; tokens_before counts the branch", async () => {
  const user = await signUp(admin);
  const session = crypto.randomUUID();
  const one = await exchange(user, session, "one");
  const two = await exchange(user, session, "two");
  const all = [...(await rows(session)).values()];
  assert.deepEqual(all.map((m) => [m.content, m.parent_id]), [
    ["one", null],
    ["re one", one.user_message_id],
    ["two", one.reply_id],
    ["re two", two.user_message_id],
  ]);
  // each message costs its token count (1; the stored reply's too) plus 4
  assert.deepEqual(all.map((m) => Number(m.tokens_before)), [0, 5, 10, 15]);
  assert.deepEqual(await currentBranch(session), ["one", "re one", "two", "re two"]);
});

Deno.test("an edit goes beside the message it edits, becomes current, and its history is its own branch", async () => {
  const user = await signUp(admin);
  const session = crypto.randomUUID();
  await exchange(user, session, "one", { id: "c-1" });
  const two = await exchange(user, session, "two", { id: "c-2" });
  await exchange(user, session, "three", { id: "c-3" });
  // AI SDK's edit: the client's id of the message, kept for the new text
  const edit = await send(user, session, "two, edited", { id: "c-2", messageId: "c-2" });
  assert.equal(edit.outcome, "edit");
  assert.deepEqual(edit.history!.map((m) => m.content), ["one", "re one", "two, edited"]);
  const all = await rows(session);
  const edited = all.get(edit.user_message_id!)!;
  assert.equal(edited.parent_id, all.get(two.user_message_id!)!.parent_id, "siblings");
  assert.equal(Number(edited.tokens_before), Number(all.get(two.user_message_id!)!.tokens_before));
  await save(user, session, edit, "re two, edited");
  assert.deepEqual(await currentBranch(session), [
    "one",
    "re one",
    "two, edited",
    "re two, edited",
  ]);
  // nothing was lost: the earlier branch is all there
  assert.equal(all.size + 1, (await rows(session)).size);
  // an edit by the message's own id, and an edit of the first message, which adds a root
  const again = await send(user, session, "two, again", { messageId: two.user_message_id! });
  assert.equal(again.outcome, "edit");
  await save(user, session, again, "re two, again");
  const root = await send(user, session, "first, edited", { id: "c-9", messageId: "c-1" });
  assert.deepEqual(root.history!.map((m) => m.content), ["first, edited"]);
  assert.equal((await rows(session)).get(root.user_message_id!)!.parent_id, null);
});

Deno.test("a regeneration answers the same message beside the earlier reply, and becomes current; the earlier reply stays", async () => {
  const user = await signUp(admin);
  const session = crypto.randomUUID();
  await exchange(user, session, "one", { id: "c-1" });
  const two = await exchange(user, session, "two", { id: "c-2" });
  // no message named: the current branch's last user message
  const again = await send(user, session, "", { regenerate: true });
  assert.deepEqual(
    [again.outcome, again.user_message_id, again.history!.map((m) => m.content)],
    ["regenerate", two.user_message_id, ["one", "re one", "two"]],
  );
  // one reply per message while it is written
  const busy = await send(user, session, "", { regenerate: true, messageId: two.reply_id! });
  assert.equal(busy.outcome, "busy");
  await save(user, session, again, "re two, again");
  const all = await rows(session);
  assert.equal(all.get(again.reply_id!)!.parent_id, two.user_message_id);
  assert.equal(all.get(two.reply_id!)!.content, "re two", "the earlier reply is kept");
  assert.deepEqual(await currentBranch(session), ["one", "re one", "two", "re two, again"]);
  // by the reply's id, by the message's client id; a retry replays the newest reply
  const byReply = await send(user, session, "", { regenerate: true, messageId: two.reply_id! });
  assert.equal(byReply.user_message_id, two.user_message_id);
  await save(user, session, byReply, "re two, third");
  const byClientId = await send(user, session, "two", { regenerate: true, id: "c-2" });
  assert.equal(byClientId.user_message_id, two.user_message_id);
  await save(user, session, byClientId, "re two, fourth");
  const replay = await send(user, session, "two", { id: "c-2" });
  assert.deepEqual([replay.outcome, replay.reply_id], ["replay", byClientId.reply_id]);
  // an earlier message regenerated: its branch is current
  const first = await send(user, session, "one", { regenerate: true, id: "c-1" });
  await save(user, session, first, "re one, again");
  assert.deepEqual(await currentBranch(session), ["one", "re one, again"]);
});

Deno.test("a client id whose message was edited names the edit with the text the client shows", async () => {
  const user = await signUp(admin);
  const session = crypto.randomUUID();
  await exchange(user, session, "one", { id: "c-1" });
  const edit = await send(user, session, "one, edited", { id: "c-1", messageId: "c-1" });
  await save(user, session, edit, "re one, edited");
  const again = await send(user, session, "one, edited", { regenerate: true, id: "c-1" });
  assert.equal(again.user_message_id, edit.user_message_id);
  assert.deepEqual(again.history!.map((m) => m.content), ["one, edited"]);
});

Deno.test("names that do not fit are refused and store nothing", async () => {
  const [user, other] = [await signUp(admin), await signUp(admin)];
  const session = crypto.randomUUID();
  const one = await exchange(user, session, "one");
  const before = await rows(session);
  assert.equal(
    (await send(user, session, "x", { messageId: "nope" })).outcome,
    "message_not_found",
  );
  assert.equal(
    (await send(user, session, "x", { messageId: crypto.randomUUID() })).outcome,
    "message_not_found",
  );
  assert.equal(
    (await send(user, session, "x", { messageId: one.reply_id! })).outcome,
    "not_a_user_message",
  );
  assert.equal(
    (await send(other, session, "x", { messageId: one.user_message_id! })).outcome,
    "not_found",
  );
  // an empty session has nothing to regenerate
  assert.equal(
    (await send(user, crypto.randomUUID(), "", { regenerate: true })).outcome,
    "message_not_found",
  );
  assert.deepEqual(await rows(session), before);
  // an edit naming the request's own message, never stored, is a plain send
  const plain = await send(user, session, "new", { id: "c-new", messageId: "c-new" });
  assert.equal(plain.outcome, "new");
});

Deno.test("the history is the newest turns of the message's branch that fit, never another branch's", async () => {
  const user = await signUp(admin);
  const session = crypto.randomUUID();
  await exchange(user, session, "one", { id: "c-1" });
  await exchange(user, session, "two", { id: "c-2" });
  await exchange(user, session, "three", { id: "c-3" });
  const edit = await send(user, session, "two b", { messageId: "c-2" });
  await save(user, session, edit, "re two b");
  // room for two earlier messages of 5 each
  const next = await send(user, session, "four", { room: 10 });
  assert.deepEqual(next.history!.map((m) => m.content), ["two b", "re two b", "four"]);
});

Deno.test("a retry replaces its unfinished reply; a reply stored after its branch was left is kept but not current", async () => {
  const user = await signUp(admin);
  const session = crypto.randomUUID();
  const one = await send(user, session, "one", { id: "c-1" });
  await save(user, session, one, "", "model_error");
  const retry = await send(user, session, "one", { id: "c-1" });
  assert.equal(retry.outcome, "retry");
  await save(user, session, retry, "re one");
  assert.deepEqual(await currentBranch(session), ["one", "re one"]);
  assert.equal((await rows(session)).size, 2, "the failed reply was replaced");
  // a regeneration whose branch is left while it streams (an edit decided after it)
  const regenerated = await send(user, session, "", { regenerate: true });
  const edit = await send(user, session, "one b", { messageId: "c-1" });
  await save(user, session, edit, "re one b");
  await save(user, session, regenerated, "re one, again");
  assert.deepEqual(await currentBranch(session), ["one b", "re one b"]);
  assert.equal((await rows(session)).get(regenerated.reply_id!)!.content, "re one, again");
});

Deno.test("switching makes the branch through a message current, to its newest leaf", async () => {
  const [user, other] = [await signUp(admin), await signUp(admin)];
  const session = crypto.randomUUID();
  const one = await exchange(user, session, "one", { id: "c-1" });
  await exchange(user, session, "two", { id: "c-2" });
  const edit = await send(user, session, "one b", { messageId: "c-1" });
  await save(user, session, edit, "re one b");
  const reTwo = [...(await rows(session)).values()].find((m) => m.content === "re two")!.id;
  assert.deepEqual(await switchTo(user, session, one.user_message_id!), {
    outcome: "switched",
    current_message_id: reTwo,
  });
  assert.deepEqual(await currentBranch(session), ["one", "re one", "two", "re two"]);
  // a sent message follows the leaf switched to
  await exchange(user, session, "three");
  assert.deepEqual(await currentBranch(session), [
    "one",
    "re one",
    "two",
    "re two",
    "three",
    "re three",
  ]);
  assert.equal((await switchTo(user, session, crypto.randomUUID())).outcome, "message_not_found");
  assert.equal((await switchTo(other, session, one.user_message_id!)).outcome, "session_not_found");
});

Deno.test("deleting a branch deletes its subtree in one statement; the current leaf moves to what remains", async () => {
  const [user, other] = [await signUp(admin), await signUp(admin)];
  const session = crypto.randomUUID();
  await exchange(user, session, "one", { id: "c-1" });
  const two = await exchange(user, session, "two", { id: "c-2" });
  await exchange(user, session, "three");
  const edit = await send(user, session, "two b", { messageId: "c-2" });
  await save(user, session, edit, "re two b");
  await switchTo(user, session, two.user_message_id!);
  // the current branch's "two" goes, with everything after it: current moves to "two b"'s leaf
  assert.equal(
    (await deleteBranch(other, session, two.user_message_id!)).outcome,
    "session_not_found",
  );
  const gone = await deleteBranch(user, session, two.user_message_id!);
  assert.deepEqual([gone.outcome, gone.deleted], ["deleted", 4]);
  assert.deepEqual(await currentBranch(session), ["one", "re one", "two b", "re two b"]);
  // deleting a branch that is not current leaves the current one alone
  const side = await send(user, session, "", { regenerate: true, messageId: edit.reply_id! });
  await save(user, session, side, "re two b, again");
  const [{ id: earlier }] = await admin<[{ id: string }]>`
    select id from public.messages where content = 're two b' and chat_session_id = ${session}`;
  assert.equal((await deleteBranch(user, session, earlier)).deleted, 1);
  assert.deepEqual(await currentBranch(session), ["one", "re one", "two b", "re two b, again"]);
  // a deleted leaf's parent becomes the leaf; the first message takes the rest with it
  await deleteBranch(user, session, side.reply_id!);
  assert.deepEqual(await currentBranch(session), ["one", "re one", "two b"]);
  const [{ id: root }] = await admin<[{ id: string }]>`
    select id from public.messages where content = 'one' and chat_session_id = ${session}`;
  await deleteBranch(user, session, root);
  assert.deepEqual(await currentBranch(session), []);
  assert.equal((await rows(session)).size, 0);
  assert.equal((await deleteBranch(user, session, root)).outcome, "message_not_found");
});

Deno.test("a reply being written in a deleted branch is told to stop, and is not stored", async () => {
  const user = await signUp(admin);
  const session = crypto.randomUUID();
  await exchange(user, session, "one");
  const two = await send(user, session, "two");
  await deleteBranch(user, session, two.user_message_id!);
  const [state] = await as(
    user,
    (tx) => tx`select chat_private.write_partial(${two.reply_id}, ${session}, 'x', 0) as state`,
  );
  assert.equal(state!.state, "session_deleted");
  assert.equal(await save(user, session, two, "re two"), false);
  assert.deepEqual(await currentBranch(session), ["one", "re one"]);
  const [{ n }] = await admin<[{ n: number }]>`
    select count(*)::int as n from chat_private.replies where session_id = ${session}`;
  assert.equal(n, 0);
});

Deno.test("an insert that names no parent is appended after the session's newest message and extends the current branch", async () => {
  const user = await signUp(admin);
  const session = await createSession(admin, user);
  const a = await addMessage(admin, session, "user", "a");
  const b = await addMessage(admin, session, "assistant", "b");
  const all = await rows(session);
  assert.deepEqual([all.get(a)!.parent_id, all.get(b)!.parent_id], [null, a]);
  assert.deepEqual(await currentBranch(session), ["a", "b"]);
  // a parent from another session is refused
  const elsewhere = await createSession(admin, user);
  assert.equal(
    await sqlState(() =>
      admin`insert into public.messages (chat_session_id, parent_id, role, content)
            values (${elsewhere}, ${b}, 'user', 'x')`
    ),
    "23503",
  );
  // deleting the session takes its tree and its pointer with it
  await admin`delete from public.chat_sessions where id = ${session}`;
  assert.equal((await rows(session)).size, 0);
});
