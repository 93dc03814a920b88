import { startTestApi } from "./support/api.ts";
import { createSession } from "./support/fixtures.ts";
import { connect } from "../supabase/functions/api/database.ts";
import { createApp } from "../supabase/functions/api/app.ts";
import { createTokenVerifier } from "../supabase/functions/api/auth.ts";
import { parseConfig } from "../supabase/functions/api/config.ts";
import { createModelClient } from "../supabase/functions/api/model.ts";
import { jwksOf } from "../local/signing_keys.ts";
Deno.test("prof", async () => {
  const api = await startTestApi();
  const u = await api.user();
  for (let i = 0; i < 20; i++) await createSession(api.db.admin, u.id);
  const verify = createTokenVerifier(jwksOf(api.key));
  const claims = await verify(u.token);
  const config = parseConfig({
    SUPABASE_DB_URL: api.db.url,
    SUPABASE_JWKS: JSON.stringify(jwksOf(api.key)),
    OPENAI_API_KEY: "x",
  });
  const sql = connect(api.db.url);
  const fast = createApp({
    config,
    sql,
    model: createModelClient(config.model),
    verifyToken: () => Promise.resolve(claims as never),
    waitUntil: () => {},
    log: () => {},
  });
  const time = async (name: string, n: number, f: () => Promise<unknown>) => {
    for (let i = 0; i < 50; i++) await f();
    const t = performance.now();
    for (let i = 0; i < n; i++) await f();
    console.log(name, ((performance.now() - t) / n).toFixed(3), "ms");
  };
  const req = new Request("http://x/api/sessions", { headers: u.auth });
  await time("app GET /api/sessions no verify", 2000, async () => {
    const r = await fast.fetch(req.clone());
    await r.text();
  });
  await time("app GET /api/health", 2000, async () => {
    const r = await fast.fetch(new Request("http://x/api/health"));
    await r.text();
  });
  await time(
    "raw list query",
    2000,
    () =>
      sql`select id, title, created_at, updated_at from public.chat_sessions order by updated_at desc, id desc`,
  );
  await time(
    "raw list query no ts",
    2000,
    () => sql`select id, title from public.chat_sessions order by updated_at desc, id desc`,
  );
  await time("sequential 3 queries", 2000, async () => {
    await sql`select 1`;
    await sql`select 2`;
    await sql`select 3`;
  });
  await time("reserve", 2000, async () => {
    const c = await sql.reserve();
    await c`select 1`;
    c.release();
  });
});
