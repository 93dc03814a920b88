/** 7. Cold start: a new API process's first 200 from /api/health against the hello baseline's. */
import type { Figure } from "../figure.ts";
import { median, spread } from "../processes.ts";

export const coldStart: Figure = {
  name: "cold-start",
  title: "7. Cold start",
  async run(bench) {
    const cold = { api: [] as number[], hello: [] as number[] };
    for (let r = 0; r < bench.repeats + 2; r++) {
      const api = await bench.startApi();
      cold.api.push(api.startedInMs);
      await api.stop();
      const hello = await bench.startBaseline("hello");
      cold.hello.push(hello.startedInMs);
      await hello.stop();
    }
    return {
      lines: [
        "Process start to the first 200 from `/api/health` (which queries the database) vs the **hello** server's first 200.",
        "",
        "| | ms (min / **median** / max) |",
        "| --- | --- |",
        `| hello | ${spread(cold.hello)} |`,
        `| API | ${spread(cold.api)} |`,
        `| **ratio** | **${(median(cold.api) / median(cold.hello)).toFixed(2)}** |`,
      ],
    };
  },
};
