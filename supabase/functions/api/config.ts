/**
 * Configuration, read from the environment once at start. One zod schema
 * declares every variable, the rules between them, and how they become the
 * Config the app reads, so the shape is written once (`Config` is the
 * schema's output type). Every bad value is reported the same way, all of
 * them at once: `VARIABLE: what is wrong`, one line each, in one ConfigError.
 */
import { z } from "zod";
import { authFields, authSources, signingKeysRule } from "./config_auth.ts";

const postgresUrl = z.string().url().refine(
  (url) => URL.canParse(url) && /^postgres(ql)?:$/.test(new URL(url).protocol),
  "expected a postgres:// or postgresql:// URL",
);
const list = z.string().transform((s) => s.split(",").map((x) => x.trim()).filter(Boolean));
const int = (min: number) => z.coerce.number().int().min(min);
const flag = z.enum(["true", "false"]).transform((v) => v === "true");

/**
 * `key=value,...` as a map. An entry that is not one `key=value`, with a
 * non-blank key and a value that matches `value`, is reported.
 */
const pairs = (shape: string, value: RegExp) =>
  list.default([]).transform((entries, ctx) => {
    const map = new Map<string, string>();
    for (const entry of entries) {
      const [key, val, ...more] = entry.split("=").map((part) => part.trim());
      if (!key || val === undefined || !value.test(val) || more.length) {
        ctx.addIssue({
          code: "custom",
          message: `expected ${shape}, got ${JSON.stringify(entry)}`,
        });
      } else map.set(key, val);
    }
    return map;
  });

const fields = {
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
  DB_PREPARE: flag.optional(),
  /** SUPABASE_JWKS, SUPABASE_URL and the API keys: where tokens are checked */
  ...authFields,
  OPENAI_API_KEY: z.string().min(1),
  OPENAI_BASE_URL: z.string().url().optional(),
  OPENAI_MODEL: z.string().min(1).default("gpt-4o-mini"),
  /** models a request may ask for by name, besides OPENAI_MODEL */
  OPENAI_MODELS: list.default([]),
  /** `name=model,...`: a name clients send, served by a listed model */
  OPENAI_MODEL_ALIASES: pairs("name=model", /./),
  /** true: a request naming an unlisted model gets 422; false: OPENAI_MODEL serves it */
  OPENAI_MODELS_STRICT: flag.default(false),
  /** how long to wait for the model: to its first byte, and between chunks */
  OPENAI_TIMEOUT_MS: int(1).default(60_000),
  OPENAI_MAX_RETRIES: int(0).default(2),
  /** the longest a reply may take, from its request's start; below the free plan's 150 s wall clock */
  REPLY_MAX_SECONDS: int(1).default(120),
  /** how often a streaming reply reads its row, to learn that its session was deleted (on any instance) */
  REPLY_POLL_MS: int(50).max(1000, {
    message:
      "at most 1000: a writer silent for 5 s is taken for dead, and it reports at every poll",
  }).default(1000),
  /**
   * how often, at most, a streaming reply appends its new text to its row (so another connection
   * can re-attach to it) and how often a re-attached stream reads it
   */
  REPLY_PERSIST_MS: int(20).max(1000, {
    message:
      "at most 1000: a writer silent for 5 s is taken for dead, and it reports at every write",
  }).default(250),
  SYSTEM_PROMPT: z.string().min(1).default("You are a helpful assistant."),
  /** tokens of history (system prompt included) sent to the model, by default and per model */
  HISTORY_TOKEN_BUDGET: int(100).default(16_000),
  HISTORY_TOKEN_BUDGETS: pairs("model=tokens", /^\d+$/),
  /** a short title written by the model after a session's first message */
  TITLE_GENERATION: flag.default(true),
  TITLE_MODEL: z.string().min(1).optional(),
  /** per-user quotas; 0 switches one off */
  QUOTA_MESSAGES_PER_DAY: int(0).default(1000),
  QUOTA_CONCURRENT_STREAMS: int(0).default(5),
  /**
   * messages a user may import per rolling 24 hours (POST /api/imports; an import calls no model,
   * so it does not count against QUOTA_MESSAGES_PER_DAY)
   */
  QUOTA_IMPORTED_MESSAGES_PER_DAY: int(0).default(20_000),
  /**
   * re-attached streams (GET …/stream) one user may hold open on one instance at once, and stops
   * (DELETE …/stream) one user may have waiting for their reply to end: each costs a share of a
   * poll; past it, 429
   */
  REATTACH_MAX_PER_USER: int(1).default(8),
  STOP_WAIT_MAX_PER_USER: int(1).default(4),
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
  /**
   * one import's bounds, besides MAX_BODY_BYTES: conversations, messages (nodes of any role, as
   * the file holds them) and characters of the text stored (each counted by the tokenizer)
   */
  IMPORT_MAX_CONVERSATIONS: int(1).default(500),
  IMPORT_MAX_MESSAGES: int(1).default(5_000),
  IMPORT_MAX_CHARACTERS: int(1).default(2_000_000),
  /** AI SDK clients resend the whole history with every message */
  MAX_BODY_BYTES: int(1024).default(4 * 1024 * 1024),
  /** where `Deno.serve` listens when run locally; Supabase's runtime ignores it */
  PORT: int(0).default(8000),
};

const Config = z.object(fields)
  .check(
    rule(["SUPABASE_JWKS", "SUPABASE_URL", "LEGACY_JWT_SECRET"], signingKeysRule),
    rule(["QUOTA_REPLY_SLOT_SECONDS", "REPLY_MAX_SECONDS"], replySlotOutlivesReply),
    rule(["OPENAI_MODEL", "OPENAI_MODELS", "OPENAI_MODEL_ALIASES"], aliasesNameListedModels),
  )
  .transform((e) => ({
    database: databaseConfig(e),
    auth: authSources(e),
    model: {
      apiKey: e.OPENAI_API_KEY,
      baseURL: e.OPENAI_BASE_URL,
      defaultModel: e.OPENAI_MODEL,
      allowedModels: new Set([e.OPENAI_MODEL, ...e.OPENAI_MODELS]),
      modelAliases: e.OPENAI_MODEL_ALIASES,
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
      reattachPerUser: e.REATTACH_MAX_PER_USER,
      stopWaitsPerUser: e.STOP_WAIT_MAX_PER_USER,
      importedMessagesPerDay: e.QUOTA_IMPORTED_MESSAGES_PER_DAY,
    },
    imports: {
      maxConversations: e.IMPORT_MAX_CONVERSATIONS,
      maxMessages: e.IMPORT_MAX_MESSAGES,
      maxCharacters: e.IMPORT_MAX_CHARACTERS,
    },
    streamProtocol: e.STREAM_PROTOCOL,
    corsOrigins: e.CORS_ORIGINS,
    maxBodyBytes: e.MAX_BODY_BYTES,
    port: e.PORT,
  }));

/** The variables as validated, before they become the Config. */
type Settings = z.output<z.ZodObject<typeof fields>>;
/** What the environment may hold (tests build one). */
export type Env = z.input<typeof Config>;
export type Config = z.output<typeof Config>;

export class ConfigError extends Error {}

export function parseConfig(env: Record<string, string | undefined>): Config {
  // a variable set to "" counts as unset
  const parsed = Config.safeParse(
    Object.fromEntries(Object.entries(env).filter(([, value]) => value !== "")),
  );
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
  throw new ConfigError(`invalid configuration:\n  ${problems.join("\n  ")}`);
}

/** The pooler when it is given: SUPABASE_DB_URL is the direct connection, few and shared on hosted. */
function databaseConfig(e: Settings) {
  const url = e.DB_POOLER_URL ?? e.SUPABASE_DB_URL;
  const pooled = e.DB_POOLER_URL !== undefined || new URL(url).port === "6543";
  return { url, poolMax: e.DB_POOL_MAX, prepare: e.DB_PREPARE ?? !pooled, ca: e.DB_CA_CERT };
}

function budgets(fallback: number, perModel: Map<string, string>): (model: string) => number {
  const table = new Map([...perModel].map(([model, tokens]) => [model, Number(tokens)]));
  return (model) => table.get(model) ?? fallback;
}

/**
 * A rule between variables, checked once each of them is valid on its own
 * (not only when every variable is), so that every problem is reported at once.
 */
function rule(variables: (keyof Settings)[], check: (e: Settings, ctx: z.RefinementCtx) => void) {
  return z.superRefine(check, {
    when: (payload) =>
      !payload.issues.some((i) => variables.includes(i.path?.[0] as keyof Settings)),
  });
}

/** A reply's handle must outlive the reply and its save, or a retry could call the model twice. */
function replySlotOutlivesReply(e: Settings, ctx: z.RefinementCtx) {
  if (e.QUOTA_REPLY_SLOT_SECONDS > e.REPLY_MAX_SECONDS + 30) return;
  ctx.addIssue({
    code: "custom",
    path: ["QUOTA_REPLY_SLOT_SECONDS"],
    message: "must be more than REPLY_MAX_SECONDS + 30 (the longest a reply and its save may take)",
  });
}

/** Aliases point at listed models only, so an alias can never open a model the operator did not list. */
function aliasesNameListedModels(e: Settings, ctx: z.RefinementCtx) {
  const listed = new Set([e.OPENAI_MODEL, ...e.OPENAI_MODELS]);
  for (const [name, model] of e.OPENAI_MODEL_ALIASES) {
    const message = listed.has(name)
      ? `${name} is a listed model; a request naming it gets it as named`
      : listed.has(model)
      ? undefined
      : `${name} points at ${model}, which is neither OPENAI_MODEL nor in OPENAI_MODELS`;
    if (message) ctx.addIssue({ code: "custom", path: ["OPENAI_MODEL_ALIASES"], message });
  }
}
