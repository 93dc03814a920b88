/**
 * Bounded memory: the function, in a process of its own under the Edge
 * Runtime's Deno (2.1.4), serves a session of more than 100 MB with
 * `GET /api/sessions/{id}` (no `limit`), streamed a page at a time, and its
 * resident memory grows by far less than the history while it does (before
 * the streaming, one 183 MB history took the process from 130 to 794 MB).
 * The history is inserted with SQL as the superuser; the body is checked
 * whole.
 *
 * Both the total and the growth are checked: the process stays under 200
 * MB (about 125 before the request: 100 of them the Deno CLI itself, which
 * holds that much importing nothing) and grows by less than 100 MB (about
 * 55 here, with pages of 256 KB). Under Deno 2.9.6 (V8 15) the same run
 * grows about twice as much: V8 collects the socket's spent buffers later,
 * not because the function holds them (with a forced GC between pages the
 * growth is about 20 MB).
 */
import assert from "node:assert/strict";
import { freePort } from "../../local/database.ts";
import { createSigningKey, jwksOf, signAccessToken } from "../../local/signing_keys.ts";
import { TEST_CURSOR_SECRET } from "../support/api.ts";
import { edgeDeno } from "../../local/edge_deno.ts";
import { createTestDatabase } from "../support/database.ts";
import { createSession, signUp } from "../support/fixtures.ts";

const MB = 1024 * 1024;
/** what serving the history may add to the process's peak resident memory */
const GROWTH_LIMIT = 100 * MB;
/**
 * the most the whole process may reach while serving it. A Deno 2.1.4 process that imports
 * nothing already holds about 100 MB (the CLI's own machinery); the function adds about 20.
 */
const PEAK_LIMIT = 200 * MB;

/** Peak and current resident memory of a process, in bytes (Linux). */
async function residentMemory(pid: number): Promise<{ peak: number; now: number }> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const kb = (field: string) =>
    Number(status.match(new RegExp(`^${field}:\\s+(\\d+) kB`, "m"))![1]);
  return { peak: kb("VmHWM") * 1024, now: kb("VmRSS") * 1024 };
}

Deno.test("a history of more than 100 MB is served whole while the function's process stays under 200 MB", async () => {
  const db = await createTestDatabase();
  const key = await createSigningKey();
  const userId = await signUp(db.admin);
  const session = await createSession(db.admin, userId, "A very long conversation");
  // 1000 messages of about 100 KB, and three of 4 MB (each more than a page's worth of bytes)
  await db.admin`
    insert into public.messages (chat_session_id, role, content)
    select ${session}, case when i % 2 = 0 then 'user' else 'assistant' end,
           i || ': ' || repeat(
             E'All work and no play makes "Jack" a dull boy — ' || i || E'.\n',
             case when i in (10, 500, 990) then 80000 else 2000 end)
    from generate_series(0, 999) as i`;
  const [totals] = await db.admin<{ bytes: number; chars: number }[]>`
    select sum(octet_length(content))::bigint::float8 as bytes,
           sum(char_length(content))::bigint::float8 as chars
    from public.messages where chat_session_id = ${session}`;
  assert.ok(totals!.bytes > 100 * MB, `the history holds ${totals!.bytes} bytes`);
  const ids = (await db.admin<{ id: string }[]>`
    select id from public.messages where chat_session_id = ${session} order by seq`).map((r) =>
    r.id
  );

  const port = freePort();
  const deno = await edgeDeno();
  const functionDir = new URL("../../supabase/functions/api/", import.meta.url).pathname;
  // A deployed function starts from its bundle, never downloading or resolving a package: the
  // function's npm packages are cached first, so the process measured does no more than that (on
  // a cold cache, resolving them in process left it about 50 MB larger before any request).
  const cached = await new Deno.Command(deno.path, {
    args: ["cache", "--no-lock", "--config", "deno.json", "index.ts"],
    cwd: functionDir,
    env: deno.env,
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.ok(cached.success, new TextDecoder().decode(cached.stderr));
  const server = new Deno.Command(deno.path, {
    args: ["run", "--allow-net", "--allow-env", "--no-lock", "--config", "deno.json", "index.ts"],
    cwd: functionDir,
    clearEnv: true,
    env: {
      ...deno.env,
      PATH: Deno.env.get("PATH") ?? "",
      HOME: Deno.env.get("HOME") ?? "",
      SUPABASE_DB_URL: db.url,
      SUPABASE_JWKS: JSON.stringify(jwksOf(key)),
      OPENAI_API_KEY: "unused",
      CURSOR_SECRET: TEST_CURSOR_SECRET,
      PORT: String(port),
    },
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  try {
    const api = `http://127.0.0.1:${port}/api`;
    for (let tries = 0;; tries++) {
      const up = await fetch(`${api}/health`).then(
        (r) => r.body?.cancel().then(() => true),
        () => false,
      );
      if (up) break;
      if (tries > 300) assert.fail("the function did not start");
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const before = await residentMemory(server.pid);
    const token = await signAccessToken(key, { id: userId });
    const response = await fetch(`${api}/sessions/${session}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-type"), "application/json");
    const body = await response.text();
    const after = await residentMemory(server.pid);

    const messages = JSON.parse(body) as { id: string; content: string }[];
    assert.deepEqual(messages.map((m) => m.id), ids);
    assert.equal(messages.reduce((sum, m) => sum + m.content.length, 0), totals!.chars);
    assert.deepEqual(Object.keys(messages[0]!), [
      "id",
      "chat_session_id",
      "role",
      "content",
      "created_at",
      // the tree (issue 17): its parent and its siblings
      "parent_id",
      "sibling_ids",
    ]);
    console.log(
      `served ${Math.round(totals!.bytes / MB)} MB of history: function RSS ${
        Math.round(before.now / MB)
      } MB before, peak ${Math.round(after.peak / MB)} MB`,
    );
    // VmHWM: the highest the process ever was, start-up included, so this can only overstate it
    assert.ok(
      after.peak < PEAK_LIMIT,
      `the process peaked at ${Math.round(after.peak / MB)} MB serving the history`,
    );
    const growth = after.peak - before.now;
    assert.ok(
      growth < GROWTH_LIMIT,
      `serving it took the process from ${Math.round(before.now / MB)} MB to a peak of ${
        Math.round(after.peak / MB)
      } MB`,
    );
  } finally {
    server.kill("SIGTERM");
    await server.status;
    await db.admin.end();
  }
});
