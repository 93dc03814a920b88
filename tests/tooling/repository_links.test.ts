/** The repository is self-contained: every relative link in its Markdown points at a file inside it. */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { dirname, relative, resolve } from "node:path";

const root = resolve(new URL("../..", import.meta.url).pathname);
const skip = new Set([".git", ".local", "node_modules"]);

function* markdownFiles(dir: string): Generator<string> {
  for (const entry of Deno.readDirSync(dir)) {
    if (skip.has(entry.name)) continue;
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) yield* markdownFiles(path);
    else if (entry.name.endsWith(".md")) yield path;
  }
}

Deno.test("every relative Markdown link resolves to a file inside the repository", () => {
  const broken: string[] = [];
  let links = 0;
  for (const file of markdownFiles(root)) {
    const text = Deno.readTextFileSync(file);
    for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/i.test(target!) || target!.startsWith("#")) continue;
      links++;
      const path = resolve(dirname(file), target!.split("#")[0]!);
      const inside = !relative(root, path).startsWith("..");
      if (!inside || !existsSync(path)) broken.push(`${relative(root, file)}: ${target}`);
    }
  }
  assert.ok(links > 0, "no relative links found: the scan is not reading the files");
  assert.deepEqual(broken, []);
});
