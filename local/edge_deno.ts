/**
 * The Deno the Supabase Edge Runtime is built on (2.1.4: V8 13.0, TypeScript
 * 5.6): `EDGE_DENO` when it names that version, else installed from npm
 * (`deno@2.1.4`) into `.local/deno-2.1.4/` on first use. It cannot read this
 * repository's lockfile (version 5), so whoever runs it passes `--no-lock`
 * and a config of its own; `env` gives it its own cache and lets its npm
 * client reach the registry (it needs the system's certificates here).
 */
export const EDGE_DENO_VERSION = "2.1.4";

const root = new URL("../", import.meta.url).pathname;
const prefix = `${root}.local/deno-${EDGE_DENO_VERSION}`;

export async function edgeDeno(): Promise<{ path: string; env: Record<string, string> }> {
  const env = { DENO_DIR: `${prefix}/cache`, DENO_TLS_CA_STORE: "system,mozilla" };
  const given = Deno.env.get("EDGE_DENO");
  // the platform package's binary itself, not npm's launcher (a node script that spawns it):
  // tests measure the process they start
  const binary = given ?? `${prefix}/node_modules/@deno/${platformPackage()}/deno`;
  if (await isVersion(binary)) return { path: binary, env };
  if (given) throw new Error(`EDGE_DENO=${given} is not deno ${EDGE_DENO_VERSION}`);
  const npm = await new Deno.Command("npm", {
    args: [
      "install",
      "--prefix",
      prefix,
      "--no-audit",
      "--no-fund",
      "--loglevel=error",
      `deno@${EDGE_DENO_VERSION}`,
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!npm.success) throw new Error(new TextDecoder().decode(npm.stderr));
  if (!(await isVersion(binary))) throw new Error(`npm did not install deno ${EDGE_DENO_VERSION}`);
  return { path: binary, env };
}

function platformPackage(): string {
  const arch = Deno.build.arch === "aarch64" ? "arm64" : "x64";
  return Deno.build.os === "linux" ? `linux-${arch}-glibc` : `${Deno.build.os}-${arch}`;
}

async function isVersion(binary: string): Promise<boolean> {
  try {
    const out = await new Deno.Command(binary, { args: ["--version"], stdout: "piped" }).output();
    return new TextDecoder().decode(out.stdout).startsWith(`deno ${EDGE_DENO_VERSION} `);
  } catch {
    return false;
  }
}
