/**
 * The scale figure's section (bench/figures/scale.ts): what a run of many concurrent replies
 * measured, as markdown, and how many such replies each Supabase compute size carries.
 */
import { type Activity, type Counters, type Delta, delta } from "./database_load.ts";
import { COMPUTE_SIZES } from "./compute_sizes.ts";
import type { FigureResult } from "./figure.ts";
import { percentile } from "./processes.ts";

/** How the replies were sent. */
export interface ScaleSettings {
  protocol: string;
  /** tokens per reply, sent `perChunk` at a time every `gapMs` */
  tokens: number;
  perChunk: number;
  gapMs: number;
  /** the length of a reply's text */
  textBytes: number;
  rampSeconds: number;
  perUser: number;
  instances: number;
  /** DB_POOL_MAX of each instance */
  pool: number;
}

/** One request of the run, as its client saw it. */
export interface Outcome {
  /** HTTP status, or 0 when the request failed */
  status: number;
  /** ms from sending to the first word of the reply */
  firstText: number;
  /** ms from sending to the end */
  total: number;
  /** the last word arrived */
  complete: boolean;
  startedAt: number;
  endedAt: number;
}

/** What a run measured. */
export interface ScaleRun {
  settings: ScaleSettings;
  alone: Delta;
  direct: Outcome[];
  outcomes: Outcome[];
  whole: Delta;
  aloneSeconds: number;
  /** Postgres CPU seconds while the reply alone streamed */
  aloneCpu: number;
  /** CPU seconds used while the replies streamed, by Postgres and by the API instances together */
  cpu: { db: number; api: number; apiWaited: number };
  window: number;
  counters: Counters[];
  activity: Activity[];
  loadavg: number[];
}

/** The figure's section from what the run measured. */
export function scaleReport(m: ScaleRun): FigureResult {
  const run = m.settings;
  const ok = m.outcomes.filter((o) => o.status === 200 && o.complete);
  const failed = m.outcomes.length - ok.length;
  const statuses = Object.entries(
    Object.groupBy(
      m.outcomes.filter((o) => !(o.status === 200 && o.complete)),
      (o) => o.status === 200 ? "200, cut short" : o.status ? String(o.status) : "no answer",
    ),
  ).map(([status, list]) => `${status}: ${list!.length}`).join(", ");
  const directFirst = m.direct.filter((o) => o.complete).map((o) => o.firstText);
  const apiFirst = ok.map((o) => o.firstText);
  const p = (values: number[], q: number) => values.length ? percentile(values, q) : NaN;
  const ms = (v: number) => `${v.toFixed(0)} ms`;
  const p99Ratio = p(apiFirst, 99) / p(directFirst, 99);

  // all of them streaming: from the last start to the first end
  const lastStart = Math.max(...m.outcomes.map((o) => o.startedAt));
  const firstEnd = Math.min(...ok.map((o) => o.endedAt));
  const plateau = m.counters.filter((c) => c.at >= lastStart && c.at <= firstEnd);
  const plateauDelta = plateau.length >= 2 ? delta(plateau[0]!, plateau.at(-1)!) : undefined;
  // the busiest second, from consecutive samples 500 ms apart
  const perSecond = m.counters.slice(2).map((c, i) => delta(m.counters[i]!, c));
  const peak = (f: (d: Delta) => number) => Math.max(0, ...perSecond.map((d) => f(d) / d.seconds));

  const api = (a: Activity, k: "open" | "busy" | "locked") => a[k]["chat-api"] ?? 0;
  const mean = (values: number[]) => values.reduce((s, v) => s + v, 0) / (values.length || 1);
  const open = m.activity.map((a) => api(a, "open"));
  const busy = m.activity.map((a) => api(a, "busy"));
  const locked = m.activity.map((a) => api(a, "locked"));
  const apps = [...new Set(m.activity.flatMap((a) => Object.keys(a.open)))].sort();

  const w = m.whole;
  const replies = m.outcomes.length;
  const commits = w.commits;
  const mb = (bytes: number) => bytes / 1e6;
  const perReply = {
    wal: w.walBytes / replies,
    rows: w.rows / replies,
    commits: commits / replies,
  };
  const tableRows = Object.entries(w.tables).sort(([a], [b]) => a.localeCompare(b)).map((
    [name, t],
  ) =>
    `| ${name} | ${(t.inserted / replies).toFixed(2)} | ${(t.updated / replies).toFixed(2)} | ${
      (t.hot / replies).toFixed(2)
    } | ${(t.deleted / replies).toFixed(2)} |`
  );

  // what one reply costs for each second it streams: the unit a project is sized in (N replies
  // streaming at once cost N times this), the whole window's totals over the replies' seconds
  const replySeconds = m.outcomes.reduce((sum, o) => sum + o.total, 0) / 1000;
  const perSecond1 = {
    commits: commits / replySeconds,
    walBytes: w.walBytes / replySeconds,
    io: (w.walSyncs + w.pageWrites) / replySeconds,
    dbCores: m.cpu.db / replySeconds,
    busy: (mean(busy) * m.window) / replySeconds,
  };
  // alone: no commit shares a WAL flush with another, and every progress write happens
  const perSecondAlone = {
    commits: m.alone.commits / m.aloneSeconds,
    walBytes: m.alone.walBytes / m.aloneSeconds,
    io: (m.alone.walSyncs + m.alone.pageWrites) / m.aloneSeconds,
    dbCores: m.aloneCpu / m.aloneSeconds,
  };
  // Sized by the reply alone: it makes every write a reply makes when the database and the API have
  // room (at scale on a starved machine a progress write waits, so a reply writes less often and
  // looks cheaper than it is), and its commits share no WAL sync, an upper bound on the IOPS.
  const writesMade = perSecond1.commits / perSecondAlone.commits;
  const sizing = sizingTable(perSecondAlone);

  return {
    verdicts: [{
      figure: `12. ${replies} concurrent replies, failures`,
      target: "0",
      measured: String(failed),
      met: failed === 0,
    }],
    lines: [
      `${replies} replies (protocol \`${run.protocol}\`) of ${run.tokens} tokens, ${run.perChunk} every ${run.gapMs} ` +
      `ms (${run.textBytes} bytes of text, ${
        (run.tokens / run.perChunk * run.gapMs / 1000).toFixed(0)
      } s each), started ` +
      `evenly over ${run.rampSeconds} s by ${
        Math.ceil(replies / run.perUser)
      } users (${run.perUser} each, ` +
      `the default concurrent quota), each a new session, spread over **${run.instances} API ` +
      `instances** with \`DB_POOL_MAX=${run.pool}\` each, on one Postgres; the stand-in model in a process ` +
      `of its own, the clients in the benchmark's. Measured by Postgres's own statistics ` +
      "(`pg_stat_database`, `pg_stat_user_tables`, `pg_stat_wal`, `pg_stat_io`, " +
      "`pg_current_wal_lsn()`, `pg_stat_activity` every 500 ms). Baselines in the same run: the " +
      "same streams read **direct** from the stand-in model, and one reply **alone**. Load " +
      `average (1 min) ${m.loadavg[0]!.toFixed(1)} before, ${
        m.loadavg[1]!.toFixed(1)
      } at the end ` +
      `of the run, on ${navigator.hardwareConcurrency} cores shared with other work.`,
      "",
      "| replies | value |",
      "| --- | --- |",
      `| completed intact | **${ok.length} / ${replies}**${failed ? ` (${statuses})` : ""} |`,
      `| first word, direct p50 / p99 | ${ms(p(directFirst, 50))} / ${ms(p(directFirst, 99))} |`,
      `| first word, through the API p50 / p99 | ${ms(p(apiFirst, 50))} / **${
        ms(p(apiFirst, 99))
      }** |`,
      `| **p99 first word, API ÷ direct** | **${p99Ratio.toFixed(2)}** |`,
      `| reply duration through the API p50 / p99 (alone: ${m.aloneSeconds.toFixed(1)} s) | ${
        (p(ok.map((o) => o.total), 50) / 1000).toFixed(1)
      } s / ${(p(ok.map((o) => o.total), 99) / 1000).toFixed(1)} s |`,
      "",
      `The database, over the ${
        m.window.toFixed(1)
      } s from the first send to the last reply's end ` +
      `(mean), while all ${replies} streamed at once (${
        plateauDelta ? `${plateauDelta.seconds.toFixed(1)} s` : "not sampled"
      }), and in the busiest second:`,
      "",
      "| | mean | all streaming | busiest second |",
      "| --- | --- | --- | --- |",
      `| transactions committed /s | ${(commits / m.window).toFixed(0)} | ${
        plateauDelta ? (plateauDelta.commits / plateauDelta.seconds).toFixed(0) : "–"
      } | ${peak((d) => d.commits).toFixed(0)} |`,
      `| rows written /s (inserted + updated + deleted) | ${(w.rows / m.window).toFixed(0)} | ${
        plateauDelta ? (plateauDelta.rows / plateauDelta.seconds).toFixed(0) : "–"
      } | ${peak((d) => d.rows).toFixed(0)} |`,
      `| WAL MB/s | ${mb(w.walBytes / m.window).toFixed(2)} | ${
        plateauDelta ? mb(plateauDelta.walBytes / plateauDelta.seconds).toFixed(2) : "–"
      } | ${mb(peak((d) => d.walBytes)).toFixed(2)} |`,
      `| WAL syncs /s (each at least one disk write: the IOPS commits need) | ${
        (w.walSyncs / m.window).toFixed(0)
      } | ${plateauDelta ? (plateauDelta.walSyncs / plateauDelta.seconds).toFixed(0) : "–"} | ${
        peak((d) => d.walSyncs).toFixed(0)
      } |`,
      `| WAL writes /s (to the OS; a sync makes them reach the disk) | ${
        (w.walWrites / m.window).toFixed(0)
      } | | |`,
      `| data pages written /s (8 kB; most wait for a checkpoint) | ${
        (w.pageWrites / m.window).toFixed(0)
      } | | |`,
      `| CPU cores used by Postgres (all its processes) | ${
        (m.cpu.db / m.window).toFixed(2)
      } | | |`,
      `| CPU cores used by the ${run.instances} API instances | ${
        (m.cpu.api / m.window).toFixed(2)
      } | | |`,
      `| time each API event loop waited for a CPU (run queue), per second | ${
        (m.cpu.apiWaited / run.instances / m.window).toFixed(2)
      } s | | |`,
      `| API connections open (max ${run.instances} × ${run.pool}) | ${
        mean(open).toFixed(1)
      } | | max ${Math.max(0, ...open)} |`,
      `| of which busy (in a statement or transaction) | ${mean(busy).toFixed(2)} | | max ${
        Math.max(0, ...busy)
      } |`,
      `| of which waiting for a lock | ${mean(locked).toFixed(2)} | | max ${
        Math.max(0, ...locked)
      } |`,
      "",
      `Connections seen, by \`application_name\` (max open): ${
        apps.map((a) => `${a} ${Math.max(0, ...m.activity.map((s) => s.open[a] ?? 0))}`).join(
          ", ",
        )
      }.`,
      "",
      "Per reply (the whole run's totals ÷ replies; a send, its progress and its save), against one " +
      "reply alone:",
      "",
      "| per reply | at scale | alone |",
      "| --- | --- | --- |",
      `| transactions | ${perReply.commits.toFixed(1)} | ${m.alone.commits} |`,
      `| rows written | ${perReply.rows.toFixed(1)} | ${m.alone.rows} |`,
      `| WAL kB | ${(perReply.wal / 1000).toFixed(1)} | ${(m.alone.walBytes / 1000).toFixed(1)} |`,
      `| WAL ÷ the reply's text (${run.textBytes} bytes) | ${
        (perReply.wal / run.textBytes).toFixed(1)
      } | ${(m.alone.walBytes / run.textBytes).toFixed(1)} |`,
      `| Postgres CPU ms | ${(m.cpu.db * 1000 / replies).toFixed(1)} | |`,
      `| API CPU ms (the function's CPU time, billed against its 2 s per request) | ${
        (m.cpu.api * 1000 / replies).toFixed(1)
      } | |`,
      `| database grown (rows, indexes, dead versions not yet vacuumed) kB | ${
        (w.grownBytes / replies / 1000).toFixed(1)
      } | |`,
      `| WAL full-page images | ${(w.walFpi / replies).toFixed(2)} | ${m.alone.walFpi} |`,
      "",
      "Rows written per reply, by table:",
      "",
      "| table | inserted | updated | of which HOT | deleted |",
      "| --- | --- | --- | --- | --- |",
      ...tableRows,
      "",
      `What one streaming reply costs Postgres for each second it streams (the run's totals over ` +
      `its ${
        replySeconds.toFixed(0)
      } reply-seconds); N replies streaming at once cost N times this:`,
      "",
      "| per reply-second | at scale | alone |",
      "| --- | --- | --- |",
      `| transactions | ${perSecond1.commits.toFixed(2)} | ${perSecondAlone.commits.toFixed(2)} |`,
      `| WAL | ${(perSecond1.walBytes / 1000).toFixed(2)} kB | ${
        (perSecondAlone.walBytes / 1000).toFixed(2)
      } kB |`,
      `| disk writes (WAL syncs + data pages) | ${perSecond1.io.toFixed(3)} | ${
        perSecondAlone.io.toFixed(3)
      } |`,
      `| Postgres CPU | ${(perSecond1.dbCores * 1000).toFixed(2)} ms | ${
        (perSecondAlone.dbCores * 1000).toFixed(2)
      } ms |`,
      `| busy database connections | ${perSecond1.busy.toFixed(4)} | |`,
      "",
      `At scale, a reply made ${(writesMade * 100).toFixed(0)}% of the transactions it makes ` +
      "alone: a progress write waits for the one before it, so a reply whose writes wait for a " +
      "connection (or its process for a CPU) writes less often. The concurrent replies each " +
      "Supabase compute size carries, by each of its limits, at the costs of the reply **alone** " +
      "(every write made, no sync shared: an upper bound). Limits from Supabase's compute and disk " +
      "page (see **At scale** below); the CPU column counts this machine's cores, not Supabase's " +
      "ARM ones, and shared cores only burst:",
      "",
      "| compute | pooler clients ÷ DB_POOL_MAX 3 (isolates) | replies by IOPS | replies by disk throughput | replies by CPU (all cores) |",
      "| --- | --- | --- | --- | --- |",
      ...sizing,
    ],
  };
}

/** Rows of the sizing table: the replies each compute size carries by each of its limits. */
function sizingTable(cost: { walBytes: number; io: number; dbCores: number }): string[] {
  const count = (value: number) =>
    !Number.isFinite(value)
      ? "–"
      : value >= 10_000
      ? `${Math.round(value / 1000)}k`
      : String(Math.floor(value));
  return COMPUTE_SIZES.map((size) =>
    `| ${size.name} (${size.cores} ${size.shared ? "shared" : "dedicated"} cores) | ${
      Math.floor(size.poolerClients / 3)
    } | ${count(size.iops / cost.io)} | ${
      count((size.throughputMbps * 1e6 / 8) / cost.walBytes)
    } | ${count(size.cores / cost.dbCores)} |`
  );
}
