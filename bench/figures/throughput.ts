/** 2. Throughput and latency of the read routes against the baselines, with autocannon. */
import { latencyChart } from "../chart.ts";
import type { Figure } from "../figure.ts";
import { autocannon, type LoadResult, median, spread } from "../processes.ts";

const CONCURRENCIES = [1, 16, 64];

export const throughput: Figure = {
  name: "throughput",
  title: "2. Throughput and latency of the read routes",
  async run(bench) {
    const [hello, floor, floorList, api] = [
      await bench.baseline("hello"),
      await bench.baseline("floor"),
      await bench.baseline("floor-list"),
      await bench.api(),
    ];
    const targets: [string, string, Record<string, string>][] = [
      ["hello", `${hello.url}/`, {}],
      ["floor", `${floor.url}/`, {}],
      ["floor-list (the list query, no auth, no RLS)", `${floorList.url}/`, {}],
      ["GET /api/sessions (20 sessions)", `${api.url}/api/sessions`, bench.auth],
      [
        "GET /api/sessions/{id} (50 messages)",
        `${api.url}/api/sessions/${bench.historySession}`,
        bench.auth,
      ],
    ];
    const load = new Map<string, LoadResult[]>();
    for (const c of CONCURRENCIES) {
      for (let r = 0; r < bench.repeats; r++) {
        for (const [name, url, headers] of targets) {
          const result = await autocannon(url, {
            connections: c,
            seconds: bench.seconds,
            headers,
          });
          if (result.errors || result.non2xx) {
            bench.log(`${name} c=${c}: ${result.errors} errors, ${result.non2xx} non-2xx`);
          }
          load.set(`${name}@${c}`, [...(load.get(`${name}@${c}`) ?? []), result]);
        }
      }
    }
    const rows: string[] = [];
    for (const c of CONCURRENCIES) {
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
    const verdicts = targets.filter(([n]) => n.startsWith("GET")).map(([name]) => {
      const ratio = median(load.get(`${name}@16`)!.map((r) => r.rps)) /
        median(load.get("floor@16")!.map((r) => r.rps));
      return {
        figure: `2. ${name}, req/s ÷ floor at concurrency 16`,
        target: "≥ 0.40",
        measured: ratio.toFixed(2),
        met: ratio >= 0.4,
      };
    });
    return {
      verdicts,
      lines: [
        `autocannon 8 (npm, its own Node process), ${bench.seconds} s per run, ${bench.repeats} runs each, interleaved; min / **median** / max.`,
        "Target: a read route at concurrency 16 reaches at least 40% of **floor** throughput (ratio ≥ 0.40).",
        "**floor-list** is an extra baseline: the list route's own query and JSON for the same user, without",
        "token or RLS transaction, to separate what the data costs from what auth and RLS cost.",
        "",
        "| target | concurrency | req/s | p50 ms | p99 ms | req/s ÷ floor |",
        "| --- | --- | --- | --- | --- | --- |",
        ...rows,
        "",
        "![p50 latency against concurrency](benchmarks-latency.svg)",
      ],
      files: {
        "benchmarks-latency.svg": latencyChart(
          CONCURRENCIES,
          targets.map(([name]) => ({
            name,
            p50: CONCURRENCIES.map((c) => median(load.get(`${name}@${c}`)!.map((r) => r.p50))),
          })),
        ),
      },
    };
  },
};
