/**
 * The settings that say where tokens are checked (SUPABASE_JWKS, SUPABASE_URL
 * and the API keys), as parts of the configuration's one schema (`config.ts`):
 * their fields, the rule between them, and the `auth` part of the Config.
 */
import { z } from "zod";

const Jwks = z.union([
  z.object({ keys: z.array(z.record(z.string(), z.unknown())) }),
  z.array(z.record(z.string(), z.unknown())).transform((keys) => ({ keys })),
]);

/** Key types that can verify a Supabase token: EC, RSA, OKP public keys, or the legacy secret (`oct`). */
const KEY_TYPES = new Set(["EC", "RSA", "OKP", "oct"]);

export const authFields = {
  /** inline JWKS (`{"keys":[...]}`) of the project's signing keys; `{"keys":[]}` on legacy-secret projects */
  SUPABASE_JWKS: z.string().default("").transform((text, ctx) => {
    if (!text.trim()) return { keys: [] };
    const parsed = Jwks.safeParse(tryJson(text.trim()));
    if (parsed.success) return parsed.data;
    ctx.addIssue({ code: "custom", message: 'expected a JSON Web Key Set, {"keys": [...]}' });
    return z.NEVER;
  }),
  /** the project's URL: its JWKS endpoint, and its Auth server for HS256 tokens */
  SUPABASE_URL: z.string().trim().url().optional(),
  /**
   * the `apikey` for the project's Auth server: a publishable key (`{"default": "sb_publishable_..."}`).
   * Read leniently, as before this was a schema: the platform sets it, so a shape we do not know
   * must not stop the function; SUPABASE_ANON_KEY (or no key) is used instead.
   */
  SUPABASE_PUBLISHABLE_KEYS: z.string().transform(publishableKey).optional(),
  /** or the legacy anon key, when there is no publishable key */
  SUPABASE_ANON_KEY: z.string().trim().optional(),
  /**
   * the project's legacy JWT secret (Dashboard, JWT Keys), for projects whose users still hold
   * HS256 tokens: set, they are verified here, with no call to the Auth server at all. Hosted
   * projects never give it to functions, and SUPABASE_* names are reserved, hence its own name.
   */
  LEGACY_JWT_SECRET: z.string().min(
    32,
    "too short: the project's JWT secret, 32 characters or more",
  )
    .optional(),
};

type AuthEnv = z.output<z.ZodObject<typeof authFields>>;

/**
 * Inline keys are used first; SUPABASE_URL adds the project's JWKS endpoint
 * and its Auth server. A missing or empty SUPABASE_JWKS is fine with
 * SUPABASE_URL (hosted always sets it); with neither there is nothing to
 * check a token against.
 */
export function signingKeysRule(e: AuthEnv, ctx: z.RefinementCtx) {
  const inline = e.SUPABASE_JWKS.keys.some((k) => KEY_TYPES.has(String(k.kty)));
  if (!e.SUPABASE_URL && !inline && !e.LEGACY_JWT_SECRET) {
    ctx.addIssue({
      code: "custom",
      path: ["SUPABASE_JWKS"],
      message: "no signing keys to verify tokens with, and no SUPABASE_URL to fetch them from: " +
        "set SUPABASE_JWKS to the project's JWKS, or SUPABASE_URL (Supabase sets both)",
    });
  }
}

/** Where tokens get checked (read by `auth.ts`). */
export function authSources(e: AuthEnv) {
  return {
    /** inline keys (SUPABASE_JWKS, and the legacy secret as an `oct` key); may be empty */
    jwks: e.LEGACY_JWT_SECRET
      ? { keys: [...e.SUPABASE_JWKS.keys, legacySecretKey(e.LEGACY_JWT_SECRET)] }
      : e.SUPABASE_JWKS,
    /** the project's URL: its JWKS endpoint and Auth server */
    url: e.SUPABASE_URL || undefined,
    /** publishable or anon key, the `apikey` the project's gateway asks for */
    apiKey: e.SUPABASE_PUBLISHABLE_KEYS ?? (e.SUPABASE_ANON_KEY || undefined),
  };
}

/** The legacy secret as Auth signs with it: its UTF-8 bytes, as a JWK of type `oct`. */
function legacySecretKey(secret: string): Record<string, unknown> {
  const bytes = new TextEncoder().encode(secret);
  const k = btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_")
    .replace(/=+$/, "");
  return { kty: "oct", k, alg: "HS256" };
}

/** SUPABASE_PUBLISHABLE_KEYS is a JSON map of name to key; the platform names its own `default`. */
function publishableKey(text: string): string | undefined {
  const keys = tryJson(text);
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
