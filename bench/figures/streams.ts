/** 6. 500 concurrent slow streams on one API process: all intact, and the memory they take. */
import { freePort } from "../../local/database.ts";
import type { Figure } from "../figure.ts";
import { residentBytes } from "../processes.ts";

const STREAMS = 500;
/** the memory of one Edge Runtime isolate */
const ISOLATE_BYTES = 256 * 2 ** 20;
const TARGET_KIB = 128;

interface Live {
  heapUsed: number;
  external: number;
}

export const streams: Figure = {
  name: "streams",
  title: "6. Concurrent slow streams",
  async run(bench) {
    // an API process of its own, with a listener that collects garbage and reports what stays
    const probePort = freePort();
    const api = await bench.startApi({
      args: ["--allow-net", "--allow-env", "--v8-flags=--expose-gc", "bench/heap_probe.ts"],
      env: { HEAP_PROBE_PORT: String(probePort) },
    });
    const live = async (): Promise<Live> =>
      await (await fetch(`http://127.0.0.1:${probePort}/`)).json();
    const user = await bench.signUp();
    const stream = async (model: string, opened: () => void) => {
      const response = await fetch(`${api.url}/api/sessions/${crypto.randomUUID()}?protocol=text`, {
        method: "POST",
        headers: { ...user.auth, "content-type": "application/json" },
        body: JSON.stringify({ messages: [{ role: "user", content: "slowly" }], model }),
      }).catch(() => undefined);
      opened();
      const text = await response?.text().catch(() => "");
      return { ok: response?.status === 200, words: text?.split(" ").filter(Boolean).length };
    };
    // the code every reply runs is compiled before the baseline is taken, not counted per stream
    await Promise.all(Array.from({ length: 5 }, () => stream("slow-2-50", () => {})));

    const before = residentBytes(api.pid);
    const liveBefore = await live();
    let peak = before;
    const sampler = setInterval(() => peak = Math.max(peak, residentBytes(api.pid)), 100);
    const started = performance.now();
    let open = 0;
    let answered = 0;
    const allAnswered = Promise.withResolvers<void>();
    const outcomes = await Promise.all([
      ...Array.from({ length: STREAMS }, async () => {
        const { ok, words } = await stream("slow-200-50", () => {
          open++;
          if (++answered === STREAMS) allAnswered.resolve();
        });
        open--;
        return ok && words === 200;
      }),
      // once every stream has its answer: what the open ones keep alive
      allAnswered.promise.then(async () => {
        const openThen = open;
        const liveThen = await live();
        return { openThen, liveThen };
      }),
    ]);
    const seconds = (performance.now() - started) / 1000;
    clearInterval(sampler);
    const { openThen, liveThen } = outcomes.pop() as { openThen: number; liveThen: Live };
    const completed = outcomes.filter(Boolean).length;
    const liveBytes = (l: Live) => l.heapUsed + l.external;
    const perStream = (liveBytes(liveThen) - liveBytes(liveBefore)) / openThen;
    const perStreamKiB = perStream / 1024;
    const replies = Math.floor((ISOLATE_BYTES - liveBytes(liveBefore)) / perStream);
    const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(0);
    return {
      verdicts: [
        {
          figure: "6. 500 concurrent slow streams, failures",
          target: "0",
          measured: String(STREAMS - completed),
          met: completed === STREAMS,
        },
        {
          figure: "6. memory kept alive per open stream",
          target: `≤ ${TARGET_KIB} KiB`,
          measured: `${perStreamKiB.toFixed(0)} KiB`,
          met: perStreamKiB <= TARGET_KIB,
        },
      ],
      lines: [
        "500 POSTs at once, each reply 200 chunks 50 ms apart (10 s), one API process of its own.",
        `Targets: zero failures; at most ${TARGET_KIB} KiB kept alive per open stream.`,
        "",
        "Memory kept alive is the heap and external (ArrayBuffer) memory right after a full",
        "garbage collection (`bench/heap_probe.ts`), once every stream has its answer, against the",
        "same before the streams (after a few replies, so the code they run is already compiled),",
        "divided by the streams open at that moment: what an isolate's memory limit weighs (V8's",
        "heap and ArrayBuffers), garbage being collected before the limit is reached. The sockets'",
        "buffers on Deno's native side are not in it. The process's resident memory is shown too;",
        "it counts those, and also garbage not yet collected, which V8 lets grow in a process whose",
        "heap limit is Deno's default rather than 256 MB, so it overstates what a stream needs.",
        "",
        "| figure | value |",
        "| --- | --- |",
        `| streams completed intact | **${completed} / ${STREAMS}** (failures: ${
          STREAMS - completed
        }) |`,
        `| wall time | ${seconds.toFixed(1)} s (the replies alone take 10 s) |`,
        `| kept alive before / with ${openThen} streams open | ${
          mib(liveBytes(liveBefore))
        } MiB / ${mib(liveBytes(liveThen))} MiB |`,
        `| **kept alive per open stream** | **${perStreamKiB.toFixed(0)} KiB** |`,
        `| live replies one 256 MB isolate holds | about **${replies}** |`,
        `| API resident memory before / peak | ${mib(before)} MiB / ${mib(peak)} MiB |`,
        `| resident memory per stream (peak − before) ÷ ${STREAMS} | ${
          ((peak - before) / STREAMS / 1024).toFixed(0)
        } KiB |`,
      ],
    };
  },
};
