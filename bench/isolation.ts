/**
 * The isolation figure: a caller's p50 latency on the list, history and search
 * routes in a database holding only their data, and in one that also holds a
 * million messages of 1,000 other users. Each database has an API process of
 * its own and their requests alternate one by one, so a swing in the shared
 * machine's load hits both sides alike instead of whichever was measured second.
 */
import { signAccessToken, type SigningKey } from "../local/signing_keys.ts";
import { createTestDatabase } from "../tests/support/database.ts";
import { median, type Running } from "./processes.ts";

const ROUTES = ["list", "history", "search"] as const;
export type IsolationRoute = typeof ROUTES[number];
export type P50s = Record<IsolationRoute, number[]>;

export async function measureIsolation(opts: {
  key: SigningKey;
  repeats: number;
  /** starts an API process on that database (the caller stops it) */
  startApi: (databaseUrl: string) => Promise<Running>;
}): Promise<{ others: number; none: P50s; crowded: P50s }> {
  const caller = crypto.randomUUID();
  const sessions = Array.from({ length: 20 }, () => crypto.randomUUID());
  const token = await signAccessToken(opts.key, { id: caller }, { expiresInSeconds: 24 * 3600 });
  const sides = { none: await createTestDatabase(), crowded: await createTestDatabase() };
  try {
    for (const { admin } of Object.values(sides)) {
      await admin`insert into auth.users (id, email) values (${caller}, 'isolation@example.com')`;
      await admin`
        insert into public.chat_sessions (id, user_id, title)
        select id, ${caller}, 'Session ' || n
        from unnest(${sessions}::uuid[]) with ordinality as t(id, n)`;
      await admin`
        insert into public.messages (chat_session_id, role, content)
        select ${sessions[0]!}, case when g % 2 = 1 then 'user' else 'assistant' end,
               'Message number ' || g || ' ' || repeat('lorem ipsum ', 20)
        from generate_series(1, 50) g`;
    }
    const crowded = sides.crowded.admin;
    await crowded`
      insert into auth.users (email)
      select 'bulk' || g || '@example.com' from generate_series(1, 1000) g`;
    await crowded`
      insert into public.chat_sessions (user_id, title)
      select u.id, 'Bulk ' || g
      from auth.users u cross join generate_series(1, 10) g where u.email like 'bulk%'`;
    // triggers off for the load (session_replication_role), so the running token totals the
    // per-message trigger keeps are written directly
    await crowded.begin(async (tx) => {
      await tx`set local session_replication_role = replica`;
      await tx`
        insert into public.messages (chat_session_id, role, content, tokens, tokens_before)
        select s.id, case when g % 2 = 1 then 'user' else 'assistant' end, 'Bulk message ' || g,
               4, (g - 1) * 8
        from public.chat_sessions s cross join generate_series(1, 100) g
        where s.title like 'Bulk %'`;
    });
    for (const { admin } of Object.values(sides)) {
      await admin`vacuum analyze public.chat_sessions, public.messages`;
    }
    // the load's dirty pages are written now, not by a checkpoint in the middle of the measurement
    await crowded`checkpoint`;
    const [{ others }] = await crowded<[{ others: number }]>`
      select count(*)::int as others from public.messages m
      join public.chat_sessions s on s.id = m.chat_session_id where s.user_id <> ${caller}`;

    const apis = {
      none: await opts.startApi(sides.none.url),
      crowded: await opts.startApi(sides.crowded.url),
    };
    const paths: Record<IsolationRoute, string> = {
      list: "/api/sessions",
      history: `/api/sessions/${sessions[0]}`,
      // a word in the caller's messages and in every one of the others' too
      search: "/api/sessions?q=message",
    };
    const none: P50s = { list: [], history: [], search: [] };
    const full: P50s = { list: [], history: [], search: [] };
    try {
      for (let r = 0; r < opts.repeats; r++) {
        for (const route of ROUTES) {
          const [quiet, busy] = await p50sSideBySide(
            [`${apis.none.url}${paths[route]}`, `${apis.crowded.url}${paths[route]}`],
            token,
          );
          none[route].push(quiet);
          full[route].push(busy);
        }
      }
    } finally {
      await apis.none.stop();
      await apis.crowded.stop();
    }
    return { others, none, crowded: full };
  } finally {
    await Promise.all(Object.values(sides).map(({ admin }) => admin.end()));
  }
}

/**
 * p50s of 400 sequential requests to each of two URLs, sent in turns (one to the first, one to
 * the second, ...), so that both sides see the same moments of the machine's load. Timed here:
 * autocannon reports whole milliseconds, too coarse for a ratio.
 */
async function p50sSideBySide(
  urls: [string, string],
  token: string,
): Promise<[number, number]> {
  const times: [number[], number[]] = [[], []];
  for (let i = 0; i < 400; i++) {
    for (const [side, url] of urls.entries()) {
      const started = performance.now();
      const response = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
      await response.arrayBuffer();
      if (response.status !== 200) throw new Error(`${url}: ${response.status}`);
      times[side]!.push(performance.now() - started);
    }
  }
  return [median(times[0]), median(times[1])];
}
