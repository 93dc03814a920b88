/** What the migrations promise beyond access control: triggers, cascades, constraints, defaults. */
import assert from "node:assert/strict";
import { asCaller } from "../../supabase/functions/api/database.ts";
import { createTestDatabase } from "../support/database.ts";
import { addMessage, createSession, signUp, sqlState, userClaims } from "../support/fixtures.ts";

const db = await createTestDatabase();
const { admin } = db;

/** Sends a user message as the API does, through chat_private (no quotas, the model's reply left unwritten). */
function sendAs(userId: string, session: string, content: string) {
  return asCaller(admin, userClaims(userId), (tx) =>
    tx<{ outcome: string }[]>`
      select outcome from chat_private.send_message(${session}, ${content}, null, 1, 1000, 0, 0, 60,
                                                    'test-model', 'text')`);
}

async function profileOf(id: string) {
  const [row] = await admin<{ email: string | null }[]>`
    select email from public.profiles where id = ${id}`;
  return row;
}

Deno.test("sign-up creates a profile with the user's email", async () => {
  const id = await signUp(admin, { email: "ada@example.com" });
  assert.deepEqual(await profileOf(id), { email: "ada@example.com" });
});

Deno.test("sign-up without an email (phone or anonymous) still creates a profile", async () => {
  const phoneUser = await signUp(admin, { email: null, phone: "+15550001111" });
  const anonymousUser = await signUp(admin, { email: null, anonymous: true });
  assert.deepEqual(await profileOf(phoneUser), { email: null });
  assert.deepEqual(await profileOf(anonymousUser), { email: null });
});

Deno.test("sign-up with an email another profile holds succeeds, the new profile without email", async () => {
  const first = await signUp(admin, { email: "shared@example.com" });
  const second = await signUp(admin, { email: "shared@example.com" });
  assert.deepEqual(await profileOf(first), { email: "shared@example.com" });
  assert.deepEqual(await profileOf(second), { email: null });
});

Deno.test("changing a user's email keeps the profile in step", async () => {
  const id = await signUp(admin, { email: "old@example.com" });
  await admin`update auth.users set email = 'new@example.com' where id = ${id}`;
  assert.deepEqual(await profileOf(id), { email: "new@example.com" });
});

Deno.test("changing to an email another profile holds never fails the auth update", async () => {
  await signUp(admin, { email: "taken@example.com" });
  const id = await signUp(admin, { email: "mine@example.com" });
  await admin`update auth.users set email = 'taken@example.com' where id = ${id}`;
  const [user] = await admin`select email from auth.users where id = ${id}`;
  assert.equal(user!.email, "taken@example.com");
  assert.deepEqual(await profileOf(id), { email: null });
});

Deno.test("deleting an auth user deletes their profile, sessions and messages", async () => {
  const id = await signUp(admin);
  const survivor = await signUp(admin);
  const session = await createSession(admin, id);
  await addMessage(admin, session, "user", "hi");
  await addMessage(admin, session, "assistant", "hello");
  const kept = await createSession(admin, survivor);
  await addMessage(admin, kept, "user", "still here");

  await admin`delete from auth.users where id = ${id}`;

  const [left] = await admin`
    select (select count(*) from public.profiles where id = ${id})::int as profiles,
           (select count(*) from public.chat_sessions where user_id = ${id})::int as sessions,
           (select count(*) from public.messages where chat_session_id = ${session})::int as messages,
           (select count(*) from public.messages where chat_session_id = ${kept})::int as survivor`;
  assert.deepEqual({ ...left }, { profiles: 0, sessions: 0, messages: 0, survivor: 1 });
});

Deno.test("adding a message moves its session's updated_at forward", async () => {
  const user = await signUp(admin);
  const session = await createSession(admin, user);
  const updatedAt = async () =>
    (await admin<
      { t: string }[]
    >`select updated_at::text as t from public.chat_sessions where id = ${session}`)[0]!.t;
  const before = await updatedAt();
  // as the user, like the API: the trigger must work without an update grant on updated_at
  await sendAs(user, session, "hi");
  const afterFirst = await updatedAt();
  await addMessage(admin, session, "assistant", "hello");
  const afterSecond = await updatedAt();
  const [order] = await admin`select ${before}::timestamptz < ${afterFirst}::timestamptz as first,
                                     ${afterFirst}::timestamptz < ${afterSecond}::timestamptz as second`;
  assert.deepEqual({ ...order }, { first: true, second: true });
});

Deno.test("the database rejects a NUL byte in message content", async () => {
  const session = await createSession(admin, await signUp(admin));
  // 22021: character_not_in_repertoire (invalid byte sequence for encoding "UTF8": 0x00)
  assert.equal(await sqlState(() => addMessage(admin, session, "user", "a\u0000b")), "22021");
});

Deno.test("the database rejects an unknown message role", async () => {
  const session = await createSession(admin, await signUp(admin));
  const state = await sqlState(() =>
    admin`insert into public.messages (chat_session_id, role, content) values (${session}, 'tool', 'x')`
  );
  assert.equal(state, "23514"); // check_violation
});

Deno.test("the database rejects empty user content, a finish reason on a user message, and a bad title", async () => {
  const user = await signUp(admin);
  const session = await createSession(admin, user);
  assert.equal(await sqlState(() => addMessage(admin, session, "user", "")), "23514");
  assert.equal(
    await sqlState(() =>
      admin`insert into public.messages (chat_session_id, role, content, finish_reason)
            values (${session}, 'user', 'x', 'stop')`
    ),
    "23514",
  );
  assert.equal(await sqlState(() => createSession(admin, user, "")), "23514");
  assert.equal(await sqlState(() => createSession(admin, user, "x".repeat(201))), "23514");
});

Deno.test("a client message id is stored at most once per session", async () => {
  const user = await signUp(admin);
  const [a, b] = [await createSession(admin, user), await createSession(admin, user)];
  const insert = (session: string) =>
    admin`insert into public.messages (chat_session_id, role, content, client_message_id)
          values (${session}, 'user', 'hi', 'msg-1')`;
  await insert(a);
  await insert(b); // the same client id in another session is fine
  assert.equal(await sqlState(() => insert(a)), "23505"); // unique_violation
});

Deno.test("a new session is owned by the caller and titled 'New Chat - YYYY-MM-DD HH:MM:SS' in UTC", async () => {
  const user = await signUp(admin);
  const id = crypto.randomUUID();
  // as the API creates it
  assert.deepEqual([...await sendAs(user, id, "hi")], [{ outcome: "new" }]);
  const [row] = await admin`
    select user_id, title, to_char(created_at at time zone 'utc', 'YYYY-MM-DD HH24:MI:SS') as utc
    from public.chat_sessions where id = ${id}`;
  assert.equal(row!.user_id, user);
  assert.equal(row!.title, `New Chat - ${row!.utc}`);
});

Deno.test("messages keep insertion order even when their timestamps tie", async () => {
  const session = await createSession(admin, await signUp(admin));
  const contents = ["one", "two", "three", "four"];
  // one transaction: now() is the same for every row
  await admin.begin(async (tx) => {
    for (const content of contents) {
      await tx`insert into public.messages (chat_session_id, role, content) values (${session}, 'user', ${content})`;
    }
  });
  const rows = await admin<{ content: string; created_at: Date }[]>`
    select content, created_at from public.messages where chat_session_id = ${session} order by seq`;
  assert.equal(
    new Set(rows.map((r) => r.created_at.getTime())).size,
    1,
    "timestamps should tie here",
  );
  assert.deepEqual(rows.map((r) => r.content), contents);
});

Deno.test("every table in public has row level security enabled", async () => {
  const tables = await admin<{ name: string; rls: boolean }[]>`
    select relname as name, relrowsecurity as rls from pg_class
    where relnamespace = 'public'::regnamespace and relkind in ('r', 'p') order by relname`;
  assert.deepEqual(
    tables.map((t) => t.name).filter((n) => ["chat_sessions", "messages", "profiles"].includes(n)),
    [
      "chat_sessions",
      "messages",
      "profiles",
    ],
  );
  assert.deepEqual(tables.filter((t) => !t.rls).map((t) => t.name), []);
});

Deno.test("anon holds no privilege on any table in public", async () => {
  const granted = await admin<{ name: string }[]>`
    select c.relname as name from pg_class c
    where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p', 'v', 'm')
      and has_table_privilege('anon', c.oid, 'select, insert, update, delete, truncate, references, trigger')`;
  assert.deepEqual(granted.map((t) => t.name), []);
});

Deno.test("the list and history queries are served by indexes", async () => {
  const indexes = await admin<{ def: string }[]>`
    select indexdef as def from pg_indexes where schemaname = 'public' order by indexname`;
  const defs = indexes.map((i) => i.def);
  assert.ok(defs.some((d) => d.includes("(user_id, updated_at DESC, id DESC)")), defs.join("\n"));
  assert.ok(
    defs.some((d) => d.includes("UNIQUE INDEX") && d.includes("(chat_session_id, seq)")),
    defs.join("\n"),
  );
});

Deno.test("each message records the prompt cost of everything before it in its session", async () => {
  const session = await createSession(admin, await signUp(admin));
  const other = await createSession(admin, await signUp(admin));
  const insert = (id: string, content: string, tokens: number | null) =>
    admin`insert into public.messages (chat_session_id, role, content, tokens)
          values (${id}, 'user', ${content}, ${tokens})`;
  await insert(session, "five tokens here ok", 5);
  await insert(other, "another session", 2);
  await insert(session, "abc", null); // no count: charged its 3 bytes
  await insert(session, "seven", 7);
  const rows = await admin<{ tokens_before: string }[]>`
    select tokens_before from public.messages where chat_session_id = ${session} order by seq`;
  // 0; 5 + 4; 9 + 3 + 4
  assert.deepEqual(rows.map((r) => Number(r.tokens_before)), [0, 9, 16]);
});

Deno.test("concurrent messages to one session keep the running token total exact", async () => {
  const user = await signUp(admin);
  const session = await createSession(admin, user);
  // a user's sends are taken one at a time, but replies are saved whenever their streams end:
  // half of each, at once, as the user
  await Promise.all(
    Array.from(
      { length: 20 },
      (_, i) =>
        i % 2
          ? sendAs(user, session, `message ${i}`)
          : asCaller(admin, userClaims(user), (tx) =>
            tx`select chat_private.save_reply(gen_random_uuid(), ${session}, ${`reply ${i}`},
                                            'test-model', 'stop', 1, null, null, null)`),
    ),
  );
  const rows = await admin<{ tokens_before: string }[]>`
    select tokens_before from public.messages where chat_session_id = ${session} order by seq`;
  assert.deepEqual(
    rows.map((r) => Number(r.tokens_before)),
    Array.from({ length: 20 }, (_, i) => i * 5),
  );
});
