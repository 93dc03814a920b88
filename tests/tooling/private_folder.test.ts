/**
 * A newcomer's commands work from any folder, also as root in a private one
 * (mode 0700, as root's home is): there the embedded Postgres runs as its own
 * OS user, who cannot enter that folder, so neither its binaries nor its data
 * may stay inside it. The project is copied into such a folder and run there.
 */
import assert from "node:assert/strict";
import { exists } from "../../local/files.ts";

const root = new URL("../../", import.meta.url).pathname;
const asRoot = Deno.uid() === 0;

Deno.test("from a private (0700) folder, deno task test's Postgres starts and deno task token keeps its database", async (t) => {
  const privateDir = await Deno.makeTempDir({ prefix: "private-home-" });
  await Deno.chmod(privateDir, 0o700);
  const project = `${privateDir}/project`;
  try {
    await Deno.mkdir(project);
    for (const part of ["deno.json", "deno.lock", "local", "supabase"]) {
      await mustRun("cp", ["-r", `${root}${part}`, `${project}/`], root);
    }
    await mustRun(Deno.execPath(), ["task", "setup"], project);

    await t.step(
      "the test harness starts Postgres, runs the command with it, then removes it all",
      async () => {
        const probe = `
        import postgres from "postgres";
        const sql = postgres(Deno.env.get("DATABASE_URL"), { max: 1 });
        const [row] = await sql\`select pg_backend_pid() as pid, current_setting('data_directory') as data\`;
        const status = await Deno.readTextFile(\`/proc/\${row.pid}/status\`);
        console.log(JSON.stringify({
          uid: Number(status.match(/^Uid:\\s+(\\d+)/m)[1]),
          exe: await Deno.readLink(\`/proc/\${row.pid}/exe\`),
          data: row.data,
        }));
        await sql.end();`;
        const out = await mustRun(Deno.execPath(), [
          "run",
          "-A",
          "local/with_postgres.ts",
          Deno.execPath(),
          "eval",
          probe,
        ], project);
        const server = JSON.parse(out.trim().split("\n").at(-1)!);
        assert.notEqual(server.uid, 0, "Postgres never runs as root");
        if (asRoot) {
          assert.ok(!server.exe.startsWith(privateDir), `runs ${server.exe} from a reachable copy`);
          assert.ok(!server.data.startsWith(privateDir), `keeps its data in ${server.data}`);
          assert.ok(!(await exists(server.exe)), "the copy of the binaries is removed");
        }
        assert.ok(!(await exists(server.data)), "the throwaway cluster is removed");
      },
    );

    await t.step(
      "deno task token makes a user in the kept database and finds it again",
      async () => {
        const first = await mustRun(Deno.execPath(), ["task", "token", "new@example.com"], project);
        const cluster = await Deno.realPath(`${project}/.local/postgres`);
        if (asRoot) {
          assert.ok((await Deno.lstat(`${project}/.local/postgres`)).isSymlink);
          assert.ok(!cluster.startsWith(privateDir), `the cluster lives in ${cluster}`);
          assert.notEqual((await Deno.stat(cluster)).uid, 0, "owned by Postgres's OS user");
        }
        const second = await mustRun(
          Deno.execPath(),
          ["task", "token", "new@example.com"],
          project,
        );
        assert.equal(subject(second), subject(first), "the same user, from the same database");
        assert.ok(await exists(`${cluster}/PG_VERSION`));
      },
    );
  } finally {
    // the kept cluster lives outside the private folder, where .local/postgres points
    const kept = await Deno.realPath(`${project}/.local/postgres`).catch(() => undefined);
    if (kept && !kept.startsWith(privateDir)) await Deno.remove(kept, { recursive: true });
    await Deno.remove(privateDir, { recursive: true });
  }
});

/** Runs a command in `cwd` with none of the suite's database settings; returns its stdout. */
async function mustRun(command: string, args: string[], cwd: string): Promise<string> {
  const env = Deno.env.toObject();
  for (const name of ["DATABASE_URL", "TEST_DATABASE_PREFIX", "LOCAL_STATE_DIR"]) delete env[name];
  const output = await new Deno.Command(command, {
    args,
    cwd,
    env: { ...env, NO_COLOR: "1" },
    clearEnv: true,
  })
    .output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  assert.equal(
    output.code,
    0,
    `${command} ${args.join(" ")} failed:\n${decode(output.stdout)}${decode(output.stderr)}`,
  );
  return decode(output.stdout);
}

/** The `sub` claim of the access token `deno task token` printed. */
function subject(stdout: string): string {
  const token = stdout.trim();
  assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/, "prints only the token");
  const payload = token.split(".")[1]!.replaceAll("-", "+").replaceAll("_", "/");
  return JSON.parse(atob(payload.padEnd(Math.ceil(payload.length / 4) * 4, "="))).sub;
}
