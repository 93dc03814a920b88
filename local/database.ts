/**
 * A Supabase-compatible Postgres for dev and tests, without Docker:
 * `DATABASE_URL` when set, otherwise an embedded Postgres 17 from npm.
 * Local tooling only: the edge function never imports this.
 */
import postgres from "postgres";
import { embeddedPostgres } from "./embedded_postgres.ts";

const root = new URL("../", import.meta.url);
const platformSql = new URL("local/supabase_platform.sql", root);
const migrationsDir = new URL("supabase/migrations/", root);

export interface RunningServer {
  /** superuser connection string */
  url: string;
  /** where its data lives (a folder the server's OS user can reach; see embedded_postgres.ts) */
  dataDir: string;
  stop(): Promise<void>;
  /** starts it again after `stop`, on the same port (a persistent server keeps its data) */
  start(): Promise<void>;
}

/** Starts embedded Postgres on a free loopback port; a `persistent` data dir survives restarts. */
export async function startEmbeddedPostgres(
  opts: { dataDir: string; persistent: boolean },
): Promise<RunningServer> {
  const port = freePort();
  const server = await embeddedPostgres({ ...opts, port });
  await server.start();
  return {
    url: `postgres://postgres:postgres@127.0.0.1:${port}/postgres`,
    dataDir: server.dataDir,
    stop: () => server.stop(),
    start: () => server.start(),
  };
}

/** Creates what Supabase provides (skipped on a real Supabase database), then applies pending migrations. */
export async function prepareDatabase(url: string): Promise<void> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    await sql.unsafe(await Deno.readTextFile(platformSql));
    await applyMigrations(sql);
  } finally {
    await sql.end();
  }
}

/**
 * Applies migrations the way the Supabase CLI does: in filename order, each
 * recorded in `supabase_migrations.schema_migrations`, so `supabase db push`
 * and `supabase migration up` see them as applied.
 */
export async function applyMigrations(sql: postgres.Sql): Promise<string[]> {
  await sql.unsafe(`
    create schema if not exists supabase_migrations;
    create table if not exists supabase_migrations.schema_migrations (
      version text not null primary key,
      statements text[],
      name text
    );
  `);
  const applied = new Set(
    (await sql<{ version: string }[]>`select version from supabase_migrations.schema_migrations`)
      .map((row) => row.version),
  );
  const newlyApplied: string[] = [];
  for (const file of await migrationFiles()) {
    const [, version, name] = file.match(/^(\d+)_(.+)\.sql$/)!;
    if (applied.has(version!)) continue;
    const text = await Deno.readTextFile(new URL(file, migrationsDir));
    await sql.begin(async (tx) => {
      await tx.unsafe(text);
      await tx`insert into supabase_migrations.schema_migrations (version, statements, name)
               values (${version!}, ${[text]}, ${name!})`;
    });
    newlyApplied.push(file);
  }
  return newlyApplied;
}

async function migrationFiles(): Promise<string[]> {
  const files: string[] = [];
  for await (const entry of Deno.readDir(migrationsDir)) {
    if (entry.isFile && /^\d+_.+\.sql$/.test(entry.name)) files.push(entry.name);
  }
  return files.sort();
}

/** A loopback port nobody listens on right now. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** Whether a Postgres server answers at `url` (within 2 s). */
export async function reachable(url: string): Promise<boolean> {
  const probe = postgres(url, { max: 1, connect_timeout: 2, onnotice: () => {} });
  try {
    await probe`select 1`;
    return true;
  } catch {
    return false;
  } finally {
    await probe.end();
  }
}
