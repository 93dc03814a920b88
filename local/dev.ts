/**
 * `deno task dev`: one command to a running API at http://127.0.0.1:8000/api.
 * - database: DATABASE_URL, or an embedded Postgres whose data is kept in .local/
 * - auth: a local ES256 signing key; the function trusts its JWKS
 * - page cursors: a secret made once and kept in .local/ (or CURSOR_SECRET)
 * - model: the real OpenAI API when OPENAI_API_KEY is set (OPENAI_BASE_URL for
 *   any compatible server), otherwise the offline stand-in model
 * - the function itself: supabase/functions/api/index.ts under plain Deno, restarted on change
 * - interactive docs for it at http://127.0.0.1:8001 (DOCS_PORT), as `deno task docs` serves them
 */
import { prepareDatabase, startEmbeddedPostgres } from "./database.ts";
import {
  databaseDir,
  forgetRunning,
  loadCursorSecret,
  loadSigningKey,
  recordRunning,
} from "./dev_state.ts";
import { startDocsServer } from "./docs.ts";
import { jwksOf } from "./signing_keys.ts";
import { OFFLINE_MODEL, startStandInModel } from "./stand_in_model.ts";

const env = Deno.env.toObject();
const port = env.PORT ?? "8000";
const say = (line: string) => console.error(`[dev] ${line}`);

const embedded = env.DATABASE_URL
  ? undefined
  : await startEmbeddedPostgres({ dataDir: databaseDir, persistent: true });
const databaseUrl = env.DATABASE_URL || embedded!.url;
await prepareDatabase(databaseUrl);
say(
  !embedded
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
await recordRunning({ databaseUrl, apiUrl });
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
    PORT: port,
    ...modelEnv,
  },
}).spawn();
say(`API: ${apiUrl}  (try: curl ${apiUrl}/health; a token: deno task token you@example.com)`);
const docs = await startDocsServer({ apiUrl, port: Number(env.DOCS_PORT ?? 8001) }).catch(
  (error) => {
    say(`docs: not served (${error.message}); set DOCS_PORT, or run: deno task docs ${apiUrl}`);
    return undefined;
  },
);
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
  await forgetRunning();
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
