/**
 * The contract of a benchmark figure. A figure is a module in `bench/figures/` exporting a
 * `Figure`, listed once in `bench/figures.ts`; `bench/run.ts` runs them in that order and
 * builds docs/benchmarks.md from what they return. Adding a benchmark means adding a file
 * and a line to that list. A figure measures; it never fails on speed.
 */
import type { SigningKey } from "../local/signing_keys.ts";
import type { TestDatabase } from "../tests/support/database.ts";
import type { Running } from "./processes.ts";

/** One target of the issue, what was measured, and whether it was met: a row of the summary. */
export interface Verdict {
  figure: string;
  target: string;
  measured: string;
  met: boolean;
}

export interface FigureResult {
  /** the section's markdown under its `## title` heading */
  lines: string[];
  /** the targets this figure checks, in the order they appear in the summary */
  verdicts?: Verdict[];
  /** further files written into docs/ beside benchmarks.md (a chart), by file name */
  files?: Record<string, string>;
}

export interface Figure {
  /** runs this figure alone: `deno task bench <name>` */
  name: string;
  /** the section heading in docs/benchmarks.md */
  title: string;
  run(bench: Bench): Promise<FigureResult>;
}

/** The baselines of `bench/baselines.ts`, each a process of its own. */
export type BaselineKind = "hello" | "floor" | "floor-list" | "floor-history";

/**
 * What every figure gets: one database, one signing key and one stand-in model for the whole
 * run, a user with some data, and the processes it measures. The shared API and baseline
 * processes start on first use, so a figure run alone starts only what it needs; every
 * process is stopped when the run ends, also when a figure fails.
 */
export interface Bench {
  /** runs of each measurement (BENCH_REPEATS, default 3) */
  repeats: number;
  /** seconds per autocannon run (BENCH_SECONDS, default 3) */
  seconds: number;
  /** a progress line on stderr */
  log(line: string): void;
  db: TestDatabase;
  key: SigningKey;
  /** the stand-in model's base URL, `.../v1` */
  modelUrl: string;
  /** the user whose data the read figures use: 20 sessions, one of which holds 50 messages */
  owner: string;
  /** `authorization` header of `owner` */
  auth: Record<string, string>;
  /** `owner`'s session holding 50 messages */
  historySession: string;
  /** a newly signed-up user and its `authorization` header */
  signUp(): Promise<{ id: string; auth: Record<string, string> }>;
  /** the shared API process (pool of 5 on the benchmark's database) */
  api(): Promise<Running>;
  /** a shared baseline process */
  baseline(kind: BaselineKind): Promise<Running>;
  /**
   * a further API process of the figure's own (another database URL, pool size, `deno run`
   * arguments in place of the function's entry point, or another checkout's function: `cwd`, to
   * compare before and after in one run); stop it when done
   */
  startApi(
    opts?: {
      databaseUrl?: string;
      poolMax?: number;
      env?: Record<string, string>;
      args?: string[];
      cwd?: string;
    },
  ): Promise<Started>;
  /** a further baseline process of the figure's own; stop it when done */
  startBaseline(kind: BaselineKind): Promise<Started>;
}

export type Started = Running & { startedInMs: number };
