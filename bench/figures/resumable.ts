/**
 * 4b. What resumability costs: a streaming reply polls its row every
 * REPLY_POLL_MS (default 1 s) and appends its new text, at most every
 * REPLY_PERSIST_MS (default 250 ms), only while someone can re-attach to it
 * (figure 4c measures the bytes). Measured: the progress statements one reply
 * nobody follows makes (from Postgres's own function statistics), and the
 * relay of a 10,000-chunk reply against an API whose statements are as rare as
 * the settings allow.
 */
import type { Figure } from "../figure.ts";
import { median, spread } from "../processes.ts";
import { post } from "../requests.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export const resumable: Figure = {
  name: "resumable",
  title: "4b. Resumability: writes per reply, relay overhead",
  async run(bench) {
    const api = await bench.api();
    // a second between writes, the longest allowed (an hour was, before the lease needed them)
    const unwritten = await bench.startApi({ env: { REPLY_PERSIST_MS: "1000" } });
    try {
      const times = { persisted: [] as number[], unwritten: [] as number[] };
      for (let r = 0; r < bench.repeats + 2; r++) {
        for (const [kind, target] of [["persisted", api], ["unwritten", unwritten]] as const) {
          const through = await post(
            target.url,
            bench.auth,
            crypto.randomUUID(),
            "long",
            "chunks-10000",
          );
          if (through.status !== 200) throw new Error(`resumable run answered ${through.status}`);
          times[kind].push(through.total);
        }
      }
      const ratio = median(times.persisted) / median(times.unwritten);

      // a 10-second reply (200 chunks 50 ms apart), its writes counted by Postgres
      await bench.db.admin`alter system set track_functions = 'pl'`;
      await bench.db.admin`select pg_reload_conf()`;
      await sleep(200);
      const calls = async () => {
        // statistics reach the shared view within a second of the transaction
        await sleep(1500);
        const [row] = await bench.db.admin<{ calls: number }[]>`
          select coalesce(sum(calls), 0)::int as calls from pg_stat_user_functions
          where schemaname = 'chat_private' and funcname = 'write_partial'`;
        return row!.calls;
      };
      const before = await calls();
      const slow = await post(api.url, bench.auth, crypto.randomUUID(), "slow", "slow-200-50");
      if (slow.status !== 200) throw new Error(`resumable run answered ${slow.status}`);
      const writes = (await calls()) - before;
      await bench.db.admin`alter system reset track_functions`;
      await bench.db.admin`select pg_reload_conf()`;
      const seconds = slow.total / 1000;

      return {
        verdicts: [{
          figure: "4b. relay of a 10,000-chunk reply, REPLY_PERSIST_MS 250 ÷ 1000",
          target: "< 1.10",
          measured: ratio.toFixed(2),
          met: ratio < 1.1,
        }],
        lines: [
          "A reply nobody follows polls its row every REPLY_POLL_MS (1 s), a read that renews its",
          "lease when half of it is gone; it writes its text only while someone can re-attach",
          "(every REPLY_PERSIST_MS, 250 ms, at most: figure 4c). The final save is one more.",
          "",
          `- a ${seconds.toFixed(1)} s reply (200 chunks, 50 ms apart): **${writes}** progress ` +
          `statements plus its save (${(writes / seconds).toFixed(1)} statements/s)`,
          "",
          "| 10,000-chunk reply | total ms (min / **median** / max) |",
          "| --- | --- |",
          `| REPLY_PERSIST_MS 1000 | ${spread(times.unwritten)} |`,
          `| REPLY_PERSIST_MS 250 (the default) | ${spread(times.persisted)} |`,
          `| **ratio** | **${ratio.toFixed(2)}** |`,
        ],
      };
    } finally {
      await unwritten.stop();
    }
  },
};
