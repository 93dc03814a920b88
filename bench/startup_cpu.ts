/**
 * `deno task startup`: the CPU time a fresh worker spends importing the function's module graph,
 * which the Edge Runtime counts against the 2 s of CPU of the request that starts the worker.
 *
 * Each run is a fresh Deno process that imports every module `index.ts` imports (taken from
 * `deno info`, so the list follows the code) and reports the process's CPU time (user + system)
 * spent from just before the imports until they resolve, and the heap they left. The runtime's
 * own boot is outside the figure; a first, discarded run warms Deno's transpile cache, as the
 * Edge Runtime's eszip holds modules already transpiled. Measured twice: with V8's code cache
 * (compiled code Deno keeps between runs of the same modules, filled by the discarded run) and
 * without it (`--no-code-cache`: every function compiled anew, as a fresh isolate loading the
 * bundle does). The target is the second. Prints each run and the medians.
 *
 *   deno task startup [--runs=N] [entry.ts]
 */

import { denoInfo } from "../local/deno_info.ts";

/** The modules `entry` itself imports. */
async function entryImports(entry: string): Promise<string[]> {
  const info = await denoInfo(entry);
  const root = info.modules.find((m) => m.specifier === info.roots[0])!;
  return (root.dependencies ?? []).flatMap((d) => d.code ? [d.code.specifier] : []);
}

/** The program each fresh process runs: import, then print CPU microseconds and heap bytes. */
const probe = (specifiers: string[]) => `
import process from "node:process";
const before = process.cpuUsage();
await Promise.all(${JSON.stringify(specifiers)}.map((s) => import(s)));
const used = process.cpuUsage(before);
console.log(JSON.stringify({ cpuUs: used.user + used.system, heap: process.memoryUsage().heapUsed }));
`;

async function once(
  program: string,
  codeCache: boolean,
): Promise<{ cpuUs: number; heap: number }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--no-check", ...(codeCache ? [] : ["--no-code-cache"]), "-"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    cwd: new URL("../", import.meta.url).pathname,
  }).spawn();
  const writer = out.stdin.getWriter();
  await writer.write(new TextEncoder().encode(program));
  await writer.close();
  const result = await out.output();
  if (!result.success) throw new Error(new TextDecoder().decode(result.stderr));
  return JSON.parse(new TextDecoder().decode(result.stdout).trim().split("\n").at(-1)!);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export type Startup = {
  cpuMs: number[];
  heapMb: number[];
  medianCpuMs: number;
  medianHeapMb: number;
};

/**
 * Imports `entry`'s modules in `runs` fresh processes each with and without the code cache
 * (after one discarded warm-up run that fills the transpile and code caches), alternating
 * the two so that the machine's load falls on both alike.
 */
export async function measureStartup(
  entry: string,
  runs: number,
): Promise<{ cached: Startup; uncached: Startup }> {
  const program = probe(await entryImports(entry));
  await once(program, true); // warms the transpile cache and fills the code cache
  const samples = { cached: [] as Sample[], uncached: [] as Sample[] };
  for (let i = 0; i < runs; i++) {
    samples.cached.push(await once(program, true));
    samples.uncached.push(await once(program, false));
  }
  return { cached: summary(samples.cached), uncached: summary(samples.uncached) };
}

type Sample = { cpuUs: number; heap: number };

function summary(samples: Sample[]): Startup {
  const cpuMs = samples.map((s) => s.cpuUs / 1000);
  const heapMb = samples.map((s) => s.heap / 1e6);
  return { cpuMs, heapMb, medianCpuMs: median(cpuMs), medianHeapMb: median(heapMb) };
}

if (import.meta.main) {
  const args = Deno.args.filter((a) => !a.startsWith("--"));
  const runsArg = Deno.args.find((a) => a.startsWith("--runs="));
  const runs = runsArg ? Number(runsArg.slice("--runs=".length)) : 7;
  const entry = args[0] ??
    new URL("../supabase/functions/api/index.ts", import.meta.url).pathname;
  const startup = await measureStartup(entry, runs);
  for (const [name, s] of Object.entries(startup)) {
    console.log(
      `${name === "cached" ? "with" : "without"} the code cache: median ${
        s.medianCpuMs.toFixed(0)
      } ms CPU (${s.cpuMs.map((x) => x.toFixed(0)).join(", ")}), heap ${
        s.medianHeapMb.toFixed(1)
      } MB`,
    );
  }
}
