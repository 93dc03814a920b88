/**
 * 4c. What a resumable reply costs Postgres (issue #18 items 1 and 2). For
 * replies of about 1k, 4k and 16k characters, each streamed alone over about
 * five seconds: the WAL it wrote (pg_current_wal_lsn before and after: the
 * send, the progress and the save) and the row versions it made in the
 * replies tables (pg_stat_user_tables), without a follower and with one that
 * re-attaches a second in. The stored message is part of that WAL, and costs
 * what any message of that text costs (its text and its search vector, which
 * for words that never repeat is larger than the text): the WAL beyond it is
 * what streaming and resumability add. Then one reply followed by 30 re-attached readers
 * against one reader: round trips to Postgres and bytes Postgres sent, counted
 * at a proxy in front of the readers' instance. The text is pseudo-random
 * letters (`words-N-MS`), which compress about as little as prose.
 */
import type { Bench, Figure } from "../figure.ts";
import type { Running } from "../processes.ts";
import { median } from "../processes.ts";
import { post } from "../requests.ts";
import { startRoundTripProxy } from "../round_trip_proxy.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Each reply streams for about this long, whatever its size. */
const STREAM_MS = 5000;
const SIZES = [1000, 4000, 16000];
const READERS = 30;

interface ReplyCost {
  wal: number;
  rows: number;
  /** bytes the stored message takes (its text and search vector, as stored) */
  message: number;
}

export const replyCost: Figure = {
  name: "reply-cost",
  title: "4c. A resumable reply's cost to Postgres: WAL, row versions, followers",
  async run(bench) {
    const api = await bench.api();
    const rows: string[] = [];
    const verdicts = [];
    let worstExcess = 0;
    for (const size of SIZES) {
      const chunks = size / 5;
      const model = `words-${chunks}-${Math.max(1, Math.round(STREAM_MS / chunks))}`;
      const alone: ReplyCost[] = [];
      const followed: ReplyCost[] = [];
      for (let r = 0; r < bench.repeats; r++) {
        alone.push(await measure(bench, () => streamAlone(bench, api, model)));
        followed.push(await measure(bench, () => streamFollowed(bench, api, model)));
      }
      const a = medians(alone);
      const f = medians(followed);
      // beyond the stored message, beyond twice the text: the constant a reply costs
      const excess = (c: ReplyCost) => c.wal - c.message - 2 * size;
      worstExcess = Math.max(worstExcess, excess(a) / 1024, excess(f) / 1024);
      const wal = (c: ReplyCost) =>
        `${kb(c.wal)}; ${kb(c.wal - c.message)} (${((c.wal - c.message) / size).toFixed(1)}×)`;
      rows.push(
        `| ${size} | ${kb(a.message)} | ${wal(a)} | ${a.rows} | ${wal(f)} | ${f.rows} |`,
      );
    }
    // what a reply costs beyond its stored message and twice its text, at its largest over the
    // three sizes: a constant (the send, the lease, the row's versions, pages touched first)
    verdicts.push({
      figure: "4c. WAL per reply beyond its stored message and 2× its text (1k, 4k, 16k; largest)",
      target: "a constant (≤ 32 KiB)",
      measured: `${worstExcess.toFixed(1)} KiB`,
      met: worstExcess <= 32,
    });

    const readers = await followers(bench, api);
    const tripsRatio = readers.many.trips / readers.one.trips;
    const bytesRatio = readers.many.bytes / readers.one.bytes;
    verdicts.push({
      figure: `4c. ${READERS} readers of one reply ÷ one reader (round trips, bytes from Postgres)`,
      target: "≤ 3",
      measured: `${tripsRatio.toFixed(2)}, ${bytesRatio.toFixed(2)}`,
      met: tripsRatio <= 3 && bytesRatio <= 3,
    });
    return {
      verdicts,
      lines: [
        `Each reply streams alone for about ${STREAM_MS / 1000} s; WAL from the send to the`,
        "save, row versions (inserts and updates) of `chat_private`'s reply tables; medians of",
        `${bench.repeats}. The follower re-attaches (GET …/stream) about a second in.`,
        "",
        "WAL is given whole; then beyond the stored message (÷ text).",
        "",
        "| characters | stored message | WAL, no follower | row versions | WAL, one follower | row versions |",
        "| --- | --- | --- | --- | --- | --- |",
        ...rows,
        "",
        `One reply of about 4k characters over ${STREAM_MS / 1000} s, its readers re-attached`,
        "on another instance, counted at a proxy between that instance and Postgres:",
        "",
        "| readers | round trips | bytes from Postgres |",
        "| --- | --- | --- |",
        `| 1 | ${readers.one.trips} | ${readers.one.bytes} |`,
        `| ${READERS} | ${readers.many.trips} | ${readers.many.bytes} |`,
        `| **ratio** | **${tripsRatio.toFixed(2)}** | **${bytesRatio.toFixed(2)}** |`,
      ],
    };
  },
};

const kb = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;

/** The WAL and row versions of the replies tables that `work` made. */
async function measure(bench: Bench, work: () => Promise<string>): Promise<ReplyCost> {
  const { admin } = bench.db;
  await sleep(300); // an earlier reply's background work settles
  const before = await rowVersions(bench);
  const [start] = await admin<{ lsn: string }[]>`select pg_current_wal_lsn()::text as lsn`;
  const session = await work();
  const [end] = await admin<{ wal: string }[]>`
    select pg_wal_lsn_diff(pg_current_wal_lsn(), ${start!.lsn}::pg_lsn)::bigint::text as wal`;
  const [message] = await admin<{ bytes: number }[]>`
    select (pg_column_size(m.content) + pg_column_size(m.search))::int as bytes
    from public.messages m where m.chat_session_id = ${session} and m.role = 'assistant'`;
  return {
    wal: Number(end!.wal),
    rows: (await settledRowVersions(bench)) - before,
    message: message?.bytes ?? 0,
  };
}

function medians(costs: ReplyCost[]): ReplyCost {
  return {
    wal: median(costs.map((c) => c.wal)),
    rows: median(costs.map((c) => c.rows)),
    message: median(costs.map((c) => c.message)),
  };
}

async function rowVersions(bench: Bench): Promise<number> {
  const [row] = await bench.db.admin<{ n: string }[]>`
    select coalesce(sum(n_tup_ins + n_tup_upd), 0)::bigint::text as n from pg_stat_user_tables
    where schemaname = 'chat_private' and relname in ('replies', 'reply_parts')`;
  return Number(row!.n);
}

/** Statistics reach the shared view a second or more after a transaction: read until steady. */
async function settledRowVersions(bench: Bench): Promise<number> {
  await sleep(1100);
  let last = await rowVersions(bench);
  for (let i = 0; i < 20; i++) {
    await sleep(600);
    const now = await rowVersions(bench);
    if (now === last) return now;
    last = now;
  }
  return last;
}

async function streamAlone(bench: Bench, api: Running, model: string) {
  const session = crypto.randomUUID();
  const sent = await post(api.url, bench.auth, session, "cost", model);
  if (sent.status !== 200) throw new Error(`reply-cost answered ${sent.status}`);
  return session;
}

async function streamFollowed(bench: Bench, api: Running, model: string) {
  const session = crypto.randomUUID();
  const sending = post(api.url, bench.auth, session, "cost", model);
  await sleep(1000);
  const followed = await readAll(api.url, bench.auth, session);
  const sent = await sending;
  if (sent.status !== 200 || followed !== 200) {
    throw new Error(`reply-cost answered ${sent.status}, ${followed}`);
  }
  return session;
}

/** Re-attaches to the reply streaming in `session` and reads it to its end. */
async function readAll(base: string, auth: Record<string, string>, session: string) {
  const response = await fetch(`${base}/api/sessions/${session}/stream?protocol=text`, {
    headers: auth,
  });
  await response.arrayBuffer();
  return response.status;
}

/** One reply read by one re-attached reader, then another by READERS of them. */
async function followers(bench: Bench, api: Running) {
  const pg = new URL(bench.db.url);
  const proxy = startRoundTripProxy({ hostname: pg.hostname, port: Number(pg.port) });
  const proxied = new URL(bench.db.url);
  proxied.port = String(proxy.port);
  const readerApi = await bench.startApi({
    databaseUrl: proxied.href,
    env: { REATTACH_MAX_PER_USER: String(READERS), STOP_WAIT_MAX_PER_USER: String(READERS) },
  });
  try {
    const run = async (readers: number) => {
      const session = crypto.randomUUID();
      const sending = post(
        api.url,
        bench.auth,
        session,
        "cost",
        `words-800-${Math.round(STREAM_MS / 800)}`,
      );
      await sleep(500);
      const before = { trips: proxy.roundTrips, bytes: proxy.bytesFromServer };
      const statuses = await Promise.all(
        Array.from({ length: readers }, () => readAll(readerApi.url, bench.auth, session)),
      );
      await sending;
      await sleep(300);
      if (statuses.some((s) => s !== 200)) throw new Error(`readers answered ${statuses}`);
      return {
        trips: proxy.roundTrips - before.trips,
        bytes: proxy.bytesFromServer - before.bytes,
      };
    };
    await run(1); // the instance's connections and statements are ready
    const one = await run(1);
    const many = await run(READERS);
    return { one, many };
  } finally {
    await readerApi.stop();
    proxy.close();
  }
}
