/** The local stand-in for the Supabase platform, and the proof that the real CLI deploys our migrations. */
import assert from "node:assert/strict";
import { applyMigrations, prepareDatabase } from "../../local/database.ts";
import { createTestDatabase } from "../support/database.ts";

const platformSql = await Deno.readTextFile(
  new URL("../../local/supabase_platform.sql", import.meta.url),
);
const migrationFiles = [...Deno.readDirSync(new URL("../../supabase/migrations/", import.meta.url))]
  .map((e) => e.name).filter((n) => n.endsWith(".sql")).sort();

async function recordedVersions(sql: import("postgres").Sql): Promise<string[]> {
  const rows = await sql<{ version: string }[]>`
    select version from supabase_migrations.schema_migrations order by version`;
  return rows.map((r) => r.version);
}

Deno.test("preparing a database twice changes nothing the second time", async () => {
  const db = await createTestDatabase();
  await prepareDatabase(db.url);
  assert.deepEqual(await applyMigrations(db.admin), []);
  assert.deepEqual(await recordedVersions(db.admin), migrationFiles.map((f) => f.split("_")[0]));
});

Deno.test("the platform bootstrap does nothing on a database that already is a Supabase one", async () => {
  const db = await createTestDatabase({ migrate: false });
  // roles are cluster-wide: Supabase's marker role exists only inside this rolled-back transaction
  class Rollback extends Error {}
  await assert.rejects(
    db.admin.begin(async (tx) => {
      await tx`create role supabase_auth_admin nologin`;
      await tx.unsafe(platformSql);
      const [row] = await tx`select to_regnamespace('auth') is null as no_auth_schema`;
      assert.equal(row!.no_auth_schema, true);
      throw new Rollback();
    }),
    Rollback,
  );
});

Deno.test("the Supabase CLI applies the migrations to a fresh database, recorded as ours are", async () => {
  const db = await createTestDatabase({ migrate: false });
  await db.admin.unsafe(platformSql);
  const cli = await new Deno.Command("npx", {
    args: ["--yes", "supabase@3.1.0", "migration", "up", `--remote=${db.url}`, "--yes"],
    cwd: new URL("../../", import.meta.url),
    env: { PGSSLMODE: "disable" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const output = new TextDecoder().decode(cli.stdout) + new TextDecoder().decode(cli.stderr);
  assert.equal(cli.code, 0, output);
  assert.deepEqual(await recordedVersions(db.admin), migrationFiles.map((f) => f.split("_")[0]));
  const [tables] = await db.admin`
    select to_regclass('public.profiles') is not null and to_regclass('public.chat_sessions') is not null
       and to_regclass('public.messages') is not null as present`;
  assert.equal(tables!.present, true);
  // and our own runner agrees that nothing is left to apply
  assert.deepEqual(await applyMigrations(db.admin), []);
});
