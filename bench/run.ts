/**
 * `deno task bench`: what the API costs on top of Postgres and the model,
 * each figure measured in the same run as its baseline and reported as a
 * ratio beside the absolute numbers; writes docs/benchmarks.md and
 * docs/benchmarks-latency.svg. A benchmark, not a test: it never fails on speed.
 *
 *   deno run -A local/with_postgres.ts deno run -A bench/run.ts
 */
import { freePort } from "../local/database.ts";
import { createSigningKey, jwksOf, signAccessToken } from "../local/signing_keys.ts";
import { createTestDatabase } from "../tests/support/database.ts";
import { signUp } from "../tests/support/fixtures.ts";
import { latencyChart } from "./chart.ts";
import {
  autocannon,
  type LoadResult,
  median,
  percentile,
  residentBytes,
  type Running,
  spread,
  startDenoServer,
} from "./processes.ts";
import { startRoundTripProxy } from "./round_trip_proxy.ts";
import { BUNDLE_LIMIT_BYTES, formatBundle, measureBundle } from "./bundle_size.ts";
import { measureStartup } from "./startup_cpu.ts";

const REPEATS = Number(Deno.env.get("BENCH_REPEATS") ?? 3);
const SECONDS = Number(Deno.env.get("BENCH_SECONDS") ?? 3);
const root = new URL("../", import.meta.url);
const log = (line: string) => console.error(`[bench] ${line}`);
const report: string[] = [];
const section = (title: string, ...lines: string[]) => report.push(`## ${title}`, "", ...lines, "");
/** Each target of the issue, what was measured, and whether it was met: the summary at the top. */
const verdicts: string[] = [];
const verdict = (figure: string, target: string, measured: string, met: boolean) =>
  verdicts.push(`| ${figure} | ${target} | ${measured} | ${met ? "met" : "**missed**"} |`);

// ---- the stack: a fresh database, a signing key, the stand-in model in its own process ----
const db = await createTestDatabase();
const key = await createSigningKey();
const modelPort = freePort();
const model = await startDenoServer(["-A", "local/stand_in_model.ts", String(modelPort)], {
  port: modelPort,
  probe: "/v1/models",
});
const modelUrl = `http://127.0.0.1:${modelPort}/v1`;
const models = ["chunks-1", "chunks-20", "chunks-10000", "slow-200-50"];

const owner = await signUp(db.admin, { email: "bench@example.com" });
const token = await signAccessToken(key, { id: owner }, { expiresInSeconds: 24 * 3600 });
const auth = { authorization: `Bearer ${token}` };
// 20 sessions, one of which holds 50 messages
const sessions = (await db.admin<{ id: string }[]>`
  insert into public.chat_sessions (user_id, title)
  select ${owner}, 'Session ' || g from generate_series(1, 20) g returning id`).map((r) => r.id);
const historySession = sessions[0]!;
await db.admin`
  insert into public.messages (chat_session_id, role, content)
  select ${historySession}, case when g % 2 = 1 then 'user' else 'assistant' end,
         'Message number ' || g || ' ' || repeat('lorem ipsum ', 20)
  from generate_series(1, 50) g`;

function apiEnv(databaseUrl: string, poolMax = 5): Record<string, string> {
  return {
    SUPABASE_DB_URL: databaseUrl,
    SUPABASE_JWKS: JSON.stringify(jwksOf(key)),
    OPENAI_API_KEY: "bench",
    OPENAI_BASE_URL: modelUrl,
    OPENAI_MODEL: "chunks-20",
    OPENAI_MODELS: models.join(","),
    OPENAI_MAX_RETRIES: "0",
    DB_POOL_MAX: String(poolMax),
    // measured: the reply's path; a title request per new session would run beside it
    TITLE_GENERATION: "false",
    // one user runs 500 streams at once here
    QUOTA_MESSAGES_PER_DAY: "0",
    QUOTA_CONCURRENT_STREAMS: "0",
  };
}
const apiArgs = ["--allow-net", "--allow-env", "supabase/functions/api/index.ts"];
const api = await startDenoServer(apiArgs, { env: apiEnv(db.url), probe: "/api/health" });
const hello = await startDenoServer(["-A", "bench/baselines.ts", "hello", "{port}"], {
  probe: "/",
});
const floor = await startDenoServer(["-A", "bench/baselines.ts", "floor", "{port}", db.url], {
  probe: "/",
});
const floorList = await startDenoServer(
  ["-A", "bench/baselines.ts", "floor-list", "{port}", db.url, owner],
  { probe: "/" },
);
const running: Running[] = [model, api, hello, floor, floorList];

/** Server-Timing durations by name, in ms. */
function serverTiming(header: string | null): Record<string, number> {
  return Object.fromEntries(
    (header ?? "").split(",").map((entry) => {
      const [name, ...params] = entry.trim().split(";");
      const dur = params.find((p) => p.startsWith("dur="));
      return [name, Number(dur?.slice(4))];
    }),
  );
}

async function post(base: string, session: string, content: string, modelName: string) {
  const started = performance.now();
  const response = await fetch(`${base}/api/sessions/${session}`, {
    method: "POST",
    headers: { ...auth, "content-type": "application/json" },
    body: JSON.stringify({ messages: [{ role: "user", content }], model: modelName }),
  });
  const reader = response.body!.getReader();
  let firstByte = NaN;
  let bytes = 0;
  for (let r = await reader.read(); !r.done; r = await reader.read()) {
    if (Number.isNaN(firstByte)) firstByte = performance.now() - started;
    bytes += r.value.length;
  }
  return {
    status: response.status,
    firstByte,
    total: performance.now() - started,
    bytes,
    timing: serverTiming(response.headers.get("server-timing")),
  };
}

async function direct(modelName: string) {
  const started = performance.now();
  const response = await fetch(`${modelUrl}/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: "Bearer bench" },
    body: JSON.stringify({
      model: modelName,
      stream: true,
      messages: [{ role: "user", content: "hi" }],
    }),
  });
  const reader = response.body!.getReader();
  let firstByte = NaN;
  for (let r = await reader.read(); !r.done; r = await reader.read()) {
    if (Number.isNaN(firstByte)) firstByte = performance.now() - started;
  }
  return { firstByte, total: performance.now() - started };
}

try {
  // ---- 1. database round trips per request, counted at a proxy in front of Postgres ----
  log("round trips");
  const pg = new URL(db.url);
  const proxy = startRoundTripProxy({ hostname: pg.hostname, port: Number(pg.port) });
  const proxied = new URL(db.url);
  proxied.port = String(proxy.port);
  const counted = await startDenoServer(apiArgs, {
    env: apiEnv(proxied.href, 1),
    probe: "/api/health",
  });
  running.push(counted);
  const other = await signUp(db.admin);
  const otherAuth = { authorization: `Bearer ${await signAccessToken(key, { id: other })}` };
  const conversation = crypto.randomUUID();
  const count = async (what: string, request: () => Promise<Response>, untilHeaders = false) => {
    await new Promise((resolve) => setTimeout(resolve, 50)); // earlier background saves settle
    const before = proxy.roundTrips;
    const response = await request();
    const atHeaders = proxy.roundTrips - before;
    await response.arrayBuffer();
    await new Promise((resolve) => setTimeout(resolve, 100));
    return {
      what,
      status: response.status,
      trips: untilHeaders ? atHeaders : proxy.roundTrips - before,
      total: proxy.roundTrips - before,
    };
  };
  const req = (method: string, path: string, body?: unknown, headers = otherAuth) => () =>
    fetch(`${counted.url}${path}`, {
      method,
      headers: { ...headers, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  const chatBody = { messages: [{ role: "user", content: "count me" }], model: "chunks-1" };
  await req("GET", "/api/sessions")().then((r) => r.arrayBuffer()); // the pool's one connection is open
  // each request twice: the first use of a statement on a connection prepares it (an extra round
  // trip the first time only); the second shows the steady state
  const twice = async (what: string, make: () => () => Promise<Response>, untilHeaders = false) => {
    const first = await count(what, make(), untilHeaders);
    const steady = await count(what, make(), untilHeaders);
    return { ...steady, first: first.trips };
  };
  await req("POST", `/api/sessions/${conversation}`, chatBody)().then((r) => r.arrayBuffer());
  const doomed = (await db.admin<{ id: string }[]>`
    insert into public.chat_sessions (user_id) select ${other} from generate_series(1, 2) returning id`)
    .map((r) => r.id);
  const trips = [
    await twice("GET /api/health", () => req("GET", "/api/health")),
    await twice("GET /api/sessions", () => req("GET", "/api/sessions")),
    await twice(
      "POST /api/sessions/{id}, new session: before the model",
      () => req("POST", `/api/sessions/${crypto.randomUUID()}`, chatBody),
      true,
    ),
    await twice(
      "POST /api/sessions/{id}, existing session: before the model",
      () => req("POST", `/api/sessions/${conversation}`, chatBody),
      true,
    ),
    await twice("GET /api/sessions/{id}", () => req("GET", `/api/sessions/${conversation}`)),
    await twice(
      "PATCH /api/sessions/{id}/title",
      () => req("PATCH", `/api/sessions/${conversation}/title`, { title: "x" }),
    ),
    await twice(
      "DELETE /api/sessions/{id}",
      () => req("DELETE", `/api/sessions/${doomed.pop()}`),
    ),
    await twice("DELETE /api/empty-sessions", () => req("DELETE", "/api/empty-sessions")),
  ];
  const preModel = trips.filter((t) => t.what.startsWith("POST")).map((t) => t.trips);
  const reads = trips.filter((t) => t.what.startsWith("GET")).map((t) => t.trips);
  verdict(
    "1. round trips, POST before the model",
    "≤ 4",
    String(Math.max(...preModel)),
    Math.max(...preModel) <= 4,
  );
  verdict(
    "1. round trips, each read route",
    "≤ 4",
    String(Math.max(...reads)),
    Math.max(...reads) <= 4,
  );
  section(
    "1. Database round trips per request",
    "Counted at a TCP proxy in front of Postgres (a round trip: the client speaks after the server answered),",
    "one request at a time on a pool of one connection. Target: at most 4 for a POST's work before the model, and for each read.",
    "",
    "| request | status | round trips | first use on a connection | including the reply's save |",
    "| --- | --- | --- | --- | --- |",
    ...trips.map((t) => `| ${t.what} | ${t.status} | **${t.trips}** | ${t.first} | ${t.total} |`),
  );
  await counted.stop();
  proxy.close();

  // ---- 2. throughput and latency of the read routes against the baselines ----
  log("throughput and latency");
  const targets: [string, string, Record<string, string>][] = [
    ["hello", `${hello.url}/`, {}],
    ["floor", `${floor.url}/`, {}],
    ["floor-list (the list query, no auth, no RLS)", `${floorList.url}/`, {}],
    ["GET /api/sessions (20 sessions)", `${api.url}/api/sessions`, auth],
    ["GET /api/sessions/{id} (50 messages)", `${api.url}/api/sessions/${historySession}`, auth],
  ];
  const concurrencies = [1, 16, 64];
  const load = new Map<string, LoadResult[]>();
  for (const c of concurrencies) {
    for (let r = 0; r < REPEATS; r++) {
      for (const [name, url, headers] of targets) {
        const result = await autocannon(url, { connections: c, seconds: SECONDS, headers });
        if (result.errors || result.non2xx) {
          log(`${name} c=${c}: ${result.errors} errors, ${result.non2xx} non-2xx`);
        }
        load.set(`${name}@${c}`, [...(load.get(`${name}@${c}`) ?? []), result]);
      }
    }
  }
  const rows: string[] = [];
  for (const c of concurrencies) {
    const floorRps = median(load.get(`floor@${c}`)!.map((r) => r.rps));
    for (const [name] of targets) {
      const results = load.get(`${name}@${c}`)!;
      const rps = results.map((r) => r.rps);
      rows.push(
        `| ${name} | ${c} | ${spread(rps, 0)} | ${spread(results.map((r) => r.p50))} | ${
          spread(results.map((r) => r.p99))
        } | ${(median(rps) / floorRps).toFixed(2)} |`,
      );
    }
  }
  for (const [name] of targets.filter(([n]) => n.startsWith("GET"))) {
    const ratio = median(load.get(`${name}@16`)!.map((r) => r.rps)) /
      median(load.get("floor@16")!.map((r) => r.rps));
    verdict(
      `2. ${name}, req/s ÷ floor at concurrency 16`,
      "≥ 0.40",
      ratio.toFixed(2),
      ratio >= 0.4,
    );
  }
  section(
    "2. Throughput and latency of the read routes",
    `autocannon 8 (npm, its own Node process), ${SECONDS} s per run, ${REPEATS} runs each, interleaved; min / **median** / max.`,
    "Target: a read route at concurrency 16 reaches at least 40% of **floor** throughput (ratio ≥ 0.40).",
    "**floor-list** is an extra baseline: the list route's own query and JSON for the same user, without",
    "token or RLS transaction, to separate what the data costs from what auth and RLS cost.",
    "",
    "| target | concurrency | req/s | p50 ms | p99 ms | req/s ÷ floor |",
    "| --- | --- | --- | --- | --- | --- |",
    ...rows,
    "",
    "![p50 latency against concurrency](benchmarks-latency.svg)",
  );
  await Deno.writeTextFile(
    new URL("docs/benchmarks-latency.svg", root),
    latencyChart(
      concurrencies,
      targets.map(([name]) => ({
        name,
        p50: concurrencies.map((c) => median(load.get(`${name}@${c}`)!.map((r) => r.p50))),
      })),
    ),
  );

  // ---- 3. time to first byte added by a POST ----
  log("time to first byte");
  const ttfbRuns: { api: number[]; direct: number[]; db: number[]; model: number[] }[] = [];
  for (let r = 0; r < REPEATS; r++) {
    const run = {
      api: [] as number[],
      direct: [] as number[],
      db: [] as number[],
      model: [] as number[],
    };
    for (let i = 0; i < 200; i++) {
      run.direct.push((await direct("chunks-20")).firstByte);
      const through = await post(api.url, crypto.randomUUID(), "first byte", "chunks-20");
      run.api.push(through.firstByte);
      run.db.push(through.timing.db ?? NaN);
      run.model.push(through.timing.model ?? NaN);
    }
    ttfbRuns.push(run);
  }
  const added50 = ttfbRuns.map((r) => median(r.api) - median(r.direct));
  const added99 = ttfbRuns.map((r) => percentile(r.api, 99) - percentile(r.direct, 99));
  verdict(
    "3. first byte added by a POST, median",
    "< 3 ms",
    `${median(added50).toFixed(2)} ms`,
    median(added50) < 3,
  );
  section(
    "3. Time to first byte added by a POST",
    "A first message to a new session (session created, message stored, history read, all committed) against the",
    "stand-in asked **direct**ly for the same reply; 200 sequential requests per run; min / **median** / max over runs.",
    "Target: median added under 3 ms on loopback.",
    "",
    "| | p50 ms | p99 ms |",
    "| --- | --- | --- |",
    `| direct (the stand-in model) | ${spread(ttfbRuns.map((r) => median(r.direct)), 2)} | ${
      spread(ttfbRuns.map((r) => percentile(r.direct, 99)), 2)
    } |`,
    `| POST /api/sessions/{id} | ${spread(ttfbRuns.map((r) => median(r.api)), 2)} | ${
      spread(ttfbRuns.map((r) => percentile(r.api, 99)), 2)
    } |`,
    `| **added by the API** | ${spread(added50, 2)} | ${spread(added99, 2)} |`,
    "",
    "Where the API's time goes, from its `Server-Timing` header (p50 over all requests of all runs):",
    "",
    "| part | p50 ms |",
    "| --- | --- |",
    `| db: begin, create the session, store the message, read the history, commit | ${
      median(ttfbRuns.flatMap((r) => r.db)).toFixed(2)
    } |`,
    `| model: the SDK's request until the model's first words | ${
      median(ttfbRuns.flatMap((r) => r.model)).toFixed(2)
    } |`,
  );

  // ---- 4. relay cost of a long reply ----
  log("relay cost");
  const relay = { api: [] as number[], direct: [] as number[] };
  for (let r = 0; r < REPEATS + 2; r++) {
    relay.direct.push((await direct("chunks-10000")).total);
    const through = await post(api.url, crypto.randomUUID(), "long", "chunks-10000");
    if (through.status !== 200) throw new Error(`relay run answered ${through.status}`);
    relay.api.push(through.total);
  }
  const relayRatio = median(relay.api) / median(relay.direct);
  verdict(
    "4. relay of a 10,000-chunk reply, API ÷ direct",
    "< 1.25",
    relayRatio.toFixed(2),
    relayRatio < 1.25,
  );
  section(
    "4. Relay cost: a 10,000-chunk reply",
    "Whole reply read through the API (text protocol, stored at the end) vs read **direct**ly from the stand-in.",
    "Target: ratio under 1.25.",
    "",
    "| | total ms (min / **median** / max) |",
    "| --- | --- |",
    `| direct | ${spread(relay.direct)} |`,
    `| through the API | ${spread(relay.api)} |`,
    `| **ratio** | **${(median(relay.api) / median(relay.direct)).toFixed(2)}** |`,
  );

  // ---- 6. concurrent slow streams (before the bulk data, which only slows setup) ----
  log("500 concurrent slow streams");
  const streamUser = await signUp(db.admin);
  const streamAuth = { authorization: `Bearer ${await signAccessToken(key, { id: streamUser })}` };
  const before = residentBytes(api.pid);
  let peak = before;
  const sampler = setInterval(() => peak = Math.max(peak, residentBytes(api.pid)), 100);
  const streamsStarted = performance.now();
  const outcomes = await Promise.all(Array.from({ length: 500 }, async () => {
    const response = await fetch(`${api.url}/api/sessions/${crypto.randomUUID()}`, {
      method: "POST",
      headers: { ...streamAuth, "content-type": "application/json" },
      body: JSON.stringify({
        messages: [{ role: "user", content: "slowly" }],
        model: "slow-200-50",
      }),
    }).catch(() => undefined);
    const text = await response?.text().catch(() => "");
    return response?.status === 200 && text?.split(" ").filter(Boolean).length === 200;
  }));
  const streamSeconds = (performance.now() - streamsStarted) / 1000;
  clearInterval(sampler);
  const completed = outcomes.filter(Boolean).length;
  verdict(
    "6. 500 concurrent slow streams, failures",
    "0",
    String(500 - completed),
    completed === 500,
  );
  section(
    "6. Concurrent slow streams",
    "500 POSTs at once, each reply 200 chunks 50 ms apart (10 s), one API process.",
    "Target: zero failures.",
    "",
    "| figure | value |",
    "| --- | --- |",
    `| streams completed intact | **${completed} / 500** (failures: ${500 - completed}) |`,
    `| wall time | ${streamSeconds.toFixed(1)} s (the replies alone take 10 s) |`,
    `| API resident memory before / peak | ${(before / 2 ** 20).toFixed(0)} MiB / ${
      (peak / 2 ** 20).toFixed(0)
    } MiB |`,
    `| memory per open stream | ${((peak - before) / 500 / 1024).toFixed(0)} KiB |`,
  );

  // ---- 5. isolation from other users' data ----
  log("isolation: without other users' data");
  // sequential requests timed here: autocannon reports whole milliseconds, too coarse for a ratio
  const repeatLoad = async (url: string) => {
    const p50s: number[] = [];
    for (let r = 0; r < REPEATS; r++) {
      const times: number[] = [];
      for (let i = 0; i < 400; i++) {
        const started = performance.now();
        const response = await fetch(url, { headers: auth });
        await response.arrayBuffer();
        times.push(performance.now() - started);
      }
      p50s.push(median(times));
    }
    return p50s;
  };
  const isolation = async () => ({
    list: await repeatLoad(`${api.url}/api/sessions`),
    history: await repeatLoad(`${api.url}/api/sessions/${historySession}`),
  });
  const empty = await isolation();
  log("isolation: loading 1,000,000 messages of 1,000 other users");
  await db
    .admin`insert into auth.users (email) select 'bulk' || g || '@example.com' from generate_series(1, 1000) g`;
  await db.admin`
    insert into public.chat_sessions (user_id, title)
    select u.id, 'Bulk ' || g from auth.users u cross join generate_series(1, 10) g where u.email like 'bulk%'`;
  // the per-message trigger only moves updated_at; a bulk load sets it once afterwards
  await db.admin`alter table public.messages disable trigger on_message_added`;
  await db.admin`
    insert into public.messages (chat_session_id, role, content)
    select s.id, case when g % 2 = 1 then 'user' else 'assistant' end, 'Bulk message ' || g
    from public.chat_sessions s cross join generate_series(1, 100) g where s.title like 'Bulk %'`;
  await db.admin`alter table public.messages enable trigger on_message_added`;
  await db.admin`vacuum analyze public.chat_sessions, public.messages`;
  const [{ n }] = await db.admin<[{ n: number }]>`select count(*)::int as n from public.messages`;
  const full = await isolation();
  for (
    const [route, ratio] of [
      ["GET /api/sessions", median(full.list) / median(empty.list)],
      ["GET /api/sessions/{id}", median(full.history) / median(empty.history)],
    ] as const
  ) {
    verdict(
      `5. ${route}, p50 with 1M other rows ÷ with none`,
      "< 1.2",
      ratio.toFixed(2),
      ratio < 1.2,
    );
  }
  section(
    "5. Isolation from other users' data",
    `The caller's p50 latency (400 sequential requests per run) with no other users' rows, then with ${
      n.toLocaleString("en")
    } messages`,
    "(1,000 other users × 10 sessions × 100 messages) in the tables. Target: ratio under 1.2.",
    "",
    "| route | p50 ms, none | p50 ms, 1M rows | ratio |",
    "| --- | --- | --- | --- |",
    `| GET /api/sessions | ${spread(empty.list, 2)} | ${spread(full.list, 2)} | **${
      (median(full.list) / median(empty.list)).toFixed(2)
    }** |`,
    `| GET /api/sessions/{id} | ${spread(empty.history, 2)} | ${spread(full.history, 2)} | **${
      (median(full.history) / median(empty.history)).toFixed(2)
    }** |`,
  );

  // ---- 8. long sessions: the prompt is budgeted, so a reply's cost stops growing ----
  log("long sessions");
  const lengths = [100, 2_000, 20_000];
  const longRows: string[] = [];
  for (const length of lengths) {
    const [{ id: long }] = await db.admin<[{ id: string }]>`
      insert into public.chat_sessions (user_id, title) values (${owner}, 'long') returning id`;
    await db.admin`
      insert into public.messages (chat_session_id, role, content)
      select ${long}, case when g % 2 = 1 then 'user' else 'assistant' end, 'Turn ' || g || ' of a long chat, with a few words'
      from generate_series(1, ${length}) g`;
    const firstBytes: number[] = [];
    for (let i = 0; i < 60; i++) {
      firstBytes.push((await post(api.url, long, "And now?", "chunks-1")).firstByte);
    }
    longRows.push(
      `| ${length.toLocaleString("en")} | ${median(firstBytes).toFixed(2)} | ${
        percentile(firstBytes, 99).toFixed(2)
      } |`,
    );
  }
  section(
    "8. Long sessions",
    "First-byte time of a POST in sessions of growing length (60 sequential requests each), with the default",
    "history budget of 16,000 tokens: the database reads only the newest turns that fit (a range of the",
    "running token total), so past the budget the cost stays flat instead of growing with the session.",
    "",
    "| messages in the session | first byte p50 ms | p99 ms |",
    "| --- | --- | --- |",
    ...longRows,
  );

  // ---- 7. cold start ----
  log("cold start");
  const cold = { api: [] as number[], hello: [] as number[] };
  for (let r = 0; r < REPEATS + 2; r++) {
    const a = await startDenoServer(apiArgs, { env: apiEnv(db.url), probe: "/api/health" });
    cold.api.push(a.startedInMs);
    await a.stop();
    const h = await startDenoServer(["-A", "bench/baselines.ts", "hello", "{port}"], {
      probe: "/",
    });
    cold.hello.push(h.startedInMs);
    await h.stop();
  }
  section(
    "7. Cold start",
    "Process start to the first 200 from `/api/health` (which queries the database) vs the **hello** server's first 200.",
    "",
    "| | ms (min / **median** / max) |",
    "| --- | --- |",
    `| hello | ${spread(cold.hello)} |`,
    `| API | ${spread(cold.api)} |`,
    `| **ratio** | **${(median(cold.api) / median(cold.hello)).toFixed(2)}** |`,
  );
  // ---- 9. deploy bundle and start-up CPU ----
  log("bundle size and start-up CPU");
  const entry = new URL("supabase/functions/api/index.ts", root).pathname;
  const bundle = await measureBundle(entry);
  const startup = await measureStartup(entry, REPEATS + 4);
  verdict(
    "9. deploy bundle, brotli q6 as uploaded",
    "≤ 5 MB",
    `${(bundle.brotliBytes / 1e6).toFixed(2)} MB`,
    bundle.brotliBytes <= BUNDLE_LIMIT_BYTES,
  );
  verdict(
    "9. start-up: CPU to import the function's modules",
    "≤ 150 ms",
    `${startup.medianCpuMs.toFixed(0)} ms`,
    startup.medianCpuMs <= 150,
  );
  section(
    "9. Deploy bundle and start-up CPU",
    "The bundle as Supabase packs it (`deno task bundle-size`): the function's modules plus every file of each npm package in its import graph, as one brotli stream at quality 6 (what the CLI uploads; server-side bundling takes at most 5 MB). Start-up (`deno task startup`): CPU time of a fresh process importing every module `index.ts` imports, which the Edge Runtime counts against the first request's 2 s.",
    "",
    "```",
    formatBundle(bundle, BUNDLE_LIMIT_BYTES),
    "```",
    "",
    `Start-up: median **${startup.medianCpuMs.toFixed(0)} ms** CPU (${
      startup.cpuMs.map((x) => x.toFixed(0)).join(", ")
    }), heap ${startup.medianHeapMb.toFixed(1)} MB.`,
    "",
    "Before this work (gpt-tokenizer and swagger-ui-dist in the function): 12.79 MB packed (gpt-tokenizer 6.96, swagger-ui-dist 2.89, openai 1.96, zod 0.64) and 384 ms of start-up CPU with a 61 MB heap.",
  );
} finally {
  for (const process of running) await process.stop();
}

/** Why targets are missed, from profiling; kept with the generator so every run reprints it. */
const ANALYSIS = `### Where the time goes, and what was done

Profiled in process (timing each layer of one request, then the whole app against a bare Hono handler):

- **Token verification** was the largest single cost of a read (ES256 verify, about 0.7 ms of 2.2 ms).
  Fixed: verified tokens are remembered until they expire (keyed by the whole token), which
  halved the in-process cost of \`GET /api/sessions\`.
- **Round trips.** Opening the RLS transaction (\`begin\`, the caller's claims and role) used to
  cost round trips of its own. Fixed: it now travels with the first statement, and a single
  statement commits in the same write, so every read and single-statement write is one round trip
  (see 1); a POST's work before the model is begin and two statements sent together, then commit.
- **Relaying** cost a timer per chunk and a write per chunk. Fixed: one idle timer per reply, and
  the chunks of a burst leave as one write (the first at once); in process this took the
  10,000-chunk relay from 3.3x to about 2x direct, and across processes it measured between 1.0x and
  1.6x in successive runs (the machine is shared). What remains is the \`openai\` SDK parsing every
  chunk (about 13 µs each, measured alone) on top of reading it, which the direct baseline skips.
- **Read throughput against floor** stays short of 0.40 on this 2-core machine. The **floor-list**
  baseline shows why: the list query's own data (20 rows of 4 columns decoded and serialised as JSON)
  already costs about 60% of floor's throughput before any auth or RLS; the RLS transaction (four
  statements instead of one) and the app take the rest. That is the price of letting Postgres decide
  access (DESIGN.md), not waste found in our code; the ratio to floor-list is the fairer figure.
- **First byte of a POST** includes two durable writes (the session and the message, with the trigger
  that moves \`updated_at\`) committed before the model is called, as required, and the SDK's own
  request overhead (the \`model\` part of Server-Timing minus direct); both are broken down in 3.
- **Isolation**: the list route reads along its index; the history route reads along
  \`(chat_session_id, seq)\`, but its RLS check (a subquery per row) and a freshly loaded table of a
  million rows cost more buffer reads; see 5 for this run's figure.
- **Long sessions** (8): each message stores its token count and a running total for its session
  when it is written, so the newest turns that fit the budget are one range of an index: the
  database reads only what fits, and no history is tokenized per request. Before this, it read up to
  budget ÷ 4 rows and counted them in JavaScript (about 4 ms per request at 16,000 tokens).
- **Cold start** includes importing the modules (9) and opening the first database connection for
  \`/api/health\`. The tokenizer's o200k ranks (a 2.3 MB JSON module, about 100 ms of CPU to load)
  are no longer part of it: they load on the first count of a message.`;

const cpu =
  (await Deno.readTextFile("/proc/cpuinfo").catch(() => "")).match(/model name\s*:\s*(.+)/)?.[1] ??
    "unknown";
const [{ version }] = await db.admin<
  [{ version: string }]
>`select current_setting('server_version') as version`;
const page = `# Benchmarks

Generated by \`deno task bench\` on ${new Date().toISOString()}; do not edit by hand.
Machine: ${navigator.hardwareConcurrency} cores (${cpu}), ${
  (Deno.systemMemoryInfo().total / 2 ** 30).toFixed(0)
} GiB,
Deno ${Deno.version.deno}, Postgres ${version} (embedded), everything on loopback. These machines are shared
and noisy: every figure is measured in the same run as its baseline, and the ratio is the figure to trust.

Baselines, started by the benchmark itself: **hello** (a bare \`Deno.serve\` returning a constant: the
runtime's ceiling), **floor** (a bare \`Deno.serve\` doing one Postgres round trip per request with the same
driver and pool size: the database's floor), **direct** (the stand-in model called without the API).

## Against the targets

| figure | target | measured (median) | |
| --- | --- | --- | --- |
${verdicts.join("\n")}

${ANALYSIS}

${report.join("\n")}`;
await Deno.writeTextFile(new URL("docs/benchmarks.md", root), page);
await new Deno.Command(Deno.execPath(), {
  args: ["fmt", "docs/benchmarks.md"],
  cwd: root,
  stderr: "null",
}).output();
log("wrote docs/benchmarks.md");
Deno.exit(0);
