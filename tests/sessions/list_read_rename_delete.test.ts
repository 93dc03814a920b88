/** Listing, reading, renaming and deleting sessions, and two users who never meet. */
import assert from "node:assert/strict";
import { freePort } from "../../local/database.ts";
import { startTestApi } from "../support/api.ts";
import { addMessage, createSession } from "../support/fixtures.ts";
import { chat, json, send, stored } from "../support/http.ts";

const api = await startTestApi({ env: { MAX_BODY_BYTES: "65536" } });
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

Deno.test("GET /api/sessions lists the caller's sessions, most recently updated first, ties by id", async () => {
  const user = await api.user();
  const [a, b, c] = [
    await createSession(api.db.admin, user.id, "a"),
    await createSession(api.db.admin, user.id, "b"),
    await createSession(api.db.admin, user.id, "c"),
  ];
  // a and c tie on updated_at; b is the most recent
  await api.db
    .admin`update public.chat_sessions set updated_at = '2026-01-01T00:00:00Z' where id in (${a}, ${c})`;
  await api.db
    .admin`update public.chat_sessions set updated_at = '2026-01-02T00:00:00Z' where id = ${b}`;
  const { status, body } = await json(send(api, user, "GET", "/api/sessions"));
  assert.equal(status, 200);
  const tied = [a, c].sort().reverse();
  assert.deepEqual(body.map((s: { id: string }) => s.id), [b, ...tied]);
  for (const session of body) {
    assert.deepEqual(Object.keys(session), ["id", "title", "created_at", "updated_at"]);
    assert.match(session.id, UUID);
    assert.match(session.created_at, ISO);
    assert.match(session.updated_at, ISO);
  }
});

Deno.test("GET /api/sessions/:id returns the messages in conversation order, even when timestamps tie", async () => {
  const user = await api.user();
  const session = await createSession(api.db.admin, user.id);
  const contents = ["first", "second", "third", "fourth"];
  await api.db.admin.begin(async (tx) => {
    for (const [i, content] of contents.entries()) {
      await tx`insert into public.messages (chat_session_id, role, content)
               values (${session}, ${i % 2 ? "assistant" : "user"}, ${content})`;
    }
  });
  const { status, body } = await json(send(api, user, "GET", `/api/sessions/${session}`));
  assert.equal(status, 200);
  assert.deepEqual(body.map((m: { content: string }) => m.content), contents);
  assert.deepEqual(Object.keys(body[0]), [
    "id",
    "chat_session_id",
    "role",
    "content",
    "created_at",
    // the tree (issue 17): after the original's fields, its parent and its siblings
    "parent_id",
    "sibling_ids",
  ]);
  assert.equal(body[0].chat_session_id, session);
  assert.match(body[0].created_at, ISO);
  // one branch: each follows the one before, alone among its siblings
  assert.deepEqual(
    body.map((
      m: { parent_id: string | null; sibling_ids: string[] },
    ) => [m.parent_id, m.sibling_ids]),
    body.map((m: { id: string }, i: number) => [i ? body[i - 1].id : null, [m.id]]),
  );
});

Deno.test("GET /api/sessions/:id of an own session without messages is an empty list", async () => {
  const user = await api.user();
  const session = await createSession(api.db.admin, user.id);
  assert.deepEqual(await json(send(api, user, "GET", `/api/sessions/${session}`)), {
    status: 200,
    body: [],
  });
});

Deno.test("GET /api/sessions/:id returns 422 for a malformed UUID and 404 for an unknown one", async () => {
  const user = await api.user();
  const bad = await json(send(api, user, "GET", "/api/sessions/not-a-uuid"));
  assert.equal(bad.status, 422);
  assert.deepEqual(bad.body.detail[0].loc, ["path", "session_id"]);
  assert.deepEqual(await json(send(api, user, "GET", `/api/sessions/${crypto.randomUUID()}`)), {
    status: 404,
    body: { detail: "Chat session not found" },
  });
});

Deno.test("an uppercase session id names the same session", async () => {
  const user = await api.user();
  const session = await createSession(api.db.admin, user.id);
  await addMessage(api.db.admin, session, "user", "hi");
  const { status, body } = await json(
    send(api, user, "GET", `/api/sessions/${session.toUpperCase()}`),
  );
  assert.equal(status, 200);
  assert.equal(body[0].chat_session_id, session);
});

Deno.test("PATCH /api/sessions/:id/title trims the title and returns the session with its owner", async () => {
  const user = await api.user();
  const session = await createSession(api.db.admin, user.id);
  const { status, body } = await json(
    send(api, user, "PATCH", `/api/sessions/${session}/title`, { title: "  Trip to Rome \n" }),
  );
  assert.equal(status, 200);
  assert.deepEqual(Object.keys(body), ["id", "title", "user_id", "created_at", "updated_at"]);
  assert.equal(body.id, session);
  assert.equal(body.title, "Trip to Rome");
  assert.equal(body.user_id, user.id);
});

Deno.test("PATCH /api/sessions/:id/title accepts 200 characters (emoji count as one) and refuses 201 or blank", async () => {
  const user = await api.user();
  const session = await createSession(api.db.admin, user.id);
  const patch = (title: unknown) =>
    json(send(api, user, "PATCH", `/api/sessions/${session}/title`, { title }));
  assert.equal((await patch("🙂".repeat(200))).body.title, "🙂".repeat(200));
  for (const title of ["x".repeat(201), "   ", "", 42, null, "a\u0000b"]) {
    const { status, body } = await patch(title);
    assert.equal(status, 422, JSON.stringify(title));
    assert.deepEqual(body.detail[0].loc, ["body", "title"]);
  }
  const missing = await json(send(api, user, "PATCH", `/api/sessions/${session}/title`, {}));
  assert.deepEqual(missing.body.detail[0], {
    loc: ["body", "title"],
    msg: missing.body.detail[0].msg,
    type: "missing",
  });
  const [row] = await api.db.admin`select title from public.chat_sessions where id = ${session}`;
  assert.equal(row!.title, "🙂".repeat(200));
});

Deno.test("DELETE /api/sessions/:id deletes the session and its messages", async () => {
  const user = await api.user();
  const session = await createSession(api.db.admin, user.id);
  await addMessage(api.db.admin, session, "user", "bye");
  assert.deepEqual(await json(send(api, user, "DELETE", `/api/sessions/${session}`)), {
    status: 200,
    body: { detail: "Chat session and its messages have been deleted" },
  });
  assert.deepEqual(await stored(api, session), []);
  assert.equal((await send(api, user, "DELETE", `/api/sessions/${session}`)).status, 404);
});

Deno.test("DELETE /api/empty-sessions deletes all of the caller's sessions and nobody else's", async () => {
  const [me, other] = [await api.user(), await api.user()];
  for (let i = 0; i < 3; i++) {
    await addMessage(api.db.admin, await createSession(api.db.admin, me.id), "user", "x");
  }
  const theirs = await createSession(api.db.admin, other.id);
  await addMessage(api.db.admin, theirs, "user", "keep me");
  assert.deepEqual(await json(send(api, me, "DELETE", "/api/empty-sessions")), {
    status: 200,
    body: { detail: "All chat sessions and messages have been deleted" },
  });
  const [left] = await api.db.admin`
    select (select count(*) from public.chat_sessions where user_id = ${me.id})::int as mine,
           (select count(*) from public.chat_sessions where user_id = ${other.id})::int as theirs`;
  assert.deepEqual({ ...left }, { mine: 0, theirs: 1 });
  assert.equal((await stored(api, theirs)).length, 1);
});

Deno.test("two users can never see or change each other's sessions through any route", async () => {
  const [alice, bob] = [await api.user(), await api.user()];
  const session = crypto.randomUUID();
  assert.equal((await chat(api, alice, session, "Alice's secret")).status, 200);
  const before = await stored(api, session);
  const [sessionBefore] = await api.db
    .admin`select * from public.chat_sessions where id = ${session}`;

  const list = await json(send(api, bob, "GET", "/api/sessions"));
  assert.deepEqual(list.body, []);
  const attempts = [
    send(api, bob, "GET", `/api/sessions/${session}`),
    send(api, bob, "POST", `/api/sessions/${session}`, {
      messages: [{ role: "user", content: "Bob was here" }],
    }),
    send(api, bob, "PATCH", `/api/sessions/${session}/title`, { title: "Bob's now" }),
    send(api, bob, "DELETE", `/api/sessions/${session}`),
  ];
  for (const response of await Promise.all(attempts)) {
    assert.equal(response.status, 404);
    const text = await response.text();
    assert.ok(!text.includes("Alice"), text);
    assert.deepEqual(JSON.parse(text), { detail: "Chat session not found" });
  }
  await send(api, bob, "DELETE", "/api/empty-sessions");
  await api.idle();

  assert.deepEqual(await stored(api, session), before);
  const [sessionAfter] = await api.db
    .admin`select * from public.chat_sessions where id = ${session}`;
  assert.deepEqual(sessionAfter, sessionBefore);
  const mine = await json(send(api, alice, "GET", `/api/sessions/${session}`));
  assert.equal(mine.body.length, 2);
});

Deno.test("a wrong method on a known path gets 405 with Allow; an unknown path 404, both JSON", async () => {
  const user = await api.user();
  const session = crypto.randomUUID();
  const cases: [string, string, string][] = [
    ["PUT", `/api/sessions/${session}`, "GET, POST, DELETE"],
    ["POST", "/api/sessions", "GET"],
    ["GET", `/api/sessions/${session}/title`, "PATCH"],
    ["GET", "/api/empty-sessions", "DELETE"],
    ["POST", "/api/health", "GET"],
  ];
  for (const [method, path, allow] of cases) {
    const response = await send(api, user, method, path);
    assert.equal(response.status, 405, `${method} ${path}`);
    assert.equal(response.headers.get("allow"), allow);
    assert.deepEqual(await response.json(), { detail: "Method not allowed" });
  }
  assert.deepEqual(await json(send(api, user, "GET", "/api/nowhere")), {
    status: 404,
    body: { detail: "Not found" },
  });
});

Deno.test("a body over the configured limit gets 413 and stores nothing", async () => {
  const user = await api.user();
  const session = crypto.randomUUID();
  const big = { messages: [{ role: "user", content: "x".repeat(70_000) }] };
  const { status, body } = await json(send(api, user, "POST", `/api/sessions/${session}`, big));
  assert.equal(status, 413);
  assert.match(body.detail, /larger than 65536 bytes/);
  assert.deepEqual(await stored(api, session), []);
});

Deno.test("an unreachable database gets 503 JSON with Retry-After, never a 500", async () => {
  const closedPort = freePort();
  const down = await startTestApi({
    env: { SUPABASE_DB_URL: `postgres://postgres:postgres@127.0.0.1:${closedPort}/postgres` },
  });
  const user = await down.user(); // made in the test's own database, which is up
  for (
    const [method, path, body] of [
      ["GET", "/api/sessions"],
      ["POST", `/api/sessions/${crypto.randomUUID()}`, {
        messages: [{ role: "user", content: "hi" }],
      }],
      ["GET", "/api/health"],
    ] as [string, string, unknown?][]
  ) {
    const response = await send(down, user, method, path, body);
    assert.equal(response.status, 503, `${method} ${path}`);
    assert.equal(response.headers.get("retry-after"), "5");
    assert.match((await response.json()).detail, /database is unavailable/);
  }
  assert.equal(down.model.requests.length, 0);
});
