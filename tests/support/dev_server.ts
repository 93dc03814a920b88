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

/** Starts local/dev.ts and waits for /api/health; returns how to stop it. */
export async function startDev(env: Record<string, string>) {
  const port = String(freePort());
  const docsPort = String(freePort());
  const dev = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "local/dev.ts"],
    env: { ...env, PORT: port, DOCS_PORT: docsPort, OPENAI_API_KEY: "" },
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
    /** the docs page dev serves for its API */
    docs: `http://127.0.0.1:${docsPort}/`,
    /** SIGTERM, as a service manager would; resolves once dev has shut everything down */
    async stop() {
      dev.kill("SIGTERM");
      const status = await dev.status;
      await logRead;
      // dev handles SIGTERM itself: an orderly shutdown, exit code 0
      assert.equal(status.code, 0, `dev exited with ${status.code}:\n${log}`);
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
