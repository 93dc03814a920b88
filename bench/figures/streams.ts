/** 6. 500 concurrent slow streams on one API process: all intact, and the memory they take. */
import type { Figure } from "../figure.ts";
import { residentBytes } from "../processes.ts";

const STREAMS = 500;

export const streams: Figure = {
  name: "streams",
  title: "6. Concurrent slow streams",
  async run(bench) {
    const api = await bench.api();
    const user = await bench.signUp();
    const before = residentBytes(api.pid);
    let peak = before;
    const sampler = setInterval(() => peak = Math.max(peak, residentBytes(api.pid)), 100);
    const started = performance.now();
    const outcomes = await Promise.all(Array.from({ length: STREAMS }, async () => {
      const response = await fetch(`${api.url}/api/sessions/${crypto.randomUUID()}?protocol=text`, {
        method: "POST",
        headers: { ...user.auth, "content-type": "application/json" },
        body: JSON.stringify({
          messages: [{ role: "user", content: "slowly" }],
          model: "slow-200-50",
        }),
      }).catch(() => undefined);
      const text = await response?.text().catch(() => "");
      return response?.status === 200 && text?.split(" ").filter(Boolean).length === 200;
    }));
    const seconds = (performance.now() - started) / 1000;
    clearInterval(sampler);
    const completed = outcomes.filter(Boolean).length;
    return {
      verdicts: [{
        figure: "6. 500 concurrent slow streams, failures",
        target: "0",
        measured: String(STREAMS - completed),
        met: completed === STREAMS,
      }],
      lines: [
        "500 POSTs at once, each reply 200 chunks 50 ms apart (10 s), one API process.",
        "Target: zero failures.",
        "",
        "| figure | value |",
        "| --- | --- |",
        `| streams completed intact | **${completed} / ${STREAMS}** (failures: ${
          STREAMS - completed
        }) |`,
        `| wall time | ${seconds.toFixed(1)} s (the replies alone take 10 s) |`,
        `| API resident memory before / peak | ${(before / 2 ** 20).toFixed(0)} MiB / ${
          (peak / 2 ** 20).toFixed(0)
        } MiB |`,
        `| memory per open stream | ${((peak - before) / STREAMS / 1024).toFixed(0)} KiB |`,
      ],
    };
  },
};
