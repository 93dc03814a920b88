/**
 * Configuration, read from the environment once at start and validated:
 * a bad value fails the start with a message naming the variable.
 */
import { z } from "zod";

const list = z.string().transform((s) => s.split(",").map((x) => x.trim()).filter(Boolean));
const int = (min: number) => z.coerce.number().int().min(min);

const Env = z.object({
  SUPABASE_DB_URL: z.string().url(),
  /** 1 for the transaction pooler would serialise a busy function; a handful per instance is plenty */
  DB_POOL_MAX: int(1).default(5),
  /** the transaction pooler (port 6543) cannot keep prepared statements: set false there */
  DB_PREPARE: z.enum(["true", "false"]).default("true").transform((v) => v === "true"),
  /** inline JWKS (`{"keys":[...]}`) of the project's signing keys */
  SUPABASE_JWKS: z.string().min(1),
  OPENAI_API_KEY: z.string().min(1),
  OPENAI_BASE_URL: z.string().url().optional(),
  OPENAI_MODEL: z.string().min(1).default("gpt-4o-mini"),
  /** models a request may ask for by name, besides OPENAI_MODEL */
  OPENAI_MODELS: list.default([]),
  /** how long to wait for the model: to its first byte, and between chunks */
  OPENAI_TIMEOUT_MS: int(1).default(60_000),
  OPENAI_MAX_RETRIES: int(0).default(2),
  /** the longest a reply may take, from its request's start; below the free plan's 150 s wall clock */
  REPLY_MAX_SECONDS: int(1).default(120),
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
  /** signs page cursors; defaults to a key derived from SUPABASE_DB_URL (secret and the same on every instance) */
  CURSOR_SECRET: z.string().min(16).optional(),
  /** the reply protocol when a request names none: text | data | sse */
  STREAM_PROTOCOL: z.enum(["text", "data", "sse"]).default("text"),
  /** `*`, or a comma-separated list of allowed origins */
  CORS_ORIGINS: list.default(["*"]),
  /** AI SDK clients resend the whole history with every message */
  MAX_BODY_BYTES: int(1024).default(4 * 1024 * 1024),
  /** where `Deno.serve` listens when run locally; Supabase's runtime ignores it */
  PORT: int(0).default(8000),
});

export type Env = z.input<typeof Env>;

export interface Config {
  database: { url: string; poolMax: number; prepare: boolean };
  jwks: { keys: Record<string, unknown>[] };
  model: {
    apiKey: string;
    baseURL: string | undefined;
    defaultModel: string;
    allowedModels: ReadonlySet<string>;
    timeoutMs: number;
    maxRetries: number;
    replyMaxMs: number;
    systemPrompt: string;
    historyBudget: (model: string) => number;
    titles: { enabled: boolean; model: string };
  };
  cursorSecret: string;
  quotas: { messagesPerDay: number; concurrentStreams: number };
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
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n  ${problems.join("\n  ")}`);
  }
  const e = parsed.data;
  return {
    database: { url: e.SUPABASE_DB_URL, poolMax: e.DB_POOL_MAX, prepare: e.DB_PREPARE },
    jwks: parseJwks(e.SUPABASE_JWKS),
    model: {
      apiKey: e.OPENAI_API_KEY,
      baseURL: e.OPENAI_BASE_URL,
      defaultModel: e.OPENAI_MODEL,
      allowedModels: new Set([e.OPENAI_MODEL, ...e.OPENAI_MODELS]),
      timeoutMs: e.OPENAI_TIMEOUT_MS,
      maxRetries: e.OPENAI_MAX_RETRIES,
      replyMaxMs: e.REPLY_MAX_SECONDS * 1000,
      systemPrompt: e.SYSTEM_PROMPT,
      historyBudget: budgets(e.HISTORY_TOKEN_BUDGET, e.HISTORY_TOKEN_BUDGETS),
      titles: { enabled: e.TITLE_GENERATION, model: e.TITLE_MODEL ?? e.OPENAI_MODEL },
    },
    cursorSecret: e.CURSOR_SECRET ?? e.SUPABASE_DB_URL,
    quotas: {
      messagesPerDay: e.QUOTA_MESSAGES_PER_DAY,
      concurrentStreams: e.QUOTA_CONCURRENT_STREAMS,
    },
    streamProtocol: e.STREAM_PROTOCOL,
    corsOrigins: e.CORS_ORIGINS,
    maxBodyBytes: e.MAX_BODY_BYTES,
    port: e.PORT,
  };
}

const Jwks = z.union([
  z.object({ keys: z.array(z.record(z.string(), z.unknown())).min(1) }),
  z.array(z.record(z.string(), z.unknown())).min(1).transform((keys) => ({ keys })),
]);

function parseJwks(text: string): Config["jwks"] {
  try {
    return Jwks.parse(JSON.parse(text));
  } catch {
    throw new ConfigError('SUPABASE_JWKS: expected a JSON Web Key Set, {"keys": [...]}');
  }
}

function budgets(fallback: number, perModel: string[]): (model: string) => number {
  const table = new Map(perModel.map((entry) => {
    const at = entry.lastIndexOf("=");
    return [entry.slice(0, at).trim(), Number(entry.slice(at + 1))] as const;
  }));
  return (model) => table.get(model) ?? fallback;
}
