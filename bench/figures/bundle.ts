/** 9. The deploy bundle as Supabase packs it, and the CPU a fresh worker spends importing the function. */
import { BUNDLE_LIMIT_BYTES, formatBundle, measureBundle } from "../bundle_size.ts";
import type { Figure } from "../figure.ts";
import { measureStartup } from "../startup_cpu.ts";

const entry = new URL("../../supabase/functions/api/index.ts", import.meta.url).pathname;

export const bundle: Figure = {
  name: "bundle",
  title: "9. Deploy bundle and start-up CPU",
  async run(bench) {
    bench.log("bundle size and start-up CPU");
    const packed = await measureBundle(entry);
    const startup = await measureStartup(entry, bench.repeats + 4);
    return {
      verdicts: [
        {
          figure: "9. deploy bundle, brotli q6 as uploaded",
          target: "≤ 5 MB",
          measured: `${(packed.brotliBytes / 1e6).toFixed(2)} MB`,
          met: packed.brotliBytes <= BUNDLE_LIMIT_BYTES,
        },
        {
          figure: "9. start-up: CPU to import the function's modules, no code cache",
          target: "≤ 100 ms",
          measured: `${startup.uncached.medianCpuMs.toFixed(0)} ms`,
          met: startup.uncached.medianCpuMs <= 100,
        },
      ],
      lines: [
        "The bundle as Supabase packs it (`deno task bundle-size`): the function's modules plus every file of each npm package in its import graph, as one brotli stream at quality 6 (what the CLI uploads; server-side bundling takes at most 5 MB). Start-up (`deno task startup`): CPU time of a fresh process importing every module `index.ts` imports, which the Edge Runtime counts against the first request's 2 s; without V8's code cache (`--no-code-cache`, every function compiled anew, as a fresh isolate loading the bundle does: the target) and with it (Deno's cache between runs, filled by a discarded first run), runs alternating.",
        "",
        "```",
        formatBundle(packed, BUNDLE_LIMIT_BYTES),
        "```",
        "",
        `Start-up without the code cache: median **${
          startup.uncached.medianCpuMs.toFixed(0)
        } ms** CPU (${startup.uncached.cpuMs.map((x) => x.toFixed(0)).join(", ")}), heap ${
          startup.uncached.medianHeapMb.toFixed(1)
        } MB; with it: median ${startup.cached.medianCpuMs.toFixed(0)} ms (${
          startup.cached.cpuMs.map((x) => x.toFixed(0)).join(", ")
        }).`,
        "",
        "Before this work (gpt-tokenizer and swagger-ui-dist in the function): 12.79 MB packed (gpt-tokenizer 6.96, swagger-ui-dist 2.89, openai 1.96, zod 0.64) and 384 ms of start-up CPU with a 61 MB heap.",
      ],
    };
  },
};
