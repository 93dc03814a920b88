/**
 * Where a read's time goes, layer by layer, in one process: each layer is the one before it plus
 * one more piece of the request's path (the pool, the RLS transaction, JSON, the token check, the
 * app), run at concurrency 16 for a few seconds, so the difference between two rows is what that
 * piece costs. Not a figure (its numbers are not ratios to a baseline in another process): a tool
 * for finding waste, whose findings go into bench/analysis.md.
 *
 *   deno run -A local/with_postgres.ts deno run -A bench/profile_reads.ts [seconds]
 *   deno run -A local/with_postgres.ts deno run -A --cpu-prof --cpu-prof-dir=<dir> \
 *     bench/profile_reads.ts <seconds> <text>    only the layers whose name holds <text> ("whole
 *                                                app"), for a CPU profile (bench/cpu_profile.ts)
 */
import process from "node:process";
import postgres from "postgres";
import { jwksOf } from "../local/signing_keys.ts";
import { createTokenVerifier } from "../supabase/functions/api/auth.ts";
import { queryAsCaller } from "../supabase/functions/api/database.ts";
import { connect } from "../supabase/functions/api/database_pool.ts";
import { branchJsonStart } from "../supabase/functions/api/store/branch.ts";
import { listSessions } from "../supabase/functions/api/store/sessions.ts";
import { startTestApi } from "../tests/support/api.ts";

const seconds = Number(Deno.args[0] ?? 2);
const only = Deno.args[1];
const repeats = Number(Deno.env.get("REPEATS") ?? 1);
const CONCURRENCY = 16;

const api = await startTestApi({ env: { DB_POOL_MAX: "5" } });
const user = await api.user();
const sessions = (await api.db.admin<{ id: string }[]>`
  insert into public.chat_sessions (user_id, title)
  select ${user.id}, 'Session ' || g from generate_series(1, 20) g returning id`).map((r) => r.id);
const session = sessions[0]!;
// as bench/stack.ts: 50 messages in one session, its current branch
await api.db.admin`
  insert into public.messages (chat_session_id, role, content)
  select ${session}, case when g % 2 = 1 then 'user' else 'assistant' end,
         'Message number ' || g || ' ' || repeat('lorem ipsum ', 20)
  from generate_series(1, 50) g`;

const plain = postgres(api.db.url, { max: 5, onnotice: () => {} });
// a pool as the app builds its own (`connect()`)
const sql = connect(api.db.url, { max: 5 });
const verify = createTokenVerifier({ jwks: jwksOf(api.key) });
// the claims a request carries into its transaction: the whole verified token
const claims = await verify(user.token);

/** CPU time used so far, in µs: this process's, and the database's server processes' for this database. */
async function cpu(): Promise<{ js: number; db: number }> {
  const pids = await api.db.admin<{ pid: number }[]>`
    select pid from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()`;
  let ticks = 0;
  for (const { pid } of pids) {
    try {
      // utime and stime, fields 14 and 15, in clock ticks (1/100 s)
      const fields = Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1]!.split(" ");
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch { /* ended */ }
  }
  const own = process.cpuUsage();
  return { js: own.user + own.system, db: ticks * 10_000 };
}

/** Runs `work` CONCURRENCY at a time for `seconds`; requests per second and µs per request. */
async function load(work: () => Promise<unknown>) {
  for (let i = 0; i < 200; i++) await work(); // warm up (JIT, prepared statements)
  const before = await cpu();
  let count = 0;
  const end = performance.now() + seconds * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (performance.now() < end) {
        await work();
        count++;
      }
    }),
  );
  const elapsed = performance.now() - started;
  const after = await cpu();
  return {
    rps: count / (elapsed / 1000),
    us: (elapsed * 1000) / count,
    jsCpu: (after.js - before.js) / count,
    dbCpu: (after.db - before.db) / count,
  };
}

const get = (path: string) => async () => {
  const response = await api.app.fetch(
    new Request(`http://localhost${path}`, { headers: user.auth }),
  );
  if (response.status !== 200) throw new Error(`${path}: ${response.status}`);
  await response.arrayBuffer();
};

{
  const layers: [string, () => Promise<unknown>][] = [
    ["floor: select 1, plain postgres.js pool", () => plain`select 1 as one`],
    [
      "list query, plain pool, no RLS (floor-list)",
      async () =>
        JSON.stringify(
          await plain`select id, title, created_at, updated_at from public.chat_sessions
                    where user_id = ${user.id} order by updated_at desc, id desc`,
        ),
    ],
    [
      "list query, the app's pool (reserve, release), no RLS",
      async () => {
        const tx = await sql.reserve();
        try {
          return await tx`select id, title, created_at, updated_at from public.chat_sessions
                          where user_id = ${user.id} order by updated_at desc, id desc`;
        } finally {
          tx.release();
        }
      },
    ],
    [
      "list query as the caller (queryAsCaller: RLS transaction)",
      () => queryAsCaller(sql, claims, listSessions),
    ],
    [
      "… + JSON.stringify",
      async () => JSON.stringify(await queryAsCaller(sql, claims, listSessions)),
    ],
    [
      "select 1 as the caller (the RLS transaction alone)",
      () => queryAsCaller(sql, claims, (tx) => tx`select 1 as one`),
    ],
    [
      "select 1 on a connection of the app's pool",
      async () => {
        const tx = await sql.reserve();
        try {
          return await tx`select 1 as one`;
        } finally {
          tx.release();
        }
      },
    ],
    [
      "… in the RLS transaction's four statements, by hand (begin, claims and role, it, commit)",
      async () => {
        const tx = await sql.reserve();
        try {
          return await Promise.all([
            tx`begin`.execute(),
            tx`select set_config('request.jwt.claims', ${JSON.stringify(claims)}, true),
                      set_config('role', ${claims.role}, true)`.execute(),
            tx`select 1 as one`.execute(),
            tx`commit`.execute(),
          ]);
        } finally {
          tx.release();
        }
      },
    ],
    ["token check alone (cached)", () => verify(user.token)],
    ["the app, no route (404: CORS, body limit, routing)", async () => {
      const response = await api.app.fetch(new Request("http://localhost/api/nowhere"));
      await response.arrayBuffer();
    }],
    [
      "list as JSON written by Postgres, as the caller (tried, not taken: see bench/analysis.md)",
      () =>
        queryAsCaller(
          sql,
          claims,
          (tx) =>
            tx`select '[' || coalesce(string_agg(row_to_json(s)::text, ',' order by s.updated_at desc,
                                     s.id desc), '') || ']' as json
             from (select id, title, created_at, updated_at from public.chat_sessions) s`.raw(),
        ),
    ],
    ["GET /api/sessions, the whole app", get("/api/sessions")],
    [
      "history query, plain pool, no RLS (floor-history)",
      () => branchJsonStart(plain as never, session, { current: true }).raw(),
    ],
    [
      "history query as the caller (queryAsCaller)",
      () =>
        queryAsCaller(sql, claims, (tx) => branchJsonStart(tx, session, { current: true }).raw()),
    ],
    ["GET /api/sessions/{id}, the whole app", get(`/api/sessions/${session}`)],
  ];
  const chosen = layers.filter(([name]) => !only || name.includes(only));
  // interleaved: every layer once per round, so a busy moment of the machine hits them all
  const results = chosen.map(() => [] as Awaited<ReturnType<typeof load>>[]);
  for (let round = 0; round < repeats; round++) {
    for (const [i, [, work]] of chosen.entries()) results[i]!.push(await load(work));
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  console.log(
    `| layer (concurrency ${CONCURRENCY}, in one process; median of ${repeats}) | req/s | µs per request | CPU µs per request: JS | Postgres |`,
  );
  console.log("| --- | --- | --- | --- | --- |");
  for (const [i, [name]] of chosen.entries()) {
    const r = results[i]!;
    console.log(
      `| ${name} | ${med(r.map((x) => x.rps)).toFixed(0)} | ${
        med(r.map((x) => x.us)).toFixed(0)
      } | ${med(r.map((x) => x.jsCpu)).toFixed(0)} | ${med(r.map((x) => x.dbCpu)).toFixed(0)} |`,
    );
  }
}
await plain.end();
await sql.end();
Deno.exit(0);
