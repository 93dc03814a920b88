/**
 * What a load costs Postgres, read from Postgres's own statistics: transactions, rows written
 * (by table), WAL (bytes from `pg_current_wal_lsn()`, records, writes and syncs from
 * `pg_stat_wal`), data pages written (`pg_stat_io`) and the connections open (`pg_stat_activity`,
 * by `application_name`). Nothing here assumes which statements the API runs, so a figure built
 * on it measures any write path the same way.
 */
import postgres from "postgres";

/** The database's cumulative counters at one moment. */
export interface Counters {
  at: number;
  /** WAL position, in bytes (cluster-wide: everything this server wrote) */
  lsn: number;
  /** the database's size on disk, in bytes (tables, indexes, TOAST, free space not yet reused) */
  size: number;
  commits: number;
  rollbacks: number;
  /** rows inserted, updated and deleted in this database */
  inserted: number;
  updated: number;
  deleted: number;
  walRecords: number;
  /** full-page images: the first change of a page after a checkpoint writes the whole page */
  walFpi: number;
  /** WAL writes and syncs to disk (`pg_stat_wal`; 0 where the server no longer reports them) */
  walWrites: number;
  walSyncs: number;
  /** 8 kB pages written and files synced by every process (`pg_stat_io`) */
  pageWrites: number;
  fsyncs: number;
  /** rows written per table, `schema.table` → inserted + updated + deleted */
  tables: Record<string, { inserted: number; updated: number; hot: number; deleted: number }>;
}

/** Connections to this database at one moment, by `application_name`. */
export interface Activity {
  at: number;
  /** open connections by application */
  open: Record<string, number>;
  /** of those, in a statement or a transaction (not idle) */
  busy: Record<string, number>;
  /** of those, waiting for a lock another transaction holds */
  locked: Record<string, number>;
}

/**
 * Reads the counters and the connections of one database. The database's own counters and its
 * connections are read from the server's `postgres` database, so the sampling itself is not
 * counted among the transactions it measures; only the rows per table need a connection to the
 * measured database (its `pg_stat_user_tables`), a read that writes nothing.
 */
export class DatabaseLoad {
  readonly #server: postgres.Sql;
  readonly #db: postgres.Sql;
  readonly #name: string;

  constructor(url: string) {
    const options = {
      max: 1,
      onnotice: () => {},
      connection: { application_name: "bench-sampler" },
    };
    const server = new URL(url);
    this.#name = decodeURIComponent(server.pathname.slice(1));
    server.pathname = "/postgres";
    this.#server = postgres(server.href, options);
    this.#db = postgres(url, options);
  }

  /** `tables`: also the rows per table (a transaction in the measured database: not while sampling) */
  async counters(opts: { tables: boolean } = { tables: true }): Promise<Counters> {
    const [{ tables }] = !opts.tables ? [{ tables: {} }] : await this.#db<
      [{ tables: Counters["tables"] | null }]
    >`
      select jsonb_object_agg(schemaname || '.' || relname, jsonb_build_object(
               'inserted', n_tup_ins, 'updated', n_tup_upd, 'hot', n_tup_hot_upd,
               'deleted', n_tup_del)) as tables
      from pg_stat_user_tables`;
    // to_jsonb: pg_stat_wal lost its write and sync columns in Postgres 18 (moved to pg_stat_io)
    const [row] = await this.#server<
      {
        lsn: string;
        size: string;
        db: Record<string, number>;
        wal: Record<string, number>;
        io: { writes: number; fsyncs: number };
      }[]
    >`
      select pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::text as lsn,
             pg_database_size(${this.#name})::text as size,
             (select to_jsonb(d) from pg_stat_database d where datname = ${this.#name}) as db,
             (select to_jsonb(w) from pg_stat_wal w) as wal,
             (select jsonb_build_object('writes', coalesce(sum(writes), 0),
                                        'fsyncs', coalesce(sum(fsyncs), 0))
                from pg_stat_io) as io`;
    const num = (value: unknown) => Number(value ?? 0);
    return {
      at: performance.now(),
      lsn: Number(row!.lsn),
      size: Number(row!.size),
      commits: num(row!.db.xact_commit),
      rollbacks: num(row!.db.xact_rollback),
      inserted: num(row!.db.tup_inserted),
      updated: num(row!.db.tup_updated),
      deleted: num(row!.db.tup_deleted),
      walRecords: num(row!.wal.wal_records),
      walFpi: num(row!.wal.wal_fpi),
      walWrites: num(row!.wal.wal_write),
      walSyncs: num(row!.wal.wal_sync),
      pageWrites: num(row!.io.writes),
      fsyncs: num(row!.io.fsyncs),
      tables: tables ?? {},
    };
  }

  /**
   * Leaves the server nothing to do in the background: what earlier work left for autovacuum in
   * this database (a figure's 50,000 messages) is vacuumed now, and autovacuum workers still
   * running anywhere are waited for (at most a minute), so that what is measured next (counters
   * of the whole server: WAL, syncs, CPU) is that work's own. A vacuum run inside a measurement
   * once wrote 1.5 MB of WAL in the window of one reply.
   */
  async quiesce(): Promise<void> {
    await this.#db`vacuum (analyze)`;
    for (let i = 0; i < 120; i++) {
      const [{ workers }] = await this.#server<[{ workers: number }]>`
        select count(*)::int as workers from pg_stat_activity
        where backend_type = 'autovacuum worker'`;
      if (workers === 0) return;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }

  async activity(): Promise<Activity> {
    const rows = await this.#server<{ app: string; open: number; busy: number; locked: number }[]>`
      select coalesce(nullif(application_name, ''), backend_type) as app, count(*)::int as open,
             (count(*) filter (where state <> 'idle'))::int as busy,
             (count(*) filter (where wait_event_type = 'Lock'))::int as locked
      from pg_stat_activity where datname = ${this.#name}
      group by 1`;
    return {
      at: performance.now(),
      open: Object.fromEntries(rows.map((r) => [r.app, r.open])),
      busy: Object.fromEntries(rows.map((r) => [r.app, r.busy])),
      locked: Object.fromEntries(rows.map((r) => [r.app, r.locked])),
    };
  }

  /**
   * CPU seconds the whole Postgres server has used so far (this machine's server only): the
   * postmaster's own and its reaped children's, plus its live children's (the backends, the
   * checkpointer, the WAL writer), from /proc. The postmaster is the checkpointer's parent.
   */
  async cpuSeconds(): Promise<number> {
    const [row] = await this.#server<{ pid: number }[]>`
      select pid from pg_stat_activity where backend_type = 'checkpointer'`;
    const postmaster = procStat(row!.pid)?.ppid;
    if (!postmaster) return NaN;
    const own = procStat(postmaster)!;
    let ticks = own.utime + own.stime + own.cutime + own.cstime;
    for (const entry of Deno.readDirSync("/proc")) {
      if (!/^\d+$/.test(entry.name)) continue;
      const child = procStat(Number(entry.name));
      if (child?.ppid === postmaster) ticks += child.utime + child.stime;
    }
    // Linux counts in clock ticks of 1/100 s (USER_HZ) on every architecture it reports to users
    return ticks / 100;
  }

  /** Samples `activity` and `counters` every `everyMs` until `stop()`, which returns them all. */
  sample(everyMs: number): { stop(): Promise<{ activity: Activity[]; counters: Counters[] }> } {
    const activity: Activity[] = [];
    const counters: Counters[] = [];
    let running = true;
    const loop = (async () => {
      while (running) {
        const next = performance.now() + everyMs;
        activity.push(await this.activity());
        counters.push(await this.counters({ tables: false }));
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, next - performance.now())));
      }
    })();
    return {
      async stop() {
        running = false;
        await loop;
        return { activity, counters };
      },
    };
  }

  async end(): Promise<void> {
    await this.#server.end();
    await this.#db.end();
  }
}

/** What happened between two readings of the counters. */
export function delta(from: Counters, to: Counters) {
  const tables: Record<
    string,
    { inserted: number; updated: number; hot: number; deleted: number }
  > = {};
  for (const [name, now] of Object.entries(to.tables)) {
    const was = from.tables[name] ?? { inserted: 0, updated: 0, hot: 0, deleted: 0 };
    const d = {
      inserted: now.inserted - was.inserted,
      updated: now.updated - was.updated,
      hot: now.hot - was.hot,
      deleted: now.deleted - was.deleted,
    };
    if (d.inserted || d.updated || d.deleted) tables[name] = d;
  }
  return {
    seconds: (to.at - from.at) / 1000,
    walBytes: to.lsn - from.lsn,
    grownBytes: to.size - from.size,
    commits: to.commits - from.commits,
    rollbacks: to.rollbacks - from.rollbacks,
    rows: (to.inserted - from.inserted) + (to.updated - from.updated) +
      (to.deleted - from.deleted),
    walRecords: to.walRecords - from.walRecords,
    walFpi: to.walFpi - from.walFpi,
    walWrites: to.walWrites - from.walWrites,
    walSyncs: to.walSyncs - from.walSyncs,
    pageWrites: to.pageWrites - from.pageWrites,
    fsyncs: to.fsyncs - from.fsyncs,
    tables,
  };
}

export type Delta = ReturnType<typeof delta>;

/**
 * Seconds a process's main thread has run on a CPU and has waited for one (runnable, in the run
 * queue), from /proc/<pid>/schedstat: a process that waits long for a CPU is starved by others.
 */
export function schedSeconds(pid: number): { ran: number; waited: number } {
  try {
    const [ran, waited] = Deno.readTextFileSync(`/proc/${pid}/schedstat`).split(" ").map(Number);
    return { ran: ran! / 1e9, waited: waited! / 1e9 };
  } catch {
    return { ran: NaN, waited: NaN };
  }
}

/** The fields of /proc/<pid>/stat used here, or undefined when the process is gone. */
export function procStat(pid: number) {
  let text: string;
  try {
    text = Deno.readTextFileSync(`/proc/${pid}/stat`);
  } catch {
    return undefined;
  }
  // the command name is in parentheses and may hold spaces: the fields start after its end
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ").map(Number);
  // fields[0] is the state (field 3 of proc(5)); ppid is field 4, utime..cstime 14..17
  return {
    ppid: fields[1]!,
    utime: fields[11]!,
    stime: fields[12]!,
    cutime: fields[13]!,
    cstime: fields[14]!,
  };
}
