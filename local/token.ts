/**
 * `deno task token <email>`: makes that local user if needed (the sign-up
 * trigger makes the profile) and prints an access token for it, so that
 *   curl -H "Authorization: Bearer $(deno task token a@example.com)" ...
 * works. Uses the database `deno task dev` runs (or DATABASE_URL); when dev is
 * not running it opens the embedded database itself for a moment.
 */
import postgres from "postgres";
import { prepareDatabase, reachable, startEmbeddedPostgres } from "./database.ts";
import { databaseDir, loadSigningKey, readRunning } from "./dev_state.ts";
import { signAccessToken } from "./signing_keys.ts";

const email = Deno.args[0];
if (!email || !/^[^@\s]+@[^@\s]+$/.test(email)) {
  console.error("usage: deno task token <email>");
  Deno.exit(2);
}

const running = await readRunning();
let databaseUrl = Deno.env.get("DATABASE_URL") || running?.databaseUrl;
let embedded: Awaited<ReturnType<typeof startEmbeddedPostgres>> | undefined;
if (!databaseUrl || !(await reachable(databaseUrl))) {
  embedded = await startEmbeddedPostgres({ dataDir: databaseDir, persistent: true });
  databaseUrl = embedded.url;
  await prepareDatabase(databaseUrl);
}

const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
try {
  const [existing] = await sql<
    { id: string }[]
  >`select id from auth.users where email = ${email} limit 1`;
  const id = existing?.id ?? (await sql<{ id: string }[]>`
    insert into auth.users (email, raw_app_meta_data)
    values (${email}, '{"provider":"email","providers":["email"]}') returning id`)[0]!.id;
  console.log(await signAccessToken(await loadSigningKey(), { id, email }));
} finally {
  await sql.end();
  await embedded?.stop();
}
