/**
 * The Deno the Supabase Edge Runtime is built on (2.1.4: V8 13.0), for tests
 * whose figures depend on V8 itself (memory). Its binary comes from npm
 * (`deno@2.1.4`), installed once into .local/ unless EDGE_DENO names one.
 * It cannot read this repository's lockfile, so it runs the function's own
 * folder with its own cache, as the Supabase CLI mounts only that folder.
 */
const root = new URL("../../", import.meta.url).pathname;
const prefix = `${root}.local/deno-2.1.4`;
const binary = `${prefix}/node_modules/@deno/linux-x64-glibc/deno`;

export async function edgeDeno(): Promise<{ path: string; env: Record<string, string> }> {
  const env = {
    DENO_DIR: `${prefix}/cache`,
    // its npm client needs the system's certificates on these machines
    DENO_TLS_CA_STORE: "system,mozilla",
  };
  const given = Deno.env.get("EDGE_DENO");
  if (given) return { path: given, env };
  const installed = await Deno.stat(binary).then(() => true, () => false);
  if (!installed) {
    const npm = await new Deno.Command("npm", {
      args: ["install", "--silent", "--no-save", "--prefix", prefix, "deno@2.1.4"],
      stdout: "null",
      stderr: "piped",
    }).output();
    if (npm.code !== 0) throw new Error(new TextDecoder().decode(npm.stderr));
  }
  return { path: binary, env };
}
