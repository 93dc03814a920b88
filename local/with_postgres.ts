/**
 * Runs a command (the test suite) with `DATABASE_URL` naming a Postgres server
 * on which it may create throwaway databases: the given `DATABASE_URL`, or a
 * fresh embedded Postgres that is removed afterwards. Databases the command
 * created under `TEST_DATABASE_PREFIX` are dropped when it ends.
 *
 *   deno run -A local/with_postgres.ts deno test -A tests/
 */
import postgres from "postgres";
import { startEmbeddedPostgres } from "./database.ts";

const [command, ...args] = Deno.args;
if (!command) {
  console.error("usage: with_postgres.ts <command> [args...]");
  Deno.exit(2);
}

const given = Deno.env.get("DATABASE_URL");
const server = given ? undefined : await throwawayServer();
const url = given ?? server!.url;
const prefix = `test_${Date.now().toString(36)}_`;

let code = 1;
try {
  const child = new Deno.Command(command, {
    args,
    env: { DATABASE_URL: url, TEST_DATABASE_PREFIX: prefix },
  }).spawn();
  // Ctrl-C or SIGTERM ends the command first; the server is then stopped and removed below
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => {
      try {
        child.kill(signal);
      } catch { /* already gone */ }
    });
  }
  code = (await child.status).code;
} finally {
  if (given) await dropTestDatabases(url, prefix);
  await server?.stop();
}
Deno.exit(code);

async function dropTestDatabases(serverUrl: string, prefix: string) {
  const sql = postgres(serverUrl, { max: 1, onnotice: () => {} });
  try {
    const rows = await sql<{ datname: string }[]>`
      select datname from pg_database where starts_with(datname, ${prefix})`;
    for (const { datname } of rows) await sql`drop database ${sql(datname)} with (force)`;
  } finally {
    await sql.end();
  }
}

/** A fresh embedded Postgres whose folder goes when it stops, or at once if it cannot start. */
async function throwawayServer() {
  const dataDir = await Deno.makeTempDir({ prefix: "chat-test-postgres-" });
  try {
    return await startEmbeddedPostgres({ dataDir, persistent: false });
  } catch (error) {
    await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    throw error;
  }
}
