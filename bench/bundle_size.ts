/**
 * `deno task bundle-size`: the size of the `api` function's deploy bundle, measured the way
 * Supabase packs and uploads it, and a failure above the limit of server-side bundling.
 *
 * What the platform packs (read from the sources, 2026-11):
 * - supabase/edge-runtime `crates/deno_facade/eszip/vfs.rs` (`build_npm_vfs`): for every npm
 *   package in the resolution it calls `add_dir_recursive` on the package's folder, so EVERY file
 *   of each package goes into the eszip, used or not; the function's own modules go in as modules.
 * - supabase/cli `pkg/function/bundle.go` (`Compress`): the eszip is uploaded as "EZBR" plus one
 *   brotli stream from `andybalholm/brotli`'s `NewWriter`, i.e. quality 6 (`DefaultCompression`)
 *   and its default 4 MiB window (lgwin 22).
 * - The limit: 20 MB when the CLI bundles locally (Docker), 5 MB when bundling happens on
 *   Supabase's side (Dashboard, `--use-api`, `deploy` without Docker). The CLI prints the upload
 *   as "script size" with docker/go-units `HumanSize`, which counts in decimal units, so "5 MB"
 *   is read here as 5,000,000 bytes (the stricter of the two readings; 5 MiB would be 5,242,880).
 *
 * The import graph comes from `deno info --json` on the entry point (static and literal dynamic
 * imports alike, as the bundler sees them), the npm packages from the closure of its npm
 * modules' dependencies. The whole bundle is compressed as one stream, as uploaded; each row of
 * the table is its part compressed alone (so the rows add up to a little more than the total).
 *
 *   deno task bundle-size [--json] [--limit=BYTES] [entry.ts]
 */
import { Buffer } from "node:buffer";
import { brotliCompressSync, constants } from "node:zlib";
import { type DenoInfo, denoInfo } from "../local/deno_info.ts";

/** Server-side bundling's limit, in the decimal megabytes the CLI reports sizes in. */
export const BUNDLE_LIMIT_BYTES = 5_000_000;

export type Part = { name: string; files: number; rawBytes: number; brotliBytes: number };
export type BundleSize = { parts: Part[]; rawBytes: number; brotliBytes: number };

/** Brotli at the settings the Supabase CLI uploads with: quality 6, a 4 MiB window. */
export function brotliSize(data: Uint8Array): number {
  return brotliCompressSync(data, {
    params: {
      [constants.BROTLI_PARAM_QUALITY]: 6,
      [constants.BROTLI_PARAM_LGWIN]: 22,
      [constants.BROTLI_PARAM_SIZE_HINT]: data.byteLength,
    },
  }).byteLength;
}

/** Every file under a folder, in a stable order (the packer sorts too), symlinks followed. */
async function filesUnder(dir: string): Promise<string[]> {
  const found: string[] = [];
  const entries = [];
  for await (const entry of Deno.readDir(dir)) entries.push(entry);
  entries.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  for (const entry of entries) {
    const path = `${dir}/${entry.name}`;
    const info = entry.isSymlink ? await Deno.stat(path) : entry;
    if (info.isDirectory) found.push(...await filesUnder(path));
    else if (info.isFile) found.push(path);
  }
  return found;
}

async function measurePart(name: string, paths: string[]): Promise<Part & { data: Uint8Array }> {
  const chunks = await Promise.all(paths.map((p) => Deno.readFile(p)));
  const data = Buffer.concat(chunks);
  return {
    name,
    files: paths.length,
    rawBytes: data.byteLength,
    brotliBytes: brotliSize(data),
    data,
  };
}

/** The npm packages the graph reaches: its npm modules' packages and all their dependencies. */
function npmClosure(info: DenoInfo): string[] {
  const pending = info.modules.flatMap((m) =>
    m.kind === "npm" && m.npmPackage ? [m.npmPackage] : []
  );
  const seen = new Set<string>();
  while (pending.length > 0) {
    const id = pending.pop()!;
    if (seen.has(id)) continue;
    seen.add(id);
    const pkg = info.npmPackages[id];
    if (!pkg) throw new Error(`deno info names ${id} but does not describe it`);
    pending.push(...pkg.dependencies);
  }
  return [...seen].sort();
}

export async function measureBundle(entry: string): Promise<BundleSize> {
  const info = await denoInfo(entry);
  const ownFiles = info.modules
    .filter((m) => m.specifier.startsWith("file:"))
    .map((m) => new URL(m.specifier).pathname)
    .sort();
  const parts = [await measurePart("(the function's own modules)", ownFiles)];
  for (const id of npmClosure(info)) {
    const pkg = info.npmPackages[id]!;
    if (!pkg.localPath) {
      throw new Error(`${pkg.name}@${pkg.version} is not installed: run \`deno task setup\` first`);
    }
    parts.push(await measurePart(`${pkg.name}@${pkg.version}`, await filesUnder(pkg.localPath)));
  }
  const whole = Buffer.concat(parts.map((p) => p.data));
  return {
    parts: parts.map(({ data: _, ...part }) => part),
    rawBytes: whole.byteLength,
    brotliBytes: brotliSize(whole),
  };
}

const mb = (bytes: number) => `${(bytes / 1e6).toFixed(2)} MB`;

export function formatBundle(size: BundleSize, limit: number): string {
  const rows = [...size.parts].sort((a, b) => b.brotliBytes - a.brotliBytes);
  const width = Math.max(...rows.map((r) => r.name.length), 10);
  const line = (name: string, files: string, raw: string, br: string) =>
    `${name.padEnd(width)}  ${files.padStart(6)}  ${raw.padStart(10)}  ${br.padStart(10)}`;
  return [
    line("part", "files", "raw", "brotli q6"),
    ...rows.map((r) => line(r.name, String(r.files), mb(r.rawBytes), mb(r.brotliBytes))),
    line("total (one stream, as uploaded)", "", mb(size.rawBytes), mb(size.brotliBytes)),
    `limit: ${mb(limit)} (${limit} bytes; server-side bundling): ${
      size.brotliBytes <= limit ? "within" : "OVER"
    }`,
  ].join("\n");
}

if (import.meta.main) {
  const args = Deno.args.filter((a) => !a.startsWith("--"));
  const limitArg = Deno.args.find((a) => a.startsWith("--limit="));
  const limit = limitArg ? Number(limitArg.slice("--limit=".length)) : BUNDLE_LIMIT_BYTES;
  const entry = args[0] ??
    new URL("../supabase/functions/api/index.ts", import.meta.url).pathname;
  const size = await measureBundle(entry);
  if (Deno.args.includes("--json")) console.log(JSON.stringify({ ...size, limit }, null, 2));
  else console.log(formatBundle(size, limit));
  if (size.brotliBytes > limit) {
    console.error(`bundle-size: ${mb(size.brotliBytes)} is over the ${mb(limit)} limit`);
    Deno.exit(1);
  }
}
