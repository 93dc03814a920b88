/** The function's own modules import each other without cycles: the app and its routes share `deps.ts`, not each other. */
import assert from "node:assert/strict";
import { denoInfo } from "../../local/deno_info.ts";

const entry = new URL("../../supabase/functions/api/index.ts", import.meta.url);
const folder = new URL("../../supabase/functions/api/", import.meta.url).href;

Deno.test("the function's modules form no import cycle, and no route imports app.ts", async () => {
  const graph = await denoInfo(entry);
  const own = (specifier: string) => specifier.startsWith(folder);
  const imports = new Map<string, string[]>();
  for (const module of graph.modules) {
    if (!own(module.specifier)) continue;
    imports.set(
      module.specifier,
      // type-only imports count: a cycle of types still ties the modules together
      (module.dependencies ?? []).flatMap((d) => [d.code?.specifier, d.type?.specifier])
        .filter((s): s is string => s !== undefined && own(s)),
    );
  }
  assert.ok(imports.size > 20, `only ${imports.size} modules in the graph`);

  const cycles: string[] = [];
  const state = new Map<string, "visiting" | "done">();
  const short = (s: string) => s.slice(folder.length);
  const visit = (module: string, path: string[]) => {
    if (state.get(module) === "done") return;
    if (state.get(module) === "visiting") {
      cycles.push([...path.slice(path.indexOf(module)), module].map(short).join(" -> "));
      return;
    }
    state.set(module, "visiting");
    for (const next of imports.get(module) ?? []) visit(next, [...path, module]);
    state.set(module, "done");
  };
  for (const module of imports.keys()) visit(module, []);
  assert.deepEqual(cycles, []);

  const routesImportingApp = [...imports].filter(([module, deps]) =>
    short(module).startsWith("routes/") && deps.some((d) => short(d) === "app.ts")
  ).map(([module]) => short(module));
  assert.deepEqual(routesImportingApp, []);
});
