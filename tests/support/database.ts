/** Throwaway, fully migrated databases on the server `local/with_postgres.ts` provides. */
import postgres from "postgres";
import { prepareDatabase } from "../../local/database.ts";

export interface TestDatabase {
  url: string;
  /** superuser connection: sets up fixtures and checks what really is stored, bypassing RLS */
  admin: postgres.Sql;
}

export async function createTestDatabase(opts: { migrate?: boolean } = {}): Promise<TestDatabase> {
  const serverUrl = Deno.env.get("DATABASE_URL");
  const prefix = Deno.env.get("TEST_DATABASE_PREFIX");
  if (!serverUrl || !prefix) {
    throw new Error("run the tests through `deno task test` (it provides a Postgres server)");
  }
  const name = `${prefix}${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
  const server = postgres(serverUrl, { max: 1, onnotice: () => {} });
  try {
    await server`create database ${server(name)}`;
  } finally {
    await server.end();
  }
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  if (opts.migrate ?? true) await prepareDatabase(url.href);
  return { url: url.href, admin: postgres(url.href, { max: 4, onnotice: () => {} }) };
}
