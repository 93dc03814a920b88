/** 8. Long sessions: the prompt is budgeted, so a reply's first byte stops growing with the session. */
import type { Figure } from "../figure.ts";
import { median, percentile } from "../processes.ts";
import { post } from "../requests.ts";

const LENGTHS = [100, 2_000, 20_000];

export const longSessions: Figure = {
  name: "long-sessions",
  title: "8. Long sessions",
  async run(bench) {
    const api = await bench.api();
    const rows: string[] = [];
    for (const length of LENGTHS) {
      const [{ id: long }] = await bench.db.admin<[{ id: string }]>`
        insert into public.chat_sessions (user_id, title) values (${bench.owner}, 'long')
        returning id`;
      await bench.db.admin`
        insert into public.messages (chat_session_id, role, content)
        select ${long}, case when g % 2 = 1 then 'user' else 'assistant' end,
               'Turn ' || g || ' of a long chat, with a few words'
        from generate_series(1, ${length}) g`;
      const firstBytes: number[] = [];
      for (let i = 0; i < 60; i++) {
        firstBytes.push((await post(api.url, bench.auth, long, "And now?", "chunks-1")).firstByte);
      }
      rows.push(
        `| ${length.toLocaleString("en")} | ${median(firstBytes).toFixed(2)} | ${
          percentile(firstBytes, 99).toFixed(2)
        } |`,
      );
    }
    return {
      lines: [
        "First-byte time of a POST in sessions of growing length (60 sequential requests each), with the default",
        "history budget of 16,000 tokens: the database reads only the newest turns that fit (a range of the",
        "running token total), so past the budget the cost stays flat instead of growing with the session.",
        "",
        "| messages in the session | first byte p50 ms | p99 ms |",
        "| --- | --- | --- |",
        ...rows,
      ],
    };
  },
};
