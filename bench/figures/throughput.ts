/** 2. Throughput and latency of the read routes against the baselines, with autocannon. */
import { latencyChart } from "../chart.ts";
import type { Figure } from "../figure.ts";
import { autocannon, type LoadResult, median, spread } from "../processes.ts";

const CONCURRENCIES = [1, 16, 64];
const FLOOR_LIST = "floor-list (the list query, no auth, no RLS)";
const FLOOR_HISTORY = "floor-history (the history query, no auth, no RLS)";
const LIST = "GET /api/sessions (20 sessions)";
const HISTORY = "GET /api/sessions/{id} (50 messages)";
/** Each read route's own floor: its query and JSON alone, and the share of it the route must reach. */
const OWN_FLOOR: [route: string, floor: string, target: number][] = [
  [LIST, FLOOR_LIST, 0.75],
  [HISTORY, FLOOR_HISTORY, 0.5],
];

export const throughput: Figure = {
  name: "throughput",
  title: "2. Throughput and latency of the read routes",
  async run(bench) {
    const [hello, floor, floorList, floorHistory, api] = [
      await bench.baseline("hello"),
      await bench.baseline("floor"),
      await bench.baseline("floor-list"),
      await bench.baseline("floor-history"),
      await bench.api(),
    ];
    // BENCH_BEFORE=<another checkout>: its API measured too, interleaved with this one (paired)
    const beforeDir = Deno.env.get("BENCH_BEFORE");
    const before = beforeDir ? await bench.startApi({ cwd: beforeDir }) : undefined;
    const targets: [string, string, Record<string, string>][] = [
      ["hello", `${hello.url}/`, {}],
      ["floor", `${floor.url}/`, {}],
      [FLOOR_LIST, `${floorList.url}/`, {}],
      [FLOOR_HISTORY, `${floorHistory.url}/`, {}],
      [LIST, `${api.url}/api/sessions`, bench.auth],
      [HISTORY, `${api.url}/api/sessions/${bench.historySession}`, bench.auth],
      ...(before
        ? [
          [`${LIST}, before`, `${before.url}/api/sessions`, bench.auth],
          [`${HISTORY}, before`, `${before.url}/api/sessions/${bench.historySession}`, bench.auth],
        ] satisfies typeof targets
        : []),
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
    /** the read route's own floor, for a route's name (with or without ", before") */
    const ownFloor = (name: string) => OWN_FLOOR.find(([route]) => name.startsWith(route))?.[1];
    const rows: string[] = [];
    for (const c of CONCURRENCIES) {
      const rpsAt = (name: string) => median(load.get(`${name}@${c}`)!.map((r) => r.rps));
      for (const [name] of targets) {
        const results = load.get(`${name}@${c}`)!;
        const rps = results.map((r) => r.rps);
        const own = ownFloor(name);
        rows.push(
          `| ${name} | ${c} | ${spread(rps, 0)} | ${spread(results.map((r) => r.p50))} | ${
            spread(results.map((r) => r.p99))
          } | ${(median(rps) / rpsAt("floor")).toFixed(2)} | ${
            own ? (median(rps) / rpsAt(own)).toFixed(2) : ""
          } |`,
        );
      }
    }
    const rps16 = (name: string) => median(load.get(`${name}@16`)!.map((r) => r.rps));
    const ownFloorVerdicts = OWN_FLOOR.map(([route, floorName, target]) => {
      const ratio = rps16(route) / rps16(floorName);
      return {
        figure: `2. ${route}, req/s ÷ ${floorName.split(" ")[0]} at concurrency 16`,
        target: `≥ ${target.toFixed(2)}`,
        measured: ratio.toFixed(2),
        met: ratio >= target,
      };
    });
    const floorVerdicts = [LIST, HISTORY].map((name) => {
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
      verdicts: [...ownFloorVerdicts, ...floorVerdicts],
      lines: [
        `autocannon 8 (npm, its own Node process), ${bench.seconds} s per run, ${bench.repeats} runs each, interleaved; min / **median** / max.`,
        "Target: a read route at concurrency 16 reaches at least 40% of **floor** throughput (ratio ≥ 0.40).",
        "**floor-list** and **floor-history** are each read route's own floor: the route's query and JSON for",
        "the same user (the history: the very statement the route sends, `branchJsonStart`), without token",
        "or RLS transaction, from a bare server with the same driver and pool, to separate what the data",
        "costs from what auth, RLS and the app cost. Targets: the list ≥ 0.75× floor-list and the history",
        "≥ 0.50× floor-history at concurrency 16.",
        "",
        ...(before
          ? [
            "",
            `Measured beside this run: the API of another checkout (\`BENCH_BEFORE=${beforeDir}\`), its`,
            "rows marked *before*, interleaved with the others run by run.",
          ]
          : []),
        "",
        "| target | concurrency | req/s | p50 ms | p99 ms | req/s ÷ floor | req/s ÷ its own floor |",
        "| --- | --- | --- | --- | --- | --- | --- |",
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
