/**
 * 4b. What resumability costs: a streaming reply appends its new text to its
 * handle row at most every REPLY_PERSIST_MS (default 250 ms), so any
 * connection can re-attach to it. Measured: the writes one reply makes (from
 * Postgres's own function statistics), and the relay of a 10,000-chunk reply
 * with those writes against an API whose writes are pushed out of reach.
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
    // an hour between writes: a reply writes its row once, when it starts
    const unwritten = await bench.startApi({ env: { REPLY_PERSIST_MS: "3600000" } });
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
          figure: "4b. relay of a 10,000-chunk reply, progress written ÷ not written",
          target: "< 1.10",
          measured: ratio.toFixed(2),
          met: ratio < 1.1,
        }],
        lines: [
          "A reply appends its new text to its row at most every REPLY_PERSIST_MS (250 ms), one",
          "short update that is also its poll for a stop or a deletion; the final save is one more.",
          "",
          `- a ${seconds.toFixed(1)} s reply (200 chunks, 50 ms apart): **${writes}** progress ` +
          `writes plus its save (${(writes / seconds).toFixed(1)} writes/s)`,
          "",
          "| 10,000-chunk reply | total ms (min / **median** / max) |",
          "| --- | --- |",
          `| progress not written | ${spread(times.unwritten)} |`,
          `| progress written every 250 ms | ${spread(times.persisted)} |`,
          `| **ratio** | **${ratio.toFixed(2)}** |`,
        ],
      };
    } finally {
      await unwritten.stop();
    }
  },
};
