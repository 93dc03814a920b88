/**
 * 5. Isolation from other users' data: the caller's latency on the list, history and search
 * routes in a database holding only their data, and in one that also holds a million messages of
 * other users (`bench/isolation.ts` measures both sides, their requests alternating). To measure
 * another route the same way, add it there; its row and its verdict follow.
 */
import type { Figure } from "../figure.ts";
import { type IsolationRoute, measureIsolation } from "../isolation.ts";
import { median, spread } from "../processes.ts";

const ROUTES: Record<IsolationRoute, string> = {
  list: "GET /api/sessions",
  history: "GET /api/sessions/{id}",
  search: "GET /api/sessions?q=message",
};

export const isolation: Figure = {
  name: "isolation",
  title: "5. Isolation from other users' data",
  async run(bench) {
    bench.log("isolation: two databases, one with 1,000,000 messages of 1,000 other users");
    const { others, none, crowded } = await measureIsolation({
      key: bench.key,
      repeats: bench.repeats,
      startApi: (databaseUrl) => bench.startApi({ databaseUrl }),
    });
    const measured = (Object.keys(ROUTES) as IsolationRoute[]).map((route) => ({
      route: ROUTES[route],
      none: none[route],
      full: crowded[route],
      ratio: median(crowded[route]) / median(none[route]),
    }));
    return {
      verdicts: measured.map((m) => ({
        figure: `5. ${m.route}, p50 with 1M other rows ÷ with none`,
        target: "< 1.2",
        measured: m.ratio.toFixed(2),
        met: m.ratio < 1.2,
      })),
      lines: [
        `The caller's p50 latency (400 sequential requests per run; 20 sessions, one of 50 messages) in a database holding only their data, and in one that also holds ${
          others.toLocaleString("en")
        } messages`,
        "(1,000 other users × 10 sessions × 100 messages), each served by its own API process, their requests alternating one by one. Target: ratio under 1.2.",
        "",
        "| route | p50 ms, none | p50 ms, 1M rows | ratio |",
        "| --- | --- | --- | --- |",
        ...measured.map((m) =>
          `| ${m.route} | ${spread(m.none, 2)} | ${spread(m.full, 2)} | **${m.ratio.toFixed(2)}** |`
        ),
      ],
    };
  },
};
