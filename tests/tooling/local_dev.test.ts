/**
 * The README's promise, end to end: `deno task dev` serves the API,
 * `deno task token` signs a user in, and the curl examples work against it.
 */
import assert from "node:assert/strict";
import { createTestDatabase } from "../support/database.ts";
import { run, startDev, stateDir } from "../support/dev_server.ts";

Deno.test("deno task dev + deno task token + the curl tour: every route's script, create, stream, re-attach, stop, list, rename, delete", async () => {
  const db = await createTestDatabase({ migrate: false });
  const env = { DATABASE_URL: db.url, LOCAL_STATE_DIR: await stateDir() };
  const dev = await startDev(env);
  try {
    const token = await run(Deno.execPath(), [
      "run",
      "--allow-all",
      "--quiet",
      "local/token.ts",
      "tour@example.com",
    ], env);
    assert.equal(token.code, 0, token.stderr);
    assert.match(token.stdout, /^[\w-]+\.[\w-]+\.[\w-]+\n$/, "prints only the token");
    const [profile] = await db
      .admin`select p.email from public.profiles p join auth.users u on u.id = p.id
                                      where u.email = 'tour@example.com'`;
    assert.equal(profile?.email, "tour@example.com", "the sign-up trigger made the profile");

    const tour = await run("bash", ["examples/tour.sh"], {
      ...env,
      API: dev.api,
      TOKEN: token.stdout.trim(),
    });
    assert.equal(tour.code, 0, tour.stderr);
    assert.match(tour.stdout, /offline stand-in model[^\n]*You said: "Hello! What can you do\?"/);
    assert.match(
      tour.stdout,
      /event: done\ndata: \{[^\n]*"model":"offline-stand-in","finish_reason":"stop"/,
    );
    assert.match(tour.stdout, /"title":"My first chat"/);
    // every route has its script: the document, re-attach and stop (nothing streams by then), the
    // AI SDK 5+ send
    assert.match(tour.stdout, /## GET \/api\/openapi\.json[^\n]*\n(?:[^\n]*\n)*\/api\/chat post\n/);
    assert.match(tour.stdout, /## GET [^\n]*\/stream [^\n]*\n\nHTTP 204\n/);
    assert.match(tour.stdout, /## DELETE [^\n]*\/stream [^\n]*\n\nHTTP 204\n/);
    assert.match(
      tour.stdout,
      /## POST \/api\/chat [^\n]*\ndata: \{"type":"start"[^\n]*\n(?:[^\n]*\n)*?data: \{"type":"finish"/,
    );
    // the tree: an edit answered on its branch, a switch back, the edit's branch deleted
    assert.match(tour.stdout, /You said: "Hello! What can't you do\?"/);
    assert.match(tour.stdout, /## PUT [^\n]*\n\{"current_message_id":"[0-9a-f-]{36}"\}/);
    assert.match(tour.stdout, /## DELETE [^\n]*messages[^\n]*\n\{"detail":[^\n]*"deleted":3,/);
    assert.match(
      tour.stdout,
      /\{"detail":"Chat session and its messages have been deleted"\}\n## GET \/api\/sessions\n\[\]\n$/,
    );
  } finally {
    assert.match(await dev.stop(), /model: OFFLINE stand-in "offline-stand-in"/);
  }
});

Deno.test("deno task dev keeps its embedded database and its cursor secret between runs", async () => {
  const env = { DATABASE_URL: "", LOCAL_STATE_DIR: await stateDir() };
  const session = crypto.randomUUID();
  const first = await startDev(env);
  const token = (await run(Deno.execPath(), [
    "run",
    "--allow-all",
    "--quiet",
    "local/token.ts",
    "keep@example.com",
  ], env)).stdout.trim();
  const headers = { authorization: `Bearer ${token}`, "content-type": "application/json" };
  let cursor: string | null = null;
  try {
    // sent as the original frontend sends it: its session id and model name, no protocol choice
    const sent = await fetch(`${first.api}/sessions/${session}`, {
      method: "POST",
      headers,
      body: JSON.stringify({
        messages: [{ role: "user", content: "Remember me" }],
        sessionId: session,
        model: "gpt-3.5-turbo-0125",
      }),
    });
    assert.equal(sent.status, 200);
    assert.equal(sent.headers.get("x-vercel-ai-data-stream"), "v1");
    assert.equal(sent.headers.get("x-model"), "offline-stand-in");
    assert.match(
      await sent.text(),
      /^8:\[\{"type":"reply",[^\n]*\n0:""\n0:"This "\n[^]*\nd:\{"finishReason":"stop"/,
    );
    const page = await fetch(`${first.api}/sessions/${session}?limit=1`, { headers });
    await page.body?.cancel();
    cursor = page.headers.get("x-next-cursor");
  } finally {
    await first.stop();
  }
  assert.ok(cursor, "the first page of two messages has a next page");
  // a secret of its own, made once, readable only by its owner
  const secretFile = await Deno.stat(`${env.LOCAL_STATE_DIR}/cursor_secret`);
  assert.equal(secretFile.mode! & 0o777, 0o600);
  const second = await startDev(env);
  try {
    const history = await fetch(`${second.api}/sessions/${session}`, { headers });
    assert.equal(history.status, 200);
    const messages = await history.json();
    assert.deepEqual(messages.map((m: { role: string }) => m.role), ["user", "assistant"]);
    assert.equal(messages[0].content, "Remember me");
    // a cursor from before the restart still verifies
    const older = await fetch(`${second.api}/sessions/${session}?limit=1&before=${cursor}`, {
      headers,
    });
    assert.equal(older.status, 200);
    assert.deepEqual((await older.json()).map((m: { content: string }) => m.content), [
      "Remember me",
    ]);
  } finally {
    await second.stop();
  }
});
