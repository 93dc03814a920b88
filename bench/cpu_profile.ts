/**
 * A V8 CPU profile (`deno run --cpu-prof`) summarised as tables: the share of CPU time each
 * part of the stack spends itself (our code, Hono, zod, postgres.js, jose, Deno's HTTP server,
 * the garbage collector…), and the functions that spend the most, with their callers' totals.
 *
 *   deno run --allow-read bench/cpu_profile.ts <file.cpuprofile> [top]
 */
interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
}

const [file, topArg] = Deno.args;
if (!file) {
  console.error("usage: cpu_profile.ts <file.cpuprofile> [top]");
  Deno.exit(2);
}
const profile: Profile = JSON.parse(await Deno.readTextFile(file));
const top = Number(topArg ?? 25);

const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const node of profile.nodes) {
  for (const child of node.children ?? []) parent.set(child, node.id);
}

/** Which part of the stack a frame belongs to, by where its code lives. */
function part(url: string, name: string): string {
  if (name === "(garbage collector)") return "garbage collector";
  if (name === "(idle)" || name === "(program)" || name === "(root)") return name;
  const packages: [RegExp, string][] = [
    [/\/(hono|@hono)\//, "Hono, @hono/zod-openapi"],
    [/\/zod\//, "zod"],
    [/\/postgres\//, "postgres.js"],
    [/\/jose\//, "jose"],
    [/\/lru-cache\//, "lru-cache"],
  ];
  for (const [pattern, label] of packages) if (pattern.test(url)) return label;
  if (url.includes("/supabase/functions/api/")) return "the function's own code";
  if (url.includes("/bench/") || url.includes("/tests/")) return "the load driver";
  if (url.startsWith("ext:") || url.startsWith("node:")) {
    if (/http|serve|fetch|web\/06_streams|web\/09_file|webidl/.test(url)) {
      return "Deno: HTTP, Request/Response, streams";
    }
    if (/net|tcp|io/.test(url)) return "Deno: sockets";
    return "Deno: other built-ins";
  }
  if (url === "") return "V8 built-ins (JSON, RegExp, Promise…)";
  return "other";
}

const total = profile.timeDeltas.reduce((a, b) => a + b, 0);
const self = new Map<number, number>();
profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + profile.timeDeltas[i]!));

const parts = new Map<string, number>();
const functions = new Map<string, number>();
for (const [id, time] of self) {
  const { callFrame: f } = byId.get(id)!;
  const label = part(f.url, f.functionName);
  parts.set(label, (parts.get(label) ?? 0) + time);
  const where = f.url
    ? ` ${f.url.replace(/^.*\/(node_modules|functions)\//, "")}:${f.lineNumber + 1}`
    : "";
  const key = `${f.functionName || "(anonymous)"}${where}`;
  functions.set(key, (functions.get(key) ?? 0) + time);
}
const busy = total - (parts.get("(idle)") ?? 0);
const pct = (t: number) => `${((100 * t) / busy).toFixed(1)}%`;

console.log(
  `CPU profile: ${(total / 1e6).toFixed(1)} s sampled, ${(busy / 1e6).toFixed(1)} s busy\n`,
);
console.log("| part of the stack (self time) | share of busy time |");
console.log("| --- | --- |");
for (const [label, time] of [...parts].sort((a, b) => b[1] - a[1])) {
  if (label !== "(idle)") console.log(`| ${label} | ${pct(time)} |`);
}
console.log(`\n| function (self time, top ${top}) | share of busy time |`);
console.log("| --- | --- |");
for (const [name, time] of [...functions].sort((a, b) => b[1] - a[1]).slice(0, top)) {
  if (!name.startsWith("(idle)")) console.log(`| \`${name}\` | ${pct(time)} |`);
}

// inclusive time of our own code's functions (they and what they call)
const inclusive = new Map<string, number>();
for (const [id, time] of self) {
  const seen = new Set<string>();
  for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
    const { callFrame: f } = byId.get(at)!;
    if (!f.url.includes("/supabase/functions/api/") && !/\/(hono|@hono)\//.test(f.url)) continue;
    const key = `${f.functionName || "(anonymous)"} ${
      f.url.replace(/^.*\/(node_modules|functions)\//, "")
    }:${f.lineNumber + 1}`;
    if (seen.has(key)) continue;
    seen.add(key);
    inclusive.set(key, (inclusive.get(key) ?? 0) + time);
  }
}
console.log(`\n| our code and Hono, inclusive (top ${top}) | share of busy time |`);
console.log("| --- | --- |");
for (const [name, time] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, top)) {
  console.log(`| \`${name}\` | ${pct(time)} |`);
}
