/**
 * `deno task dev`: one command to a running API at http://127.0.0.1:8000/api.
 * - database: DATABASE_URL, or an embedded Postgres whose data is kept in .local/ (the one the
 *   `deno task dev` already running here started, if there is one: two instances share it)
 * - auth: a local ES256 signing key; the function trusts its JWKS
 * - page cursors: a secret made once and kept in .local/ (or CURSOR_SECRET)
 * - model: the real OpenAI API when OPENAI_API_KEY is set (OPENAI_BASE_URL for
 *   any compatible server), otherwise the offline stand-in model
 * - the function itself: supabase/functions/api/index.ts under plain Deno, restarted on change
 * - interactive docs for it at http://127.0.0.1:8001 (DOCS_PORT), as `deno task docs` serves them
 * - a second `deno task dev` beside the first takes the next free ports (unless PORT or DOCS_PORT
 *   name one) and the first one's database
 */
import { prepareDatabase, reachable, startEmbeddedPostgres } from "./database.ts";
import {
  databaseDir,
  forgetRunning,
  loadCursorSecret,
  loadSigningKey,
  readRunning,
  recordRunning,
} from "./dev_state.ts";
import { DEFAULT_DOCS_PORT, startDocsServer } from "./docs.ts";
import { jwksOf } from "./signing_keys.ts";
import { OFFLINE_MODEL, startStandInModel } from "./stand_in_model.ts";

const env = Deno.env.toObject();
const say = (line: string) => console.error(`[dev] ${line}`);

// The API's port: PORT as asked, or 8000, or the next free one (another dev may be running). It is
// held until the function starts, so a dev started meanwhile sees it taken.
const DEFAULT_PORT = 8000;
const asked = env.PORT ? Number(env.PORT) : undefined;
if (asked !== undefined && !(Number.isInteger(asked) && asked >= 1 && asked <= 65535)) {
  say(`PORT must be a port number (1-65535), not ${env.PORT}`);
  Deno.exit(1);
}
const held = asked !== undefined ? hold(asked) : firstFree(DEFAULT_PORT);
if (!held) {
  say(
    asked !== undefined
      ? `PORT ${asked} is in use (another deno task dev?); unset PORT to take the next free port`
      : `no free port from ${DEFAULT_PORT} to ${DEFAULT_PORT + 100}; set PORT`,
  );
  Deno.exit(1);
}
const port = (held.addr as Deno.NetAddr).port;

// The dev already running from this folder, if any: its database is shared, not started again
// (an embedded Postgres admits one server per data folder), and its record is left to it
const running = await readRunning();
const live = running && await reachable(running.databaseUrl) ? running : undefined;
const shared = env.DATABASE_URL ? undefined : live;
const embedded = env.DATABASE_URL || shared
  ? undefined
  : await startEmbeddedPostgres({ dataDir: databaseDir, persistent: true });
const databaseUrl = env.DATABASE_URL || shared?.databaseUrl || embedded!.url;
await prepareDatabase(databaseUrl);
say(
  shared
    ? `database: the embedded Postgres of the deno task dev at ${shared.apiUrl} ` +
      "(it stops when that one stops)"
    : !embedded
    ? "database: DATABASE_URL"
    : embedded.dataDir === databaseDir
    ? `database: embedded Postgres 17, data kept in ${databaseDir}`
    : `database: embedded Postgres 17, data kept in ${embedded.dataDir} (linked from ${databaseDir}: ` +
      "this folder is private, and Postgres runs as its own OS user)",
);

const key = await loadSigningKey();
const cursorSecret = env.CURSOR_SECRET || await loadCursorSecret();
const modelEnv: Record<string, string> = {};
const standIn = env.OPENAI_API_KEY ? undefined : await startStandInModel();
if (standIn) {
  Object.assign(modelEnv, {
    OPENAI_API_KEY: "offline",
    OPENAI_BASE_URL: standIn.baseURL,
    OPENAI_MODEL: OFFLINE_MODEL,
  });
  say(`model: OFFLINE stand-in "${OFFLINE_MODEL}" (set OPENAI_API_KEY to use the real OpenAI API)`);
} else {
  say(`model: ${env.OPENAI_BASE_URL ?? "OpenAI API"}, ${env.OPENAI_MODEL ?? "default model"}`);
}

const apiUrl = `http://127.0.0.1:${port}/api`;
// for `deno task token` and `deno task docs`: the first dev's, while it runs
if (!live) await recordRunning({ databaseUrl, apiUrl });
held.close();
const functionProcess = new Deno.Command(Deno.execPath(), {
  args: [
    "run",
    "--watch",
    "--allow-net",
    "--allow-env",
    new URL("../supabase/functions/api/index.ts", import.meta.url).pathname,
  ],
  env: {
    SUPABASE_DB_URL: databaseUrl,
    SUPABASE_JWKS: JSON.stringify(jwksOf(key)),
    CURSOR_SECRET: cursorSecret,
    PORT: String(port),
    ...modelEnv,
  },
}).spawn();
if (asked === undefined && port !== DEFAULT_PORT) {
  say(`port ${DEFAULT_PORT} is in use (another deno task dev?): the API takes ${port}`);
}
say(`API: ${apiUrl}  (try: curl ${apiUrl}/health; a token: deno task token you@example.com)`);
// DOCS_PORT as asked, or 8001 or the next free port (never the API's); never fatal
const docs = await startDocsServer({
  apiUrl,
  port: env.DOCS_PORT ? Number(env.DOCS_PORT) : DEFAULT_DOCS_PORT,
  nextFree: !env.DOCS_PORT,
  avoid: [port],
}).catch((error) => {
  say(`docs: not served (${error.message}); set DOCS_PORT, or run: deno task docs ${apiUrl}`);
  return undefined;
});
if (docs && !env.DOCS_PORT && new URL(docs.url).port !== String(DEFAULT_DOCS_PORT)) {
  say(`port ${DEFAULT_DOCS_PORT} is in use: the docs page takes the next free one`);
}
if (docs) say(`docs: ${docs.url}  (Swagger UI for the API)`);

/** Stops what dev started, in order, and exits; once, whichever asks first. */
let stopping = false;
async function shutdown(code: number) {
  if (stopping) return;
  stopping = true;
  try {
    functionProcess.kill("SIGTERM");
  } catch { /* already gone */ }
  await functionProcess.status;
  await docs?.close();
  await standIn?.close();
  await embedded?.stop();
  if (!live) await forgetRunning();
  Deno.exit(code);
}
const onSignal = () => {
  say("stopping");
  shutdown(0);
};
Deno.addSignalListener("SIGINT", onSignal);
Deno.addSignalListener("SIGTERM", onSignal);
const { code } = await functionProcess.status;
if (!stopping) {
  say(`the function exited with code ${code}`);
  await shutdown(code);
}

/** A listener on `port` on every interface, as `Deno.serve({ port })` listens; none if it is in use. */
function hold(port: number): Deno.Listener | undefined {
  try {
    return Deno.listen({ hostname: "0.0.0.0", port });
  } catch (error) {
    if (error instanceof Deno.errors.AddrInUse) return undefined;
    throw error;
  }
}

/** A listener on the first free port from `from` (up to 100 further). */
function firstFree(from: number): Deno.Listener | undefined {
  for (let port = from; port <= from + 100; port++) {
    const listener = hold(port);
    if (listener) return listener;
  }
  return undefined;
}
