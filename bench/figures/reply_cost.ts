/**
 * 4c. What a resumable reply costs Postgres (issue #18 items 1 and 2). For
 * replies of about 1k, 4k and 16k characters, each streamed alone over about
 * five seconds: the WAL it wrote (pg_current_wal_lsn before and after: the
 * send, the progress and the save) and the row versions it made in the
 * replies tables (pg_stat_user_tables), without a follower and with one that
 * re-attaches a second in. The messages are part of that WAL, and cost what
 * any message of that text costs (its text and its search vector, which for
 * words that never repeat is larger than the text); so is whatever else ran
 * meanwhile (autovacuum, a checkpoint). Each record is placed by the relation
 * it changed: the WAL beyond those is what streaming and resumability add. Then one reply followed by 30 re-attached readers
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
  /** the WAL written from the send to the save, whole */
  wal: number;
  /** of which on `public.messages`: the user's message and the stored reply */
  messages: number;
  /** of which not the reply's: catalogs (autovacuum), other databases, checkpoints */
  unrelated: number;
  rows: number;
}

export const replyCost: Figure = {
  name: "reply-cost",
  title: "4c. A resumable reply's cost to Postgres: WAL, row versions, followers",
  async run(bench) {
    const api = await bench.api();
    await bench.db.admin`create extension if not exists pg_walinspect`;
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
      // beyond its messages, beyond twice the text: the constant a reply costs
      const excess = (c: ReplyCost) => own(c) - 2 * size;
      worstExcess = Math.max(worstExcess, excess(a) / 1024, excess(f) / 1024);
      for (const [who, c] of [["none", a], ["one", f]] as const) {
        rows.push(
          `| ${size} | ${who} | ${kb(c.wal)} | ${kb(c.messages)} | ${kb(c.unrelated)} | ${
            kb(own(c))
          } (${(own(c) / size).toFixed(2)}×) | ${c.rows} |`,
        );
      }
    }
    // what a reply costs beyond its messages and twice its text, at its largest over the three
    // sizes: a constant (the send, the lease, the row's versions, the commits)
    verdicts.push({
      figure: "4c. WAL per reply beyond its messages and 2× its text (1k, 4k, 16k; largest)",
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
        "WAL from the send to the save, whole; of it, the records on `public.messages` (its",
        "heap, indexes and TOAST: the user's message and the stored reply, as any message costs",
        "them, its search vector included) and those that are not the reply's (catalogs written by",
        "autovacuum, other databases, checkpoints: whatever ran meanwhile), each record placed by",
        "the relation it changed (`pg_walinspect`); the rest is the reply's own: its row, its",
        "parts, the session's row, the send's count, the commits. The median reply by its own WAL.",
        "",
        "| characters | follower | WAL, whole | on messages | unrelated | the reply's own (÷ characters) | row versions |",
        "| --- | --- | --- | --- | --- | --- | --- |",
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
async function measure(bench: Bench, work: () => Promise<void>): Promise<ReplyCost> {
  const { admin } = bench.db;
  await sleep(300); // an earlier reply's background work settles
  const before = await rowVersions(bench);
  const [start] = await admin<{ lsn: string }[]>`select pg_current_wal_lsn()::text as lsn`;
  await work();
  const [wal] = await walByWhat(bench, start!.lsn);
  return {
    wal: Number(wal!.whole),
    messages: Number(wal!.messages),
    unrelated: Number(wal!.unrelated),
    rows: (await settledRowVersions(bench)) - before,
  };
}

/**
 * The WAL written since `start`, whole, and the part of it that is each record's by the relation
 * it changed (`pg_walinspect`): records on `public.messages` (its heap, indexes and TOAST: the
 * user's message and the stored reply, which any message costs), and records that are not this
 * reply's at all (the catalogs, as autovacuum's analyze writes `pg_statistic`; other databases;
 * checkpoints and standby snapshots), which land in the window by chance.
 */
function walByWhat(bench: Bench, start: string) {
  return bench.db.admin<{ whole: string; messages: string; unrelated: string }[]>`
    with messages (rel) as (
      select 'public.messages'::regclass::oid
      union all select i.indexrelid from pg_index i where i.indrelid = 'public.messages'::regclass
      union all select c.reltoastrelid from pg_class c where c.oid = 'public.messages'::regclass
      union all select i.indexrelid from pg_index i join pg_class c on i.indrelid = c.reltoastrelid
      where c.oid = 'public.messages'::regclass
    ),
    records as (
      select w.resource_manager, w.record_length,
             regexp_match(w.block_ref, 'rel (\\d+)/(\\d+)/(\\d+)') as block
      from pg_get_wal_records_info(${start}::pg_lsn, pg_current_wal_lsn()) w
    ),
    located as (
      select r.*, r.block[2]::oid as db,
             -- the database's own tablespace is 0 to pg_filenode_relation
             case when r.block is not null
               then pg_filenode_relation(
                 case when r.block[1]::oid = (select d.dattablespace from pg_database d
                                              where d.datname = current_database())
                   then 0 else r.block[1]::oid end,
                 r.block[3]::oid)::oid end as rel
      from records r
    ),
    owned as (
      -- a TOAST table (or its index) belongs to the table it holds values of
      select l.*, coalesce(
        (select o.oid from pg_class o where o.reltoastrelid = l.rel),
        (select o.oid from pg_class o join pg_index i on i.indrelid = o.reltoastrelid
         where i.indexrelid = l.rel),
        l.rel) as owner
      from located l
    )
    select pg_wal_lsn_diff(pg_current_wal_lsn(), ${start}::pg_lsn)::bigint::text as whole,
           coalesce(sum(o.record_length) filter (where o.rel in (select rel from messages)),
                    0)::bigint::text as messages,
           coalesce(sum(o.record_length) filter (
             where (o.block is null and o.resource_manager in ('XLOG', 'Standby'))
                or (o.block is not null and o.db not in (0, (select oid from pg_database
                                                           where datname = current_database())))
                or o.db = 0
                or (select c.relnamespace from pg_class c where c.oid = o.owner)
                     = 'pg_catalog'::regnamespace
           ), 0)::bigint::text as unrelated
    from owned o`;
}

/** The reply whose own WAL (the whole less its messages and what is unrelated) is the median. */
function medians(costs: ReplyCost[]): ReplyCost {
  const sorted = [...costs].sort((a, b) => own(a) - own(b));
  return { ...sorted[Math.floor(sorted.length / 2)]!, rows: median(costs.map((c) => c.rows)) };
}

/** What streaming and resumability wrote: the WAL beyond the messages and unrelated records. */
const own = (c: ReplyCost) => c.wal - c.messages - c.unrelated;

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
