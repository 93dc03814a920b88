/** 4. Relay cost: a 10,000-chunk reply read through the API against the model read directly. */
import type { Figure } from "../figure.ts";
import { median, spread } from "../processes.ts";
import { direct, post } from "../requests.ts";

export const relay: Figure = {
  name: "relay",
  title: "4. Relay cost: a 10,000-chunk reply",
  async run(bench) {
    const api = await bench.api();
    const times = { api: [] as number[], direct: [] as number[] };
    for (let r = 0; r < bench.repeats + 2; r++) {
      times.direct.push((await direct(bench.modelUrl, "chunks-10000")).total);
      const through = await post(api.url, bench.auth, crypto.randomUUID(), "long", "chunks-10000");
      if (through.status !== 200) throw new Error(`relay run answered ${through.status}`);
      times.api.push(through.total);
    }
    const ratio = median(times.api) / median(times.direct);
    return {
      verdicts: [{
        figure: "4. relay of a 10,000-chunk reply, API ÷ direct",
        target: "< 1.25",
        measured: ratio.toFixed(2),
        met: ratio < 1.25,
      }],
      lines: [
        "Whole reply read through the API (text protocol, stored at the end) vs read **direct**ly from the stand-in.",
        "Target: ratio under 1.25.",
        "",
        "| | total ms (min / **median** / max) |",
        "| --- | --- |",
        `| direct | ${spread(times.direct)} |`,
        `| through the API | ${spread(times.api)} |`,
        `| **ratio** | **${ratio.toFixed(2)}** |`,
      ],
    };
  },
};
