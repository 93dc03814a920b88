/**
 * Load with nothing lost: USERS users × SESSIONS concurrent sessions × TURNS
 * turns each, over a real socket, against the stand-in model. Afterwards
 * every session must hold exactly its messages, in order, with updated_at
 * right; no answer may be a 5xx. Prints the figures, records them for the
 * report, and exits non-zero if anything was lost.
 *
 *   deno run -A local/with_postgres.ts deno run -A reliability/load.ts
 */
import { startTestApi } from "../tests/support/api.ts";
import { recordFigure } from "../tests/support/figures.ts";

const USERS = Number(Deno.env.get("LOAD_USERS") ?? 50);
const SESSIONS = Number(Deno.env.get("LOAD_SESSIONS") ?? 4);
const TURNS = Number(Deno.env.get("LOAD_TURNS") ?? 10);

const api = await startTestApi({ env: { DB_POOL_MAX: "10", OPENAI_TIMEOUT_MS: "60000" } });
api.model.script((request) => {
  const question = request.messages.at(-1)!.content;
  return { chunks: ["Reply ", "to ", question, "."] };
});
const server = api.listen();
const users = await Promise.all(Array.from({ length: USERS }, () => api.user()));

const latencies: number[] = [];
const firstBytes: number[] = [];
const statuses = new Map<number, number>();
const expected = new Map<string, { user: string; contents: string[] }>();

async function converse(userIndex: number, sessionIndex: number) {
  const user = users[userIndex]!;
  const session = crypto.randomUUID();
  const contents: string[] = [];
  expected.set(session, { user: user.id, contents });
  for (let turn = 0; turn < TURNS; turn++) {
    const text = `u${userIndex} s${sessionIndex} t${turn}`;
    const started = performance.now();
    const response = await fetch(`${server.url}/api/sessions/${session}`, {
      method: "POST",
      headers: { ...user.auth, "content-type": "application/json" },
      body: JSON.stringify({ messages: [{ role: "user", content: text, id: `t${turn}` }] }),
    });
    const reader = response.body!.getReader();
    let body = "";
    for (
      let r = await reader.read(), first = true;
      !r.done;
      r = await reader.read(), first = false
    ) {
      if (first) firstBytes.push(performance.now() - started);
      body += new TextDecoder().decode(r.value);
    }
    latencies.push(performance.now() - started);
    statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
    if (response.status === 200) contents.push(text, `Reply to ${text}.`);
    else console.error(`turn ${text}: ${response.status} ${body}`);
  }
}

const started = performance.now();
await Promise.all(
  users.flatMap((_, u) => Array.from({ length: SESSIONS }, (_, s) => converse(u, s))),
);
const seconds = (performance.now() - started) / 1000;
await api.idle();

// ---- what the database holds -------------------------------------------------
const sessionIds = [...expected.keys()];
const rows = await api.db.admin<
  {
    chat_session_id: string;
    user_id: string;
    role: string;
    content: string;
    finish_reason: string | null;
    stale: boolean;
  }[]
>`
  select m.chat_session_id, s.user_id, m.role, m.content, m.finish_reason,
         s.updated_at < max(m.created_at) over (partition by s.id) as stale
  from public.messages m join public.chat_sessions s on s.id = m.chat_session_id
  where s.id = any(${sessionIds}::uuid[])
  order by m.chat_session_id, m.seq`;
const held = new Map<string, typeof rows>();
for (const row of rows) {
  held.set(row.chat_session_id, [...(held.get(row.chat_session_id) ?? []), row]);
}

let lost = 0, extra = 0, outOfOrder = 0, wrongOwner = 0, staleUpdatedAt = 0;
for (const [session, want] of expected) {
  const got = held.get(session) ?? [];
  const gotContents = got.map((m) => m.content);
  lost += want.contents.filter((c) => !gotContents.includes(c)).length;
  extra += Math.max(0, got.length - want.contents.length);
  if (JSON.stringify(gotContents) !== JSON.stringify(want.contents)) outOfOrder++;
  if (got.some((m, i) => m.role !== (i % 2 ? "assistant" : "user"))) outOfOrder++;
  if (got.some((m) => m.user_id !== want.user)) wrongOwner++;
  if (got.some((m) => m.stale)) staleUpdatedAt++;
}

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
};
const serverErrors = [...statuses].filter(([s]) => s >= 500).reduce((n, [, c]) => n + c, 0);
const turns = USERS * SESSIONS * TURNS;
const figures: [string, number | string][] = [
  ["users × concurrent sessions × turns", `${USERS} × ${SESSIONS} × ${TURNS}`],
  ["turns (POSTs, each a streamed reply)", turns],
  ["wall time (s)", seconds.toFixed(1)],
  ["throughput (turns/s)", (turns / seconds).toFixed(1)],
  ["full reply latency p50 (ms)", percentile(latencies, 50).toFixed(1)],
  ["full reply latency p99 (ms)", percentile(latencies, 99).toFixed(1)],
  ["first byte p50 (ms)", percentile(firstBytes, 50).toFixed(1)],
  ["first byte p99 (ms)", percentile(firstBytes, 99).toFixed(1)],
  ["status codes", [...statuses].map(([s, n]) => `${s}×${n}`).join(", ")],
  ["5xx answers", serverErrors],
  ["messages expected / stored", `${turns * 2} / ${rows.length}`],
  ["messages lost", lost],
  ["messages stored twice or unexpected", extra],
  ["sessions out of order", outOfOrder],
  ["sessions with a wrong owner", wrongOwner],
  ["sessions whose updated_at is behind their newest message", staleUpdatedAt],
];
for (const [name, value] of figures) {
  console.log(`${name}: ${value}`);
  recordFigure("Load", name, value);
}
await server.close();
await api.model.close();
const failed = lost + extra + outOfOrder + wrongOwner + staleUpdatedAt + serverErrors;
Deno.exit(failed === 0 && rows.length === turns * 2 ? 0 : 1);
