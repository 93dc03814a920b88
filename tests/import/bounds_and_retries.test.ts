/**
 * What bounds an import (the body limit, per-import counts, the daily import quota), that a
 * retry adds nothing, that an import is stored whole or not at all, that it is its user's
 * alone, and that imported sessions are ordinary sessions afterwards.
 */
import assert from "node:assert/strict";
import { asCaller } from "../../supabase/functions/api/database.ts";
import { startTestApi } from "../support/api.ts";
import { anonClaims, sqlState, userClaims } from "../support/fixtures.ts";
import { chat, json, send } from "../support/http.ts";
import { countsOf, gptLinear, importFile, realExport, webUiChat } from "../support/imports.ts";

const api = await startTestApi({
  env: {
    IMPORT_MAX_CONVERSATIONS: "3",
    IMPORT_MAX_MESSAGES: "40",
    IMPORT_MAX_CHARACTERS: "2000",
    MAX_BODY_BYTES: "32768",
    QUOTA_IMPORTED_MESSAGES_PER_DAY: "10",
  },
});
const admin = api.db.admin;

Deno.test("413 past a bound of one import, nothing stored: conversations, messages, characters, bytes", async () => {
  const user = await api.user();
  const long = webUiChat("long", [{ id: "u", parentId: null, content: "x".repeat(2001) }]);
  const bulky = webUiChat("bulky", [{ id: "u", parentId: null, content: "y".repeat(40_000) }]);
  for (
    const [file, detail] of [
      [[1, 2, 3, 4].map((i) => gptLinear(`c${i}`, 1)), /4 conversations; .* at most 3 /],
      // 2 + 2 * 20 nodes: every node counts, kept or not
      [[gptLinear("deep", 20)], /42 messages; .* at most 40 /],
      [[long], /2001 characters of text; .* at most 2000 /],
      [[bulky], /larger than 32768 bytes/],
    ] as const
  ) {
    const { status, body } = await importFile(api, user, file);
    assert.equal(status, 413, JSON.stringify(body));
    assert.match(body.detail, detail);
    assert.deepEqual(await countsOf(api, user.id), { sessions: 0, messages: 0 });
  }
});

Deno.test("the daily import quota: 429 with Retry-After past it, 413 for an import it can never take; deleting gives nothing back", async () => {
  const user = await api.user();
  // 3 turns: 6 messages of the 10 a day
  assert.equal((await importFile(api, user, [gptLinear("first", 3)])).status, 200);
  const over = await json(send(api, user, "POST", "/api/imports", [gptLinear("second", 3)]));
  assert.equal(over.status, 429);
  assert.match(over.body.detail, /10 messages per 24 hours/);
  const response = await send(api, user, "POST", "/api/imports", [gptLinear("second", 3)]);
  const retryAfter = Number(response.headers.get("retry-after"));
  await response.body?.cancel();
  assert.ok(retryAfter > 86_000 && retryAfter <= 86_400, String(retryAfter));
  // a retry of the first adds nothing, so it is answered at the limit too
  const again = await importFile(api, user, [gptLinear("first", 3)]);
  assert.equal(again.status, 200);
  assert.equal(again.body.sessions[0].status, "already_imported");
  // 12 messages never fit in 10
  const never = await importFile(api, user, [gptLinear("big", 6)]);
  assert.equal(never.status, 413);
  assert.match(never.body.detail, /daily import quota \(10 messages per 24 hours\)/);
  // deleting the imported session frees the conversation, not the quota
  await send(api, user, "DELETE", `/api/sessions/${again.body.sessions[0].id}`);
  assert.equal((await importFile(api, user, [gptLinear("first", 3)])).status, 429);
  // a day later it fits again
  await admin`update chat_private.imports set imported_at = now() - interval '25 hours'
              where user_id = ${user.id}`;
  const later = await importFile(api, user, [gptLinear("first", 3)]);
  assert.equal(later.status, 200);
  assert.equal(later.body.sessions[0].status, "imported");
  assert.notEqual(later.body.sessions[0].id, again.body.sessions[0].id);
  assert.deepEqual(await countsOf(api, user.id), { sessions: 1, messages: 6 });
});

Deno.test("the same file imported twice at once: one session per conversation", async () => {
  const user = await api.user();
  const file = await realExport("openwebui-export.json");
  const [a, b] = await Promise.all([importFile(api, user, file), importFile(api, user, file)]);
  assert.deepEqual([a.status, b.status], [200, 200]);
  const statuses = [...a.body.sessions, ...b.body.sessions].map((s) => s.status).sort();
  assert.deepEqual(statuses, [
    "already_imported",
    "already_imported",
    "already_imported",
    "imported",
    "imported",
    "imported",
  ]);
  assert.deepEqual(
    a.body.sessions.map((s: { id: string }) => s.id),
    b.body.sessions.map((s: { id: string }) => s.id),
  );
  assert.deepEqual(await countsOf(api, user.id), { sessions: 3, messages: 6 });
});

Deno.test("a failure storing the second conversation leaves the first unstored: one transaction", async () => {
  const user = await api.user();
  const valid = {
    source_id: "ok",
    title: "fine",
    created_at: null,
    updated_at: null,
    current: 0,
    messages: [{ parent: null, role: "user", content: "hi", tokens: 1 }],
  };
  // a child before its parent is refused by the function itself
  const broken = { ...valid, source_id: "bad", messages: [{ ...valid.messages[0], parent: 1 }] };
  const state = await sqlState(() =>
    asCaller(
      admin,
      userClaims(user.id),
      (tx) =>
        tx`select * from chat_private.import_conversations('chatgpt',
           ${tx.json([valid, broken])}, 0)`,
    )
  );
  assert.equal(state, "22023");
  assert.deepEqual(await countsOf(api, user.id), { sessions: 0, messages: 0 });
  // the Data API (request.method set) and anon are refused
  const viaPostgrest = await sqlState(() =>
    asCaller(admin, userClaims(user.id), async (tx) => {
      await tx`select set_config('request.method', 'POST', true)`;
      await tx`select * from chat_private.import_conversations('chatgpt', ${tx.json([valid])}, 0)`;
    })
  );
  assert.equal(viaPostgrest, "42501");
  const asAnon = await sqlState(() =>
    asCaller(
      admin,
      anonClaims,
      (tx) =>
        tx`select * from chat_private.import_conversations('chatgpt', ${tx.json([valid])}, 0)`,
    )
  );
  assert.equal(asAnon, "42501");
  assert.deepEqual(await countsOf(api, user.id), { sessions: 0, messages: 0 });
});

Deno.test("imported sessions are their user's alone; another user importing the same file gets sessions of their own", async () => {
  const [me, other] = [await api.user(), await api.user()];
  const file = await realExport("openwebui-export.json");
  const mine = (await importFile(api, me, file)).body.sessions.map((s: { id: string }) => s.id);
  for (const id of mine) {
    assert.equal((await send(api, other, "GET", `/api/sessions/${id}`)).status, 404);
    const seen = await asCaller(
      admin,
      userClaims(other.id),
      (tx) =>
        tx`select (select count(*)::int from public.messages where chat_session_id = ${id}) as messages,
                (select count(*)::int from public.chat_sessions where id = ${id}) as sessions`,
    );
    assert.deepEqual({ ...seen[0] }, { messages: 0, sessions: 0 });
  }
  const theirs = await importFile(api, other, file);
  assert.deepEqual(theirs.body.sessions.map((s: { status: string }) => s.status), [
    "imported",
    "imported",
    "imported",
  ]);
  assert.ok(theirs.body.sessions.every((s: { id: string }) => !mine.includes(s.id)));
  const { body: listed } = await json(send(api, me, "GET", "/api/sessions"));
  assert.deepEqual(listed.map((s: { id: string }) => s.id).sort(), [...mine].sort());
});

Deno.test("an imported session is an ordinary one: read, continued with its history in the prompt; usage counts no imported reply", async () => {
  const user = await api.user();
  const { body } = await importFile(api, user, [gptLinear("go-on", 2)]);
  const id = body.sessions[0].id;
  const { body: read } = await json(send(api, user, "GET", `/api/sessions/${id}`));
  assert.deepEqual(read.map((m: { content: string }) => m.content), [
    "question 0",
    "answer 0",
    "question 1",
    "answer 1",
  ]);
  const { body: usage } = await json(
    send(api, user, "GET", "/api/usage?from=2023-11-01&to=2023-11-30"),
  );
  assert.deepEqual(usage, []);
  const sent = await chat(api, user, id, "question 2", { protocol: "text" });
  assert.equal(sent.status, 200);
  assert.deepEqual(api.model.requests.at(-1)!.messages.slice(1).map((m) => m.content), [
    "question 0",
    "answer 0",
    "question 1",
    "answer 1",
    "question 2",
  ]);
  const { body: after } = await json(send(api, user, "GET", "/api/usage"));
  assert.equal(after.reduce((n: number, row: { replies: number }) => n + row.replies, 0), 1);
});
