/**
 * Where local development keeps its state between runs (`.local/`, or
 * LOCAL_STATE_DIR): the embedded database, the signing key, the page cursors'
 * secret, and how to reach the running database.
 */
import { createSigningKey, type SigningKey } from "./signing_keys.ts";

export const stateDir = Deno.env.get("LOCAL_STATE_DIR") ??
  new URL("../.local", import.meta.url).pathname;
export const databaseDir = `${stateDir}/postgres`;
const keyFile = `${stateDir}/signing_key.json`;
const runningFile = `${stateDir}/running.json`;
const cursorSecretFile = `${stateDir}/cursor_secret`;

/** The local project's signing key, made on first use and kept. */
export async function loadSigningKey(): Promise<SigningKey> {
  return JSON.parse(
    await kept(keyFile, async () => JSON.stringify(await createSigningKey(), null, 2)),
  );
}

/**
 * The secret that signs page cursors locally: 32 random bytes made on first use
 * and kept, so cursors stay valid across restarts of `deno task dev`.
 */
export async function loadCursorSecret(): Promise<string> {
  const secret = await kept(
    cursorSecretFile,
    () => `${btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))))}\n`,
  );
  return secret.trim();
}

/** A state file's text; the first time, what `make` returns, written readable by its owner only. */
async function kept(file: string, make: () => string | Promise<string>): Promise<string> {
  try {
    return await Deno.readTextFile(file);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  await Deno.mkdir(stateDir, { recursive: true });
  const text = await make();
  await Deno.writeTextFile(file, text, { mode: 0o600 });
  return text;
}

/** What `deno task dev` started, for `deno task token` to find it. */
export interface Running {
  databaseUrl: string;
  apiUrl: string;
}

export async function recordRunning(running: Running): Promise<void> {
  await Deno.writeTextFile(runningFile, JSON.stringify(running));
}

export async function readRunning(): Promise<Running | undefined> {
  try {
    return JSON.parse(await Deno.readTextFile(runningFile));
  } catch {
    return undefined;
  }
}

export async function forgetRunning(): Promise<void> {
  await Deno.remove(runningFile).catch(() => {});
}
