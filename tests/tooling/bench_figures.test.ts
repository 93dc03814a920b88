/** The benchmark's figures: adding one means a file in bench/figures/ and a line in bench/figures.ts. */
import assert from "node:assert/strict";
import { figures } from "../../bench/figures.ts";

Deno.test("every module in bench/figures/ exports one figure that the runner lists", async () => {
  const dir = new URL("../../bench/figures/", import.meta.url);
  const exported: unknown[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.isFile || !entry.name.endsWith(".ts")) continue;
    const module: Record<string, unknown> = await import(new URL(entry.name, dir).href);
    const listed = Object.values(module).filter((value) => figures.some((f) => f === value));
    assert.equal(listed.length, 1, `${entry.name}: no figure of it is listed in bench/figures.ts`);
    exported.push(listed[0]);
  }
  assert.equal(new Set(exported).size, figures.length);
});

Deno.test("figures have distinct names usable as `deno task bench <name>`", () => {
  const names = figures.map((f) => f.name);
  assert.equal(new Set(names).size, names.length);
  for (const name of names) assert.match(name, /^[a-z][a-z0-9-]*$/);
});
