/**
 * Configuration, read from the environment once at start and validated:
 * a bad value fails the start with a message naming the variable.
 */
import { z } from "zod";
import type { ModelNames } from "./model_names.ts";

/** Where tokens are checked (built from SUPABASE_JWKS, SUPABASE_URL and the API keys; used by auth.ts). */
export interface AuthSources {
  /** inline keys (SUPABASE_JWKS); may be empty */
  jwks: { keys: Record<string, unknown>[] };
  /** the project's URL: its JWKS endpoint and Auth server */
  url?: string;
  /** publishable or anon key, the `apikey` the project's gateway asks for */
  apiKey?: string;
}

const postgresUrl = z.string().url().refine(
  (url) => URL.canParse(url) && /^postgres(ql)?:$/.test(new URL(url).protocol),
  "expected a postgres:// or postgresql:// URL",
);
const list = z.string().transform((s) => s.split(",").map((x) => x.trim()).filter(Boolean));
const int = (min: number) => z.coerce.number().int().min(min);

const Env = z.object({
  /** the direct connection on hosted projects (Supabase sets it; users cannot override SUPABASE_*) */
  SUPABASE_DB_URL: postgresUrl,
  /** the transaction pooler (Supavisor, port 6543): used instead of SUPABASE_DB_URL when set */
  DB_POOLER_URL: postgresUrl.optional(),
  /**
   * connections per instance. A transaction holds one for a round trip or two, a streaming reply
   * none, so 3 keep an instance busy while many instances share the plan's connections
   */
  DB_POOL_MAX: int(1).default(3),
  /**
   * the CA that signed the database's certificate (PEM; Supabase: Dashboard, Database settings,
   * SSL configuration): the server is then verified against it
   */
  DB_CA_CERT: z.string()
    .includes("-----BEGIN CERTIFICATE-----", { message: "expected a PEM certificate" })
    // a secret set on one line may carry its line breaks as \n
    .transform((pem) => pem.replaceAll("\\n", "\n"))
    .optional(),
  /** default: off through a pooler (DB_POOLER_URL, or port 6543), which cannot keep them; on otherwise */
  DB_PREPARE: z.enum(["true", "false"]).transform((v) => v === "true").optional(),
  /** inline JWKS (`{"keys":[...]}`) of the project's signing keys; `{"keys":[]}` on legacy-secret projects */
  SUPABASE_JWKS: z.string().optional(),
  /** the project's URL: its JWKS endpoint, and its Auth server for HS256 tokens */
  SUPABASE_URL: z.string().url().optional(),
  /** the `apikey` for the project's Auth server: a publishable key (`{"default": "sb_publishable_..."}`) or the anon key */
  SUPABASE_PUBLISHABLE_KEYS: z.string().optional(),
  SUPABASE_ANON_KEY: z.string().optional(),
  OPENAI_API_KEY: z.string().min(1),
  OPENAI_BASE_URL: z.string().url().optional(),
  OPENAI_MODEL: z.string().min(1).default("gpt-4o-mini"),
  /** models a request may ask for by name, besides OPENAI_MODEL */
  OPENAI_MODELS: list.default([]),
  /** `name=model,...`: a name clients send, served by a listed model */
  OPENAI_MODEL_ALIASES: list.default([]).pipe(
    z.array(z.string().regex(/^[^=]*[^=\s][^=]*=[^=]*[^=\s][^=]*$/, "expected name=model")),
  ),
  /** true: a request naming an unlisted model gets 422; false: OPENAI_MODEL serves it */
  OPENAI_MODELS_STRICT: z.enum(["true", "false"]).default("false").transform((v) => v === "true"),
  /** how long to wait for the model: to its first byte, and between chunks */
  OPENAI_TIMEOUT_MS: int(1).default(60_000),
  OPENAI_MAX_RETRIES: int(0).default(2),
  /** the longest a reply may take, from its request's start; below the free plan's 150 s wall clock */
  REPLY_MAX_SECONDS: int(1).default(120),
  /** how often a streaming reply reads its row, to learn that its session was deleted (on any instance) */
  REPLY_POLL_MS: int(50).default(1000),
  /**
   * how often, at most, a streaming reply appends its new text to its row (so another connection
   * can re-attach to it) and how often a re-attached stream reads it
   */
  REPLY_PERSIST_MS: int(20).default(250),
  SYSTEM_PROMPT: z.string().min(1).default("You are a helpful assistant."),
  /** tokens of history (system prompt included) sent to the model, by default and per model */
  HISTORY_TOKEN_BUDGET: int(100).default(16_000),
  HISTORY_TOKEN_BUDGETS: list.default([]).pipe(
    z.array(z.string().regex(/^[^=]+=\d+$/, "expected model=tokens")),
  ),
  /** a short title written by the model after a session's first message */
  TITLE_GENERATION: z.enum(["true", "false"]).default("true").transform((v) => v === "true"),
  TITLE_MODEL: z.string().min(1).optional(),
  /** per-user quotas; 0 switches one off */
  QUOTA_MESSAGES_PER_DAY: int(0).default(1000),
  QUOTA_CONCURRENT_STREAMS: int(0).default(5),
  /** a reply slot lapses by itself after this long (a worker killed mid-reply frees none): keep it above the longest a reply may stream */
  QUOTA_REPLY_SLOT_SECONDS: int(1).default(300),
  /**
   * Signs page cursors (HS256). Its own secret, required: every cursor is a MAC
   * anyone may try keys against offline, so it must not be derived from any other
   * secret (it once was, from SUPABASE_DB_URL: an oracle for the database password).
   * The same value on every instance, or a cursor fails on the next one.
   */
  CURSOR_SECRET: z.string({
    error: "required: a random secret that signs page cursors (e.g. `openssl rand -base64 32`)",
  }).min(32, "too short: at least 32 characters (e.g. `openssl rand -base64 32`)"),
  /** the reply protocol when a request names none: text | data | sse (data: what AI SDK clients read) */
  STREAM_PROTOCOL: z.enum(["text", "data", "sse"]).default("data"),
  /** `*`, or a comma-separated list of allowed origins */
  CORS_ORIGINS: list.default(["*"]),
  /** AI SDK clients resend the whole history with every message */
  MAX_BODY_BYTES: int(1024).default(4 * 1024 * 1024),
  /** where `Deno.serve` listens when run locally; Supabase's runtime ignores it */
  PORT: int(0).default(8000),
});

export type Env = z.input<typeof Env>;

export interface Config {
  database: { url: string; poolMax: number; prepare: boolean; ca: string | undefined };
  auth: AuthSources;
  model: ModelNames & {
    apiKey: string;
    baseURL: string | undefined;
    timeoutMs: number;
    maxRetries: number;
    replyMaxMs: number;
    replyPollMs: number;
    replyPersistMs: number;
    systemPrompt: string;
    historyBudget: (model: string) => number;
    titles: { enabled: boolean; model: string };
  };
  cursorSecret: string;
  quotas: { messagesPerDay: number; concurrentStreams: number; replySlotSeconds: number };
  streamProtocol: "text" | "data" | "sse";
  corsOrigins: string[];
  maxBodyBytes: number;
  port: number;
}

export class ConfigError extends Error {}

export function parseConfig(env: Record<string, string | undefined>): Config {
  const parsed = Env.safeParse(
    Object.fromEntries(Object.entries(env).filter(([, value]) => value !== "")),
  );
  const problems = parsed.success
    ? []
    : parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
  let auth: AuthSources | undefined;
  try {
    auth = authSources(env);
  } catch (error) {
    problems.push((error as Error).message);
  }
  // a reply's handle must outlive the reply and its save, or a retry could call the model twice
  if (
    parsed.success && parsed.data.QUOTA_REPLY_SLOT_SECONDS <= parsed.data.REPLY_MAX_SECONDS + 30
  ) {
    problems.push(
      "QUOTA_REPLY_SLOT_SECONDS: must be more than REPLY_MAX_SECONDS + 30 (the longest a reply and its save may take)",
    );
  }
  const aliases = parsed.success ? modelAliases(parsed.data) : undefined;
  if (typeof aliases === "string") problems.push(aliases);
  if (problems.length || !parsed.success || !auth || typeof aliases !== "object") {
    throw new ConfigError(`invalid configuration:\n  ${problems.join("\n  ")}`);
  }
  const e = parsed.data;
  return {
    database: databaseConfig(e),
    auth,
    model: {
      apiKey: e.OPENAI_API_KEY,
      baseURL: e.OPENAI_BASE_URL,
      defaultModel: e.OPENAI_MODEL,
      allowedModels: new Set([e.OPENAI_MODEL, ...e.OPENAI_MODELS]),
      modelAliases: aliases,
      strictModels: e.OPENAI_MODELS_STRICT,
      timeoutMs: e.OPENAI_TIMEOUT_MS,
      maxRetries: e.OPENAI_MAX_RETRIES,
      replyMaxMs: e.REPLY_MAX_SECONDS * 1000,
      replyPollMs: e.REPLY_POLL_MS,
      replyPersistMs: e.REPLY_PERSIST_MS,
      systemPrompt: e.SYSTEM_PROMPT,
      historyBudget: budgets(e.HISTORY_TOKEN_BUDGET, e.HISTORY_TOKEN_BUDGETS),
      titles: { enabled: e.TITLE_GENERATION, model: e.TITLE_MODEL ?? e.OPENAI_MODEL },
    },
    cursorSecret: e.CURSOR_SECRET,
    quotas: {
      messagesPerDay: e.QUOTA_MESSAGES_PER_DAY,
      concurrentStreams: e.QUOTA_CONCURRENT_STREAMS,
      replySlotSeconds: e.QUOTA_REPLY_SLOT_SECONDS,
    },
    streamProtocol: e.STREAM_PROTOCOL,
    corsOrigins: e.CORS_ORIGINS,
    maxBodyBytes: e.MAX_BODY_BYTES,
    port: e.PORT,
  };
}

/** The pooler when it is given: SUPABASE_DB_URL is the direct connection, few and shared on hosted. */
function databaseConfig(e: z.output<typeof Env>): Config["database"] {
  const url = e.DB_POOLER_URL ?? e.SUPABASE_DB_URL;
  const pooled = e.DB_POOLER_URL !== undefined || new URL(url).port === "6543";
  return { url, poolMax: e.DB_POOL_MAX, prepare: e.DB_PREPARE ?? !pooled, ca: e.DB_CA_CERT };
}

const Jwks = z.union([
  z.object({ keys: z.array(z.record(z.string(), z.unknown())) }),
  z.array(z.record(z.string(), z.unknown())).transform((keys) => ({ keys })),
]);

/** Key types that can verify a Supabase token: EC, RSA, OKP public keys, or the legacy secret (`oct`). */
const KEY_TYPES = new Set(["EC", "RSA", "OKP", "oct"]);

/**
 * Where tokens get checked. Inline keys are used first; SUPABASE_URL adds the
 * project's JWKS endpoint and its Auth server. A missing or empty
 * SUPABASE_JWKS is fine with SUPABASE_URL (hosted always sets it); with
 * neither there is nothing to check a token against.
 */
function authSources(env: Record<string, string | undefined>): AuthSources {
  const text = env.SUPABASE_JWKS?.trim();
  let jwks: AuthSources["jwks"] = { keys: [] };
  if (text) {
    const parsed = Jwks.safeParse(tryJson(text));
    if (!parsed.success) {
      throw new Error('SUPABASE_JWKS: expected a JSON Web Key Set, {"keys": [...]}');
    }
    jwks = parsed.data;
  }
  const url = env.SUPABASE_URL?.trim() || undefined;
  if (!url && !jwks.keys.some((k) => KEY_TYPES.has(String(k.kty)))) {
    throw new Error(
      "SUPABASE_JWKS, SUPABASE_URL: no signing keys to verify tokens with; set SUPABASE_JWKS " +
        "to the project's JWKS, or SUPABASE_URL to fetch it (Supabase sets both)",
    );
  }
  return { jwks, url, apiKey: publishableKey(env) ?? (env.SUPABASE_ANON_KEY?.trim() || undefined) };
}

/** SUPABASE_PUBLISHABLE_KEYS is a JSON map of name to key; the platform names its own `default`. */
function publishableKey(env: Record<string, string | undefined>): string | undefined {
  const keys = tryJson(env.SUPABASE_PUBLISHABLE_KEYS ?? "");
  if (!keys || typeof keys !== "object" || Array.isArray(keys)) return undefined;
  const map = keys as Record<string, unknown>;
  const key = map.default ?? Object.values(map).find((v) => typeof v === "string" && v);
  return typeof key === "string" && key ? key : undefined;
}

function tryJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Aliases point at listed models only, so an alias can never open a model the operator did not list. */
function modelAliases(
  e: { OPENAI_MODEL: string; OPENAI_MODELS: string[]; OPENAI_MODEL_ALIASES: string[] },
): Map<string, string> | string {
  const listed = new Set([e.OPENAI_MODEL, ...e.OPENAI_MODELS]);
  const aliases = new Map<string, string>();
  for (const entry of e.OPENAI_MODEL_ALIASES) {
    const [name, model] = entry.split("=").map((part) => part.trim()) as [string, string];
    if (listed.has(name)) {
      return `OPENAI_MODEL_ALIASES: ${name} is a listed model; a request naming it gets it as named`;
    }
    if (!listed.has(model)) {
      return `OPENAI_MODEL_ALIASES: ${name} points at ${model}, which is neither OPENAI_MODEL nor in OPENAI_MODELS`;
    }
    aliases.set(name, model);
  }
  return aliases;
}

function budgets(fallback: number, perModel: string[]): (model: string) => number {
  const table = new Map(perModel.map((entry) => {
    const at = entry.lastIndexOf("=");
    return [entry.slice(0, at).trim(), Number(entry.slice(at + 1))] as const;
  }));
  return (model) => table.get(model) ?? fallback;
}
