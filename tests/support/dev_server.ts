/** `deno task dev` as the tests run it: a real process, waited on until it answers. */
import assert from "node:assert/strict";
import { freePort } from "../../local/database.ts";

const root = new URL("../../", import.meta.url).pathname;

export async function run(command: string, args: string[], env: Record<string, string>) {
  const output = await new Deno.Command(command, { args, env, cwd: root }).output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code: output.code, stdout: decode(output.stdout), stderr: decode(output.stderr) };
}

/** A state dir the embedded Postgres's own OS user can reach (it runs as `postgres` when we are root). */
export async function stateDir(): Promise<string> {
  const dir = await Deno.makeTempDir();
  await Deno.chmod(dir, 0o755);
  return dir;
}

/**
 * Starts local/dev.ts and waits for /api/health; returns how to stop it. Its ports are free ones
 * chosen here, or with `defaultPorts` its own defaults (PORT and DOCS_PORT unset, as a user runs
 * it), read from what it logs.
 */
export async function startDev(env: Record<string, string>, opts: { defaultPorts?: boolean } = {}) {
  const ports: Record<string, string> = opts.defaultPorts
    ? {}
    : { PORT: String(freePort()), DOCS_PORT: String(freePort()) };
  // with its defaults, none of this process's PORT or DOCS_PORT either
  const inherited = Deno.env.toObject();
  if (opts.defaultPorts) { for (const name of ["PORT", "DOCS_PORT"]) delete inherited[name]; }
  const dev = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "local/dev.ts"],
    clearEnv: true,
    env: { ...inherited, ...env, ...ports, OPENAI_API_KEY: "" },
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
  const deadline = Date.now() + 60_000;
  const fail = (why: string) => assert.fail(`deno task dev ${why}:\n${log}`);
  let api = ports.PORT ? `http://127.0.0.1:${ports.PORT}/api` : undefined;
  for (;;) {
    api ??= /\[dev\] API: (\S+)/.exec(log)?.[1];
    const ok = api !== undefined && await fetch(`${api}/health`).then(
      (r) => r.body?.cancel().then(() => r.ok),
      () => false,
    );
    if (ok) break;
    if (exited) fail("exited early");
    if (Date.now() > deadline) fail("did not answer /api/health within 60 s");
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  // the docs page is served (or said to be skipped) right after the API is announced
  while (!/\[dev\] docs: /.test(log)) {
    if (exited) fail("exited early");
    if (Date.now() > deadline) fail("said nothing of its docs page within 60 s");
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const docs = /\[dev\] docs: (http\S+)/.exec(log)?.[1] ?? fail("served no docs page");
  return {
    api: api!,
    /** the docs page dev serves for its API */
    docs,
    /** SIGTERM, as a service manager would; resolves once dev has shut everything down */
    async stop() {
      dev.kill("SIGTERM");
      const status = await dev.status;
      await logRead;
      // dev handles SIGTERM itself: an orderly shutdown, exit code 0
      assert.equal(status.code, 0, `dev exited with ${status.code}:\n${log}`);
      assert.match(log, /\[dev\] stopping/);
      // the embedded database is stopped by the dev that started it (not by one sharing it)
      if (env.LOCAL_STATE_DIR && !env.DATABASE_URL && /database: embedded Postgres/.test(log)) {
        await assert.rejects(
          Deno.stat(`${env.LOCAL_STATE_DIR}/postgres/postmaster.pid`),
          Deno.errors.NotFound,
        );
      }
      return log;
    },
  };
}
