/**
 * Entry point of the `api` edge function: read the configuration once, build
 * the app, serve. Supabase serves it at /functions/v1/api/*; locally it
 * listens on PORT (8000).
 */
import { createApp } from "./app.ts";
import { createTokenVerifier } from "./auth.ts";
import { parseConfig } from "./config.ts";
import { connect } from "./database_pool.ts";
import { saveRepliesOnRetirement } from "./reply/in_flight.ts";
import { createModelClient } from "./model.ts";
import { createSignerCheck } from "./signers.ts";

const config = parseConfig(Deno.env.toObject());

/** Supabase's runtime keeps a worker alive for these promises after the response ends. */
const edgeRuntime = (globalThis as { EdgeRuntime?: { waitUntil(p: Promise<unknown>): void } })
  .EdgeRuntime;

const log = (message: string, error?: unknown) =>
  console.error(
    JSON.stringify({
      level: "error",
      message,
      ...(error === undefined ? {} : { error: String(error) }),
    }),
  );
const waitUntil = (work: Promise<unknown>) => edgeRuntime?.waitUntil(work);

const sql = connect(config.database.url, {
  max: config.database.poolMax,
  prepare: config.database.prepare,
  ca: config.database.ca,
});
const app = createApp({
  config,
  sql,
  model: createModelClient(config.model),
  verifyToken: createTokenVerifier(config.auth, { log, liveSigner: createSignerCheck(sql) }),
  waitUntil,
  log,
});
// a retired worker's streaming replies are stopped and saved, each marked `shutdown`
saveRepliesOnRetirement(app.replies, { waitUntil, log });

Deno.serve({ port: config.port }, app.fetch);
