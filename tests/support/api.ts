/**
 * The API as tests run it: the real app factory with real Postgres (a fresh
 * database), the stand-in model speaking the OpenAI wire format, and a local
 * signing key whose JWKS the app trusts.
 */
import {
  createSigningKey,
  jwksOf,
  signAccessToken,
  type SigningKey,
} from "../../local/signing_keys.ts";
import { type StandInModel, startStandInModel } from "../../local/stand_in_model.ts";
import { createApp } from "../../supabase/functions/api/app.ts";
import {
  createTokenVerifier,
  type TokenVerifier,
  type VerifierOptions,
} from "../../supabase/functions/api/auth.ts";
import { type Env, parseConfig } from "../../supabase/functions/api/config.ts";
import { connect } from "../../supabase/functions/api/database_pool.ts";
import { createSignerCheck } from "../../supabase/functions/api/signers.ts";
import { createModelClient } from "../../supabase/functions/api/model.ts";
import { createTestDatabase, type TestDatabase } from "./database.ts";
import { signUp } from "./fixtures.ts";
import { recordResponses } from "./responses.ts";

/** The secret test apps sign page cursors with, for tests that sign a cursor themselves. */
export const TEST_CURSOR_SECRET = "test-cursor-secret-of-at-least-32-characters";

export interface TestUser {
  id: string;
  token: string;
  auth: { authorization: string };
}

export interface TestApi {
  app: ReturnType<typeof createApp>;
  db: TestDatabase;
  model: StandInModel;
  key: SigningKey;
  logs: string[];
  /** resolves once every background save has finished */
  idle(): Promise<void>;
  user(email?: string): Promise<TestUser>;
  /** serves the app on a real socket (needed to disconnect mid-stream) */
  listen(): { url: string; close(): Promise<void> };
}

function counted(verify: TokenVerifier, onVerify?: () => void): TokenVerifier {
  return onVerify ? (token) => (onVerify(), verify(token)) : verify;
}

export async function startTestApi(
  opts: {
    env?: Partial<Env>;
    db?: TestDatabase;
    auth?: VerifierOptions;
    /** called each time the app asks for a token to be verified */
    onVerify?: () => void;
  } = {},
): Promise<TestApi> {
  const db = opts.db ?? await createTestDatabase();
  const model = await startStandInModel({ script: () => ({ chunks: ["Hello", " there", "!"] }) });
  const key = await createSigningKey();
  const config = parseConfig({
    SUPABASE_DB_URL: db.url,
    SUPABASE_JWKS: JSON.stringify(jwksOf(key)),
    OPENAI_API_KEY: "test-key",
    CURSOR_SECRET: TEST_CURSOR_SECRET,
    OPENAI_BASE_URL: model.baseURL,
    OPENAI_MODEL: "test-model",
    OPENAI_MODELS: "other-model",
    OPENAI_MAX_RETRIES: "0",
    OPENAI_TIMEOUT_MS: "2000",
    // on where a test is about titles: a background title request would race the bytes other tests compare
    TITLE_GENERATION: "false",
    // quotas are tested on their own; elsewhere one user may run many replies at once
    QUOTA_MESSAGES_PER_DAY: "0",
    QUOTA_CONCURRENT_STREAMS: "0",
    // `deno task test:edge` runs the suite as through the transaction pooler: no prepared statements
    ...(Deno.env.get("TEST_DB_PREPARE") === "false" ? { DB_PREPARE: "false" } : {}),
    ...opts.env,
  } as Record<string, string>);
  const pending = new Set<Promise<unknown>>();
  const logs: string[] = [];
  const log = (message: string, error?: unknown) =>
    logs.push(`${new Date().toISOString()} ${message}: ${error}`);
  const sql = connect(config.database.url, {
    max: config.database.poolMax,
    prepare: config.database.prepare,
    ca: config.database.ca,
  });
  const app = createApp({
    config,
    sql,
    model: createModelClient(config.model),
    verifyToken: counted(
      createTokenVerifier(config.auth, { log, liveSigner: createSignerCheck(sql), ...opts.auth }),
      opts.onVerify,
    ),
    waitUntil: (work) => {
      pending.add(work);
      work.finally(() => pending.delete(work));
    },
    log,
  });
  // with API_RESPONSES_DIR set, every response goes to the contract check (tests/contract/)
  recordResponses(app);
  return {
    app,
    db,
    model,
    key,
    logs,
    async idle() {
      while (pending.size) await Promise.allSettled([...pending]);
    },
    async user(email) {
      const id = await signUp(db.admin, { email: email ?? `${crypto.randomUUID()}@example.com` });
      const token = await signAccessToken(key, { id, email });
      return { id, token, auth: { authorization: `Bearer ${token}` } };
    },
    listen() {
      const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, app.fetch);
      return {
        url: `http://127.0.0.1:${server.addr.port}`,
        close: () => server.shutdown(),
      };
    },
  };
}
