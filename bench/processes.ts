/** Starting the processes a benchmark measures, and reading what they cost. */
import { freePort } from "../local/database.ts";

const root = new URL("../", import.meta.url).pathname;

export interface Running {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

/** Spawns `deno run <args>` and waits until `probe` (a path on it) answers 200. */
export async function startDenoServer(
  args: string[],
  opts: { env?: Record<string, string>; probe: string; port?: number; cwd?: string },
): Promise<Running & { startedInMs: number }> {
  const port = opts.port ?? freePort();
  const started = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...args.map((a) => a.replace("{port}", String(port)))],
    env: { ...opts.env, PORT: String(port) },
    cwd: opts.cwd ?? root,
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  const url = `http://127.0.0.1:${port}`;
  for (;;) {
    const ok = await fetch(`${url}${opts.probe}`).then(async (r) => {
      await r.body?.cancel();
      return r.status === 200;
    }, () => false);
    if (ok) break;
    if (performance.now() - started > 60_000) throw new Error(`${args.join(" ")} did not start`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return {
    url,
    pid: child.pid,
    startedInMs: performance.now() - started,
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch { /* gone */ }
      await child.status;
    },
  };
}

/** Resident memory of a process, in bytes. */
export function residentBytes(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(status.match(/VmRSS:\s+(\d+) kB/)?.[1] ?? 0) * 1024;
}

export interface LoadResult {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
}

/** autocannon (npm), in a Node process of its own so it does not share the server's cores' event loop. */
export async function autocannon(
  url: string,
  opts: { connections: number; seconds: number; headers?: Record<string, string> },
): Promise<LoadResult> {
  const headerArgs = Object.entries(opts.headers ?? {}).flatMap(([k, v]) => ["-H", `${k}=${v}`]);
  const output = await new Deno.Command("npx", {
    args: [
      "--yes",
      "autocannon@8.0.0",
      "-j",
      "-c",
      String(opts.connections),
      "-d",
      String(opts.seconds),
      ...headerArgs,
      url,
    ],
    stdout: "piped",
    stderr: "null",
  }).output();
  const result = JSON.parse(new TextDecoder().decode(output.stdout));
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
  };
}

export const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

export const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
};

/** min / median / max of repeated runs, as the report prints them. */
export function spread(values: number[], digits = 1): string {
  const f = (v: number) => v.toFixed(digits);
  return `${f(Math.min(...values))} / **${f(median(values))}** / ${f(Math.max(...values))}`;
}
