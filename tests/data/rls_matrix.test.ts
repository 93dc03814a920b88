/**
 * Every table × every operation × {owner, another signed-in user, anon},
 * through the same claims + role mechanism the API uses (`asCaller`).
 * Refusals are checked twice: the statement's outcome, and the owner's data
 * read back through the superuser connection afterwards.
 */
import assert from "node:assert/strict";
import {
  asCaller,
  type Claims,
  queryAsCaller,
  type Tx,
} from "../../supabase/functions/api/database.ts";
import { createTestDatabase } from "../support/database.ts";
import {
  addMessage,
  anonClaims,
  createSession,
  signUp,
  sqlState,
  userClaims,
} from "../support/fixtures.ts";

const db = await createTestDatabase();

interface Fixture {
  owner: string;
  other: string;
  session: string;
  message: string;
}

type Actor = "the owner" | "another user" | "anon";
/** rows returned or affected, or refused with a permission error (42501) */
type Outcome = number | "refused";

interface Case {
  table: "profiles" | "chat_sessions" | "messages";
  action: string;
  run: (tx: Tx, f: Fixture) => Promise<{ count: number }>;
  expect: Record<Actor, Outcome>;
}

const everyoneRefused = {
  "the owner": "refused",
  "another user": "refused",
  anon: "refused",
} as const;

const cases: Case[] = [
  {
    table: "profiles",
    action: "select the owner's profile",
    run: (tx, f) => tx`select id from public.profiles where id = ${f.owner}`,
    expect: { "the owner": 1, "another user": 0, anon: "refused" },
  },
  {
    table: "profiles",
    action: "insert a profile",
    run: (tx, f) =>
      tx`insert into public.profiles (id, email) values (${f.owner}, 'new@example.com')`,
    expect: everyoneRefused,
  },
  {
    table: "profiles",
    action: "update the owner's profile email",
    run: (tx, f) =>
      tx`update public.profiles set email = 'hijack@example.com' where id = ${f.owner}`,
    expect: everyoneRefused,
  },
  {
    table: "profiles",
    action: "delete the owner's profile",
    run: (tx, f) => tx`delete from public.profiles where id = ${f.owner}`,
    expect: everyoneRefused,
  },
  {
    table: "chat_sessions",
    action: "select the owner's session",
    run: (tx, f) => tx`select id from public.chat_sessions where id = ${f.session}`,
    expect: { "the owner": 1, "another user": 0, anon: "refused" },
  },
  {
    table: "chat_sessions",
    // sessions are created through the API, with their first message (tests/data/data_api.test.ts)
    action: "insert a session in the owner's name",
    run: (tx, f) =>
      tx`insert into public.chat_sessions (user_id, title) values (${f.owner}, 'mine now')`,
    expect: everyoneRefused,
  },
  {
    table: "chat_sessions",
    action: "rename the owner's session",
    run: (tx, f) => tx`update public.chat_sessions set title = 'renamed' where id = ${f.session}`,
    expect: { "the owner": 1, "another user": 0, anon: "refused" },
  },
  {
    table: "chat_sessions",
    action: "move the owner's session to another user",
    run: (tx, f) =>
      tx`update public.chat_sessions set user_id = ${f.other} where id = ${f.session}`,
    expect: everyoneRefused,
  },
  {
    table: "chat_sessions",
    action: "rewrite the owner's session timestamps",
    run: (tx, f) =>
      tx`update public.chat_sessions set created_at = now() - interval '1 year' where id = ${f.session}`,
    expect: everyoneRefused,
  },
  {
    table: "chat_sessions",
    action: "delete the owner's session",
    run: (tx, f) => tx`delete from public.chat_sessions where id = ${f.session}`,
    expect: { "the owner": 1, "another user": 0, anon: "refused" },
  },
  {
    table: "messages",
    action: "select the messages of the owner's session",
    run: (tx, f) => tx`select id from public.messages where chat_session_id = ${f.session}`,
    expect: { "the owner": 1, "another user": 0, anon: "refused" },
  },
  {
    table: "messages",
    action: "insert a message into the owner's session",
    // messages are sent through the API, which counts them and calls the model (tests/data/data_api.test.ts)
    run: (tx, f) =>
      tx`insert into public.messages (chat_session_id, role, content) values (${f.session}, 'user', 'hi')`,
    expect: everyoneRefused,
  },
  {
    table: "messages",
    action: "update a message in the owner's session",
    run: (tx, f) => tx`update public.messages set content = 'rewritten' where id = ${f.message}`,
    expect: everyoneRefused,
  },
  {
    table: "messages",
    action: "move a message of the owner's session elsewhere",
    run: (tx, f) =>
      tx`update public.messages set chat_session_id = gen_random_uuid() where id = ${f.message}`,
    expect: everyoneRefused,
  },
  {
    table: "messages",
    action: "delete a message from the owner's session",
    run: (tx, f) => tx`delete from public.messages where id = ${f.message}`,
    expect: everyoneRefused,
  },
];

async function fixture(): Promise<Fixture> {
  const owner = await signUp(db.admin);
  const other = await signUp(db.admin);
  const session = await createSession(db.admin, owner);
  const message = await addMessage(db.admin, session, "user", "hello");
  // the other user has data of their own, so "0 rows" cannot come from an empty database
  const otherSession = await createSession(db.admin, other);
  await addMessage(db.admin, otherSession, "user", "their own");
  return { owner, other, session, message };
}

/** Everything of the owner's, read past RLS. */
async function ownersData(owner: string): Promise<unknown> {
  const [row] = await db.admin`
    select
      (select coalesce(json_agg(p), '[]') from public.profiles p where p.id = ${owner}) as profile,
      (select coalesce(json_agg(s order by s.id), '[]')
         from public.chat_sessions s where s.user_id = ${owner}) as sessions,
      (select coalesce(json_agg(m order by m.seq), '[]')
         from public.messages m join public.chat_sessions s on s.id = m.chat_session_id
        where s.user_id = ${owner}) as messages`;
  return row;
}

function claimsOf(actor: Actor, f: Fixture): Claims {
  if (actor === "anon") return anonClaims;
  return userClaims(actor === "the owner" ? f.owner : f.other);
}

for (const c of cases) {
  for (const [actor, expected] of Object.entries(c.expect) as [Actor, Outcome][]) {
    const verdict = expected === "refused"
      ? "is refused and nothing changes"
      : expected === 0
      ? "sees or changes nothing"
      : `succeeds (${expected} row)`;
    Deno.test(`${c.table}: ${actor} trying to ${c.action} ${verdict}`, async () => {
      const f = await fixture();
      const before = await ownersData(f.owner);
      let count: number | undefined;
      const state = await sqlState(async () => {
        count = (await asCaller(db.admin, claimsOf(actor, f), (tx) => c.run(tx, f))).count;
      });
      const after = await ownersData(f.owner);
      if (expected === "refused") {
        assert.equal(state, "42501", "expected a permission error");
        assert.deepEqual(after, before);
        return;
      }
      assert.equal(state, undefined, `unexpected SQLSTATE ${state}`);
      assert.equal(count, expected);
      const isRead = c.action.startsWith("select");
      if (expected === 0 || isRead) assert.deepEqual(after, before);
      else assert.notDeepEqual(after, before);
    });
  }
}

Deno.test("asCaller refuses to assume any role but authenticated and anon", async () => {
  const claims = { role: "service_role" } as unknown as Claims;
  await assert.rejects(
    asCaller(db.admin, claims, (tx) => tx`select 1`),
    /refusing to assume database role "service_role"/,
  );
});

Deno.test("asCaller runs as the caller's role with the caller's uid, and resets it afterwards", async () => {
  const user = await signUp(db.admin);
  const [inside] = await asCaller(
    db.admin,
    userClaims(user),
    (tx) => tx`select current_user, auth.uid() as uid, auth.role() as role`,
  );
  assert.deepEqual({ ...inside }, {
    current_user: "authenticated",
    uid: user,
    role: "authenticated",
  });
  const [outside] = await db.admin`select current_user, auth.uid() as uid`;
  assert.deepEqual({ ...outside }, { current_user: "postgres", uid: null });
});

Deno.test("queryAsCaller runs one statement as the caller and commits it", async () => {
  const user = await signUp(db.admin);
  const session = await createSession(db.admin, user);
  const rows = await queryAsCaller(
    db.admin,
    userClaims(user),
    (tx) =>
      tx`update public.chat_sessions set title = 'one trip' where id = ${session}
         returning user_id, current_user as role`,
  );
  assert.deepEqual([...rows].map((r) => ({ ...r })), [{ user_id: user, role: "authenticated" }]);
  const [stored] = await db
    .admin`select count(*)::int as n from public.chat_sessions where user_id = ${user} and title = 'one trip'`;
  assert.equal(stored!.n, 1);
});

Deno.test("queryAsCaller: a failing statement changes nothing and leaves the connection clean", async () => {
  const user = await signUp(db.admin);
  const other = await signUp(db.admin);
  const state = await sqlState(() =>
    queryAsCaller(
      db.admin,
      userClaims(user),
      (tx) => tx`insert into public.chat_sessions (user_id, title) values (${other}, 'x')`,
    )
  );
  assert.equal(state, "42501");
  const [row] = await db.admin`select count(*)::int as n, current_user as role, auth.uid() as uid
                               from public.chat_sessions where user_id in (${user}, ${other})`;
  assert.deepEqual({ ...row }, { n: 0, role: "postgres", uid: null });
});
