/** 3. Time to first byte a POST adds to the model's own, with the API's Server-Timing breakdown. */
import type { Figure } from "../figure.ts";
import { median, percentile, spread } from "../processes.ts";
import { direct, post } from "../requests.ts";

export const firstByte: Figure = {
  name: "first-byte",
  title: "3. Time to first byte added by a POST",
  async run(bench) {
    const api = await bench.api();
    const runs: {
      api: number[];
      direct: number[];
      db: number[];
      model: number[];
      rest: number[];
    }[] = [];
    for (let r = 0; r < bench.repeats; r++) {
      const run = {
        api: [] as number[],
        direct: [] as number[],
        db: [] as number[],
        model: [] as number[],
        rest: [] as number[],
      };
      for (let i = 0; i < 200; i++) {
        run.direct.push((await direct(bench.modelUrl, "chunks-20")).firstByte);
        const through = await post(
          api.url,
          bench.auth,
          crypto.randomUUID(),
          "first byte",
          "chunks-20",
        );
        run.api.push(through.firstByte);
        const db = through.timing.db ?? NaN;
        const model = through.timing.model ?? NaN;
        run.db.push(db);
        run.model.push(model);
        // the request's own: HTTP both ways, token, validation, planning, the response and relay
        run.rest.push(through.firstByte - db - model);
      }
      runs.push(run);
    }
    const added50 = runs.map((r) => median(r.api) - median(r.direct));
    const added99 = runs.map((r) => percentile(r.api, 99) - percentile(r.direct, 99));
    return {
      verdicts: [{
        figure: "3. first byte added by a POST, median",
        target: "< 2 ms",
        measured: `${median(added50).toFixed(2)} ms`,
        met: median(added50) < 2,
      }],
      lines: [
        "A first message to a new session (session created, message stored, reply created, all committed in one round",
        "trip; the quotas are off here, figure 2 counts them; the model's request leaves when the send's rows arrive,",
        "the reply's first byte once the commit is durable) against the",
        "stand-in asked **direct**ly for the same reply; 200 sequential requests per run; min / **median** / max over runs.",
        "Target: median added under 2 ms on loopback.",
        "",
        "| | p50 ms | p99 ms |",
        "| --- | --- | --- |",
        `| direct (the stand-in model) | ${spread(runs.map((r) => median(r.direct)), 2)} | ${
          spread(runs.map((r) => percentile(r.direct, 99)), 2)
        } |`,
        `| POST /api/sessions/{id} | ${spread(runs.map((r) => median(r.api)), 2)} | ${
          spread(runs.map((r) => percentile(r.api, 99)), 2)
        } |`,
        `| **added by the API** | ${spread(added50, 2)} | ${spread(added99, 2)} |`,
        "",
        "Where the API's time goes, per request from its `Server-Timing` header (p50 over all requests of all runs;",
        "the rest is the request's first byte less both):",
        "",
        "| part | p50 ms |",
        "| --- | --- |",
        `| db: one round trip, until the send is durable (begin, send_message, commit; the model's request on its way meanwhile) | ${
          median(runs.flatMap((r) => r.db)).toFixed(2)
        } |`,
        `| model: from then until the model's first words (about 0 when they came before the commit was durable) | ${
          median(runs.flatMap((r) => r.model)).toFixed(2)
        } |`,
        `| rest: HTTP both ways, token, validation, planning, the response and its first write | ${
          median(runs.flatMap((r) => r.rest)).toFixed(2)
        } |`,
      ],
    };
  },
};
