/**
 * 5. Isolation from other users' data: the caller's latency with no other users' rows, then
 * with a million of them in the tables. To measure another request the same way, add it to
 * `probes`; its row and its verdict follow.
 */
import type { Bench, Figure } from "../figure.ts";
import { median, spread } from "../processes.ts";

interface Probe {
  /** how the report names it */
  route: string;
  url: string;
  headers: Record<string, string>;
}

/** The requests timed before and after the other users' rows arrive, as the caller. */
function probes(bench: Bench, apiUrl: string): Probe[] {
  return [
    { route: "GET /api/sessions", url: `${apiUrl}/api/sessions`, headers: bench.auth },
    {
      route: "GET /api/sessions/{id}",
      url: `${apiUrl}/api/sessions/${bench.historySession}`,
      headers: bench.auth,
    },
  ];
}

/** 1,000 other users × 10 sessions × 100 messages; returns how many messages the table then holds. */
async function loadOtherUsers({ db }: Bench): Promise<number> {
  await db.admin`
    insert into auth.users (email) select 'bulk' || g || '@example.com' from generate_series(1, 1000) g`;
  await db.admin`
    insert into public.chat_sessions (user_id, title)
    select u.id, 'Bulk ' || g from auth.users u cross join generate_series(1, 10) g
    where u.email like 'bulk%'`;
  // the per-message trigger only moves updated_at; a bulk load sets it once afterwards
  await db.admin`alter table public.messages disable trigger on_message_added`;
  await db.admin`
    insert into public.messages (chat_session_id, role, content)
    select s.id, case when g % 2 = 1 then 'user' else 'assistant' end, 'Bulk message ' || g
    from public.chat_sessions s cross join generate_series(1, 100) g where s.title like 'Bulk %'`;
  await db.admin`alter table public.messages enable trigger on_message_added`;
  await db.admin`vacuum analyze public.chat_sessions, public.messages`;
  const [{ n }] = await db.admin<[{ n: number }]>`select count(*)::int as n from public.messages`;
  return n;
}

/**
 * The p50 of 400 sequential requests, once per run. Timed here rather than with autocannon,
 * which reports whole milliseconds: too coarse for a ratio.
 */
async function p50s(probe: Probe, repeats: number): Promise<number[]> {
  const runs: number[] = [];
  for (let r = 0; r < repeats; r++) {
    const times: number[] = [];
    for (let i = 0; i < 400; i++) {
      const started = performance.now();
      const response = await fetch(probe.url, { headers: probe.headers });
      await response.arrayBuffer();
      times.push(performance.now() - started);
    }
    runs.push(median(times));
  }
  return runs;
}

export const isolation: Figure = {
  name: "isolation",
  title: "5. Isolation from other users' data",
  async run(bench) {
    const api = await bench.api();
    const timed = probes(bench, api.url);
    // one untimed run first: run alone, this figure meets a fresh API process, and its JIT
    // warming up would count against the rows-free side of the ratio
    for (const probe of timed) await p50s(probe, 1);
    bench.log("isolation: without other users' data");
    const none: number[][] = [];
    for (const probe of timed) none.push(await p50s(probe, bench.repeats));
    bench.log("isolation: loading 1,000,000 messages of 1,000 other users");
    const messages = await loadOtherUsers(bench);
    const full: number[][] = [];
    for (const probe of timed) full.push(await p50s(probe, bench.repeats));
    const measured = timed.map((probe, i) => {
      const [withNone, withFull] = [none[i]!, full[i]!];
      return { probe, none: withNone, full: withFull, ratio: median(withFull) / median(withNone) };
    });
    return {
      verdicts: measured.map((m) => ({
        figure: `5. ${m.probe.route}, p50 with 1M other rows ÷ with none`,
        target: "< 1.2",
        measured: m.ratio.toFixed(2),
        met: m.ratio < 1.2,
      })),
      lines: [
        `The caller's p50 latency (400 sequential requests per run) with no other users' rows, then with ${
          messages.toLocaleString("en")
        } messages`,
        "(1,000 other users × 10 sessions × 100 messages) in the tables. Target: ratio under 1.2.",
        "",
        "| route | p50 ms, none | p50 ms, 1M rows | ratio |",
        "| --- | --- | --- | --- |",
        ...measured.map((m) =>
          `| ${m.probe.route} | ${spread(m.none, 2)} | ${spread(m.full, 2)} | **${
            m.ratio.toFixed(2)
          }** |`
        ),
      ],
    };
  },
};
