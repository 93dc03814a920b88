/**
 * The function as its own process, as the CLI and the Edge Runtime run it: its
 * folder with its own import map, the entry point `index.ts`, configured by the
 * environment alone. For tests that need a real worker to stop (or kill) or a
 * real start-up.
 */
export interface FunctionProcess {
  /** where it listens, ending in `/` */
  url: string;
  process: Deno.ChildProcess;
  /** ends it (SIGTERM unless given) and waits for it */
  stop(signal?: Deno.Signal): Promise<void>;
}

export async function startFunctionProcess(env: Record<string, string>): Promise<FunctionProcess> {
  const process = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      "--allow-env",
      "--allow-read",
      "--no-lock",
      "--config",
      new URL("../../supabase/functions/api/deno.json", import.meta.url).pathname,
      new URL("../../supabase/functions/api/index.ts", import.meta.url).pathname,
    ],
    env: { PORT: "0", ...env },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stop = async (signal: Deno.Signal = "SIGTERM") => {
    try {
      process.kill(signal);
    } catch { /* already gone */ }
    await process.status;
    await process.stdout.cancel().catch(() => {});
  };
  try {
    return { url: await listeningUrl(process), process, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** The address `Deno.serve` announces once it listens (on stderr). */
async function listeningUrl(process: Deno.ChildProcess): Promise<string> {
  let seen = "";
  const reader = process.stderr.pipeThrough(new TextDecoderStream()).getReader();
  const deadline = setTimeout(() => reader.cancel(), 30_000);
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`the function did not start:\n${seen}`);
      seen += value;
      const match = /Listening on http:\/\/[^:]+:(\d+)/.exec(seen);
      if (match) return `http://127.0.0.1:${match[1]}/`;
    }
  } finally {
    clearTimeout(deadline);
    // the rest of its output is not read: released, so the process never blocks on it
    reader.releaseLock();
    process.stderr.cancel().catch(() => {});
  }
}
