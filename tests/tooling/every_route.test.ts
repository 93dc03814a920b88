/**
 * What every route answers alike, driven by the OpenAPI document so that a
 * new route is covered by declaring it: 401 without a token (unless public),
 * 503 with Retry-After while the database is unreachable, 422 for a session
 * id that is not a UUID.
 */
import assert from "node:assert/strict";
import { freePort } from "../../local/database.ts";
import { startTestApi, type TestApi } from "../support/api.ts";
import { json, send } from "../support/http.ts";
import { gptLinear } from "../support/imports.ts";

const api = await startTestApi();
const { body: document } = await json(send(api, undefined, "GET", "/api/openapi.json"));

const bodies: Record<string, unknown> = {
  post: { messages: [{ role: "user", content: "hello" }] },
  put: { message_id: crypto.randomUUID() },
  patch: { title: "Renamed" },
};

/** Every documented operation, with a fresh session id in its path. */
function operations(): { method: string; path: string; isPublic: boolean; body: unknown }[] {
  return Object.entries(document.paths).flatMap(([template, item]) =>
    Object.entries(item as Record<string, { security?: unknown[] }>).map(([method, op]) => ({
      method: method.toUpperCase(),
      path: template.replace("{session_id}", crypto.randomUUID())
        .replace("{message_id}", crypto.randomUUID()),
      isPublic: op.security?.length === 0,
      // POST /chat names its session in the body, as the AI SDK sends its chat id; an import
      // takes an export file
      body: template === "/api/chat"
        ? { ...bodies.post!, id: crypto.randomUUID() }
        : template === "/api/imports"
        ? [gptLinear(crypto.randomUUID(), 1)]
        : bodies[method],
    }))
  );
}

async function answer(on: TestApi, op: ReturnType<typeof operations>[number], auth: boolean) {
  const user = auth ? await on.user() : undefined;
  const response = await send(on, user, op.method, op.path, op.body);
  const body = await response.json();
  await on.idle();
  return { status: response.status, headers: response.headers, body };
}

Deno.test("every route that is not public answers 401 with WWW-Authenticate without a token", async () => {
  let checked = 0;
  for (const op of operations()) {
    if (op.isPublic) continue;
    const { status, headers, body } = await answer(api, op, false);
    assert.equal(status, 401, `${op.method} ${op.path}`);
    assert.equal(headers.get("www-authenticate"), "Bearer");
    assert.match(body.detail, /^Not authenticated/);
    checked++;
  }
  assert.ok(checked >= 8, `only ${checked} signed-in routes`);
});

Deno.test("every route answers 503 with Retry-After while the database is unreachable", async () => {
  const unreachable = `postgres://postgres:postgres@127.0.0.1:${freePort()}/postgres`;
  for (const op of operations()) {
    // an app of its own per route: postgres.js waits longer before each new try on one pool
    const down = await startTestApi({ db: api.db, env: { SUPABASE_DB_URL: unreachable } });
    const { status, headers, body } = await answer(down, op, true);
    assert.equal(status, 503, `${op.method} ${op.path}`);
    assert.equal(headers.get("retry-after"), "5");
    assert.match(body.detail, /database is unavailable/i);
    assert.equal(down.model.requests.length, 0);
  }
});

Deno.test("a rename whose body is over MAX_BODY_BYTES gets 413 and renames nothing", async () => {
  const small = await startTestApi({ env: { MAX_BODY_BYTES: "1024" } });
  const user = await small.user();
  const session = crypto.randomUUID();
  await (await send(small, user, "POST", `/api/sessions/${session}?protocol=text`, bodies.post))
    .text();
  await small.idle();
  const { status, body } = await json(
    send(small, user, "PATCH", `/api/sessions/${session}/title`, { title: "x".repeat(2000) }),
  );
  assert.equal(status, 413);
  assert.match(body.detail, /larger than 1024 bytes/);
  const [row] = await small.db.admin`select title from public.chat_sessions where id = ${session}`;
  assert.match(row!.title, /^New Chat - /);
});

Deno.test("every route with a session id answers 422 naming the path for one that is not a UUID", async () => {
  let checked = 0;
  for (const op of operations()) {
    if (!/\/(sessions|chat)\/[0-9a-f-]{36}/.test(op.path)) continue;
    checked++;
    const malformed = { ...op, path: op.path.replace(/[0-9a-f-]{36}/, "not-a-uuid") };
    const { status, body } = await answer(api, malformed, true);
    assert.equal(status, 422, `${op.method} ${malformed.path}`);
    assert.deepEqual(body.detail[0].loc, ["path", "session_id"]);
  }
  assert.ok(checked >= 5, `only ${checked} routes with a session id`);
});
