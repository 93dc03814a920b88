/**
 * `deno task bench [figure...]`: what the API costs on top of Postgres and the model, each
 * figure measured in the same run as its baseline and reported as a ratio beside the absolute
 * numbers. A benchmark, not a test: it never fails on speed.
 *
 *   deno task bench                      every figure; writes docs/benchmarks.md and its chart
 *   deno task bench isolation relay      only those figures; prints their markdown, writes nothing
 *
 * The figures are listed in bench/figures.ts, one module each in bench/figures/.
 */
import { figures } from "./figures.ts";
import {
  benchmarksPage,
  figuresMarkdown,
  formatMarkdown,
  type Measured,
  writeDocs,
} from "./report.ts";
import { startBench } from "./stack.ts";

const log = (line: string) => console.error(`[bench] ${line}`);
const names = figures.map((f) => f.name);
const unknown = Deno.args.filter((a) => !names.includes(a));
if (unknown.length) {
  console.error(
    `unknown figure ${unknown.join(", ")}; the figures: ${names.join(", ")}\n` +
      "usage: deno task bench [figure...]   (none: all of them, writing docs/benchmarks.md)",
  );
  Deno.exit(2);
}
// a subset runs in the order of the list, whatever the order given
const selected = Deno.args.length ? figures.filter((f) => Deno.args.includes(f.name)) : figures;
const whole = selected.length === figures.length;

const bench = await startBench({
  repeats: Number(Deno.env.get("BENCH_REPEATS") ?? 3),
  seconds: Number(Deno.env.get("BENCH_SECONDS") ?? 3),
  log,
});
const measured: Measured[] = [];
try {
  for (const figure of selected) {
    log(figure.name);
    measured.push({ figure, result: await figure.run(bench) });
  }
} finally {
  await bench.stop();
}

if (whole) {
  const [{ version }] = await bench.db.admin<[{ version: string }]>`
    select current_setting('server_version') as version`;
  await writeDocs(await benchmarksPage(measured, version), measured);
  log("wrote docs/benchmarks.md");
} else {
  console.log(await formatMarkdown(figuresMarkdown(measured)));
  log("docs/benchmarks.md is written only by a run of every figure");
}
// the database's pool and the stack's sockets would keep the process alive
Deno.exit(0);
