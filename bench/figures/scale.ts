/**
 * 12. At scale: 1,000 replies streaming at once through two API instances on one Postgres, and
 * what they cost the database, read from Postgres's own statistics (see bench/database_load.ts),
 * so the figure measures whatever write path the replies use. The baselines, measured in the same
 * run: the same streams read directly from the stand-in model (first byte), and one reply alone
 * (what a reply costs the database with nothing beside it), so the figures are ratios and costs
 * per reply, which a user multiplies to size a project (docs/benchmarks.md, "At scale").
 *
 * BENCH_SCALE_STREAMS (default 1000), BENCH_SCALE_PROTOCOL (default ui: the AI SDK 5+ client,
 * which can re-attach, so the reply is resumable) and BENCH_SCALE_POOL (DB_POOL_MAX per instance,
 * default 3, the function's own default) change the run.
 */
import { DatabaseLoad, delta, procStat, schedSeconds } from "../database_load.ts";
import type { Bench, Figure, Started } from "../figure.ts";
import { type Outcome, scaleReport } from "../scale_report.ts";

const STREAMS = Number(Deno.env.get("BENCH_SCALE_STREAMS") ?? 1000);
const PROTOCOL = Deno.env.get("BENCH_SCALE_PROTOCOL") ?? "ui";
const POOL = Number(Deno.env.get("BENCH_SCALE_POOL") ?? 3);
const INSTANCES = 2;
/**
 * a reply of 400 tokens at 20 tokens/s (a realistic model pace), 20 s long, in chunks of 5 tokens
 * every 250 ms: a real model sends a token per event, which costs the function CPU per event but
 * the database nothing more (progress is written at most every REPLY_PERSIST_MS, 250 ms), and
 * 20,000 events a second do not fit on this machine beside everything else
 */
const TOKENS = 400;
const PER_CHUNK = 5;
const GAP_MS = 250;
const SCALE_MODEL = `slow-${TOKENS / PER_CHUNK}-${GAP_MS}-${PER_CHUNK}`;
/** the streams start evenly over this many seconds, so all of them stream at once for ~10 s */
const RAMP_SECONDS = 10;
/** users each send this many at once (the default QUOTA_CONCURRENT_STREAMS) */
const PER_USER = 5;
/** every token is `w<i> `: the reply's text, and the marks of its first and last word */
const FIRST = "w0 ";
const LAST = `w${TOKENS - 1} `;
const TEXT_BYTES = Array.from({ length: TOKENS }, (_, i) => `w${i} `).join("").length;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Sends one request and reads its body to the end, noting when the first and the last word come. */
async function stream(url: string, init: RequestInit): Promise<Outcome> {
  const startedAt = performance.now();
  let firstText = NaN;
  let complete = false;
  let status = 0;
  try {
    const response = await fetch(url, init);
    status = response.status;
    const decoder = new TextDecoder();
    const reader = response.body!.getReader();
    // the words' marks may be split between two reads: keep the end of the previous one
    let tail = "";
    for (let r = await reader.read(); !r.done; r = await reader.read()) {
      const seen = tail + decoder.decode(r.value, { stream: true });
      if (Number.isNaN(firstText) && seen.includes(FIRST)) {
        firstText = performance.now() - startedAt;
      }
      if (seen.includes(LAST)) complete = true;
      tail = seen.slice(-16);
    }
  } catch {
    status = status || 0;
  }
  const endedAt = performance.now();
  return { status, firstText, total: endedAt - startedAt, complete, startedAt, endedAt };
}

/** Starts `count` requests evenly over the ramp and waits for all of them. */
function ramped(count: number, request: (i: number) => Promise<Outcome>): Promise<Outcome[]> {
  const gap = (RAMP_SECONDS * 1000) / count;
  return Promise.all(
    Array.from({ length: count }, async (_, i) => {
      await sleep(i * gap);
      return request(i);
    }),
  );
}

const directRequest = (bench: Bench) => () =>
  stream(`${bench.modelUrl}/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: "Bearer bench" },
    body: JSON.stringify({
      model: SCALE_MODEL,
      stream: true,
      messages: [{ role: "user", content: "hi" }],
    }),
  });

const apiRequest = (api: Started, auth: Record<string, string>) =>
  stream(`${api.url}/api/sessions/${crypto.randomUUID()}?protocol=${PROTOCOL}`, {
    method: "POST",
    headers: { ...auth, "content-type": "application/json" },
    body: JSON.stringify({
      messages: [{ role: "user", content: "Tell me something at length." }],
      model: SCALE_MODEL,
    }),
  });

/** Waits until no connection of the API is open, so every statistic it kept has reached Postgres. */
async function untilApiGone(load: DatabaseLoad) {
  for (let i = 0; i < 100; i++) {
    if (!(await load.activity()).open["chat-api"]) return;
    await sleep(100);
  }
}

/** CPU seconds the API processes have used so far */
function apiCpuSeconds(apis: Started[]): number {
  return apis.reduce((sum, api) => {
    const stat = procStat(api.pid);
    return sum + (stat ? (stat.utime + stat.stime) / 100 : 0);
  }, 0);
}

/** seconds the API processes' main threads (their event loops) have waited for a CPU so far */
function apiWaitedSeconds(apis: Started[]): number {
  return apis.reduce((sum, api) => sum + schedSeconds(api.pid).waited, 0);
}

const apiEnv = {
  // the function's defaults: one user may stream 5 replies at once
  QUOTA_MESSAGES_PER_DAY: "1000",
  QUOTA_CONCURRENT_STREAMS: String(PER_USER),
};

export const scale: Figure = {
  name: "scale",
  title: "12. At scale: 1,000 concurrent replies",
  async run(bench) {
    const load = new DatabaseLoad(bench.db.url);
    const started: Started[] = [];
    const loadBefore = Deno.loadavg()[0]!;
    try {
      const users = [] as Record<string, string>[];
      for (let u = 0; u < Math.ceil(STREAMS / PER_USER); u++) {
        users.push((await bench.signUp()).auth);
      }

      // nothing left for autovacuum from earlier figures: the reply alone's window is its own
      await load.quiesce();
      // an idle connection's statistics reach the shared view within 10 s (PGSTAT_IDLE_INTERVAL):
      // the sign-ups' (and any earlier figure's) must not be counted as the reply's
      await sleep(11_000);
      // one reply alone, on an instance of its own that is then stopped: a process's statistics
      // reach Postgres when its connections close
      bench.log(`scale: one reply alone (${SCALE_MODEL})`);
      const solo = await bench.startApi({ poolMax: POOL, env: apiEnv });
      started.push(solo);
      const soloFrom = await load.counters();
      const soloCpu = await load.cpuSeconds();
      const soloReply = await apiRequest(solo, users[0]!);
      const aloneCpu = (await load.cpuSeconds()) - soloCpu;
      await solo.stop();
      await untilApiGone(load);
      const alone = delta(soloFrom, await load.counters());
      if (soloReply.status !== 200 || !soloReply.complete) {
        throw new Error(`scale: the reply alone answered ${soloReply.status}`);
      }

      bench.log(`scale: ${STREAMS} streams direct from the stand-in model`);
      const direct = await ramped(STREAMS, directRequest(bench));

      bench.log(`scale: ${STREAMS} streams through ${INSTANCES} API instances (pool ${POOL} each)`);
      const apis: Started[] = [];
      for (let i = 0; i < INSTANCES; i++) {
        const api = await bench.startApi({ poolMax: POOL, env: apiEnv });
        started.push(api);
        apis.push(api);
        // its first reply imports the model SDK: not what this figure measures
        await stream(`${api.url}/api/sessions/${crypto.randomUUID()}?protocol=${PROTOCOL}`, {
          method: "POST",
          headers: { ...users[0]!, "content-type": "application/json" },
          body: JSON.stringify({
            messages: [{ role: "user", content: "warm" }],
            model: "chunks-1",
          }),
        });
      }
      const sampler = load.sample(500);
      const cpuFrom = {
        db: await load.cpuSeconds(),
        api: apiCpuSeconds(apis),
        waited: apiWaitedSeconds(apis),
      };
      const from = await load.counters();
      const outcomes = await ramped(
        STREAMS,
        (i) => apiRequest(apis[i % INSTANCES]!, users[Math.floor(i / PER_USER)]!),
      );
      const streamedUntil = performance.now();
      const cpu = {
        db: (await load.cpuSeconds()) - cpuFrom.db,
        api: apiCpuSeconds(apis) - cpuFrom.api,
        apiWaited: apiWaitedSeconds(apis) - cpuFrom.waited,
      };
      const { activity, counters } = await sampler.stop();
      const loadPeak = Deno.loadavg()[0]!;
      for (const api of apis) await api.stop();
      await untilApiGone(load);
      const to = await load.counters();

      return scaleReport({
        settings: {
          protocol: PROTOCOL,
          tokens: TOKENS,
          perChunk: PER_CHUNK,
          gapMs: GAP_MS,
          textBytes: TEXT_BYTES,
          rampSeconds: RAMP_SECONDS,
          perUser: PER_USER,
          instances: INSTANCES,
          pool: POOL,
        },
        alone,
        direct,
        outcomes,
        whole: delta(from, to),
        aloneSeconds: soloReply.total / 1000,
        aloneCpu,
        cpu,
        window: (streamedUntil - from.at) / 1000,
        counters,
        activity: activity.filter((a) => a.at <= streamedUntil),
        loadavg: [loadBefore, loadPeak],
      });
    } finally {
      for (const process of started) await process.stop();
      await load.end();
    }
  },
};
