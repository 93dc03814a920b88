/**
 * A module graph as `deno info --json` prints it, the one way the benchmarks
 * and tests read the function's imports (static and literal dynamic ones
 * alike, as the bundler sees them). Typed for the fields they read only.
 */

type Dependency = { code?: { specifier: string }; type?: { specifier: string } };

export type DenoInfo = {
  roots: string[];
  modules: {
    specifier: string;
    kind?: string;
    npmPackage?: string;
    local?: string;
    dependencies?: Dependency[];
  }[];
  npmPackages: Record<
    string,
    { name: string; version: string; dependencies: string[]; localPath?: string }
  >;
};

/** The module graph of `entry` (a path or URL), read by the running Deno. */
export async function denoInfo(entry: string | URL): Promise<DenoInfo> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry instanceof URL ? entry.pathname : entry],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  if (!out.success) {
    throw new Error(`deno info failed:\n${new TextDecoder().decode(out.stderr)}`);
  }
  return JSON.parse(new TextDecoder().decode(out.stdout));
}
