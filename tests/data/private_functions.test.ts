/**
 * The private schema's functions, as an attacker who could reach them would
 * try them (issue 19 item 5): no client role can execute any of them without
 * an explicit grant (Postgres lets public execute every new function, and a
 * per-schema default privilege cannot take that back, so each is revoked by
 * name: this test is what catches a function a future migration forgets), and
 * every one that takes an id answers another user's exactly as it answers one
 * that does not exist, so none is an oracle for what exists.
 */
import assert from "node:assert/strict";
import { asCaller, type Tx } from "../../supabase/functions/api/database.ts";
import { createTestDatabase } from "../support/database.ts";
import { signUp, userClaims } from "../support/fixtures.ts";

const { admin } = await createTestDatabase();

/** What each client role may execute in chat_private, each granted by name in a migration. */
const GRANTED = {
  authenticated: [
    "delete_branch",
    "follow_reply",
    "import_conversations",
    "release_reply",
    "request_stop",
    "save_reply",
    "send_message",
    "switch_branch",
    "write_partial",
  ],
  // the check of a token's signer, made before anyone is signed in (signers.ts)
  anon: ["live_signers"],
};

Deno.test("no client role can execute a chat_private function that was not granted to it by name", async () => {
  for (const [role, granted] of Object.entries(GRANTED)) {
    const executable = await admin<{ name: string }[]>`
      select p.proname as name from pg_proc p
      where p.pronamespace = 'chat_private'::regnamespace
        and has_function_privilege(${role}, p.oid, 'execute')
      order by 1`;
    assert.deepEqual(executable.map((f) => f.name), granted, role);
  }
  // nor can any other role through public
  const [publicly] = await admin`
    select coalesce(array_agg(p.proname order by p.proname), '{}') as names from pg_proc p
    where p.pronamespace = 'chat_private'::regnamespace
      and exists (select 1 from aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                  where a.grantee = 0 and a.privilege_type = 'EXECUTE')`;
  assert.deepEqual(publicly!.names, []);
});

Deno.test("a function this test does not know fails it: a new chat_private function is executable by public until revoked", async () => {
  // the mechanism the test above relies on, shown once in a throwaway transaction
  let open: unknown;
  await admin.begin(async (tx) => {
    await tx`create function chat_private.forgotten() returns int language sql as 'select 1'`;
    [{ open }] = await tx`
      select has_function_privilege('authenticated', 'chat_private.forgotten()', 'execute') as open`;
    throw new Error("roll back");
  }).catch((error) => {
    if (!String(error).includes("roll back")) throw error;
  });
  assert.equal(open, true);
});

Deno.test("every chat_private function that takes an id answers another user's as it answers one that does not exist", async () => {
  const owner = await signUp(admin);
  const other = await signUp(admin);
  const as = <T>(user: string, work: (tx: Tx) => Promise<T>) =>
    asCaller(admin, userClaims(user), work);
  // the owner's session with a reply being written
  const session = crypto.randomUUID();
  const [sent] = await as(owner, (tx) =>
    tx`select * from chat_private.send_message(
         p_session_id => ${session}, p_content => 'hi', p_client_message_id => null,
         p_tokens => 1, p_history_tokens => 1000, p_messages_per_day => 0,
         p_concurrent_replies => 0, p_reply_seconds => 60, p_model => 'm', p_protocol => 'ui')`);
  const real = {
    session,
    reply: sent!.reply_id as string,
    message: sent!.user_message_id as string,
  };
  const unknown = {
    session: crypto.randomUUID(),
    reply: crypto.randomUUID(),
    message: crypto.randomUUID(),
  };
  const calls: [string, (tx: Tx, ids: typeof real) => Promise<unknown>][] = [
    [
      "write_partial",
      (tx, ids) => tx`select chat_private.write_partial(${ids.reply}, ${ids.session}, 'x', 0) as r`,
    ],
    [
      "save_reply",
      (tx, ids) =>
        tx`select chat_private.save_reply(${ids.reply}, ${ids.session}, 'x', 'm', 'stop', 1, 1, 1, ${ids.message}) as r`,
    ],
    ["release_reply", (tx, ids) => tx`select chat_private.release_reply(${ids.reply})::text as r`],
    ["request_stop", (tx, ids) => tx`select chat_private.request_stop(${ids.session}) as r`],
    [
      "follow_reply by session",
      (tx, ids) => tx`select * from chat_private.follow_reply(${ids.session}, null)`,
    ],
    [
      "switch_branch",
      (tx, ids) => tx`select * from chat_private.switch_branch(${ids.session}, ${ids.message})`,
    ],
    [
      "delete_branch",
      (tx, ids) => tx`select * from chat_private.delete_branch(${ids.session}, ${ids.message})`,
    ],
    [
      "follow_reply by id",
      (tx, ids) => tx`select * from chat_private.follow_reply(${ids.session}, ${ids.reply})`,
    ],
    [
      "follow_reply by id, its text",
      (tx, ids) => tx`select * from chat_private.follow_reply(${ids.session}, ${ids.reply}, 0)`,
    ],
  ];
  for (const [name, call] of calls) {
    // each in a transaction rolled back, so the owner's reply is there for the next
    const answer = async (ids: typeof real) => {
      let rows: unknown;
      await asCaller(admin, userClaims(other), async (tx) => {
        rows = await call(tx, ids);
        throw new Error("roll back");
      }).catch((error) => {
        if (!String(error).includes("roll back")) throw error;
      });
      return JSON.stringify(rows);
    };
    assert.equal(await answer(real), await answer(unknown), name);
  }
  // and the owner's reply is untouched by all of it
  const [row] = await admin`
    select stop_requested, followed,
           (select count(*)::int from chat_private.reply_parts where reply_id = ${real.reply}) as parts
    from chat_private.replies where id = ${real.reply}`;
  assert.deepEqual({ ...row }, { stop_requested: false, followed: false, parts: 0 });
});
