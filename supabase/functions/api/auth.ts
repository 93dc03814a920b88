/**
 * Bearer tokens, verified on every kind of Supabase project:
 * - asymmetric signing keys (ES256, RS256): verified here with jose against
 *   the keys in SUPABASE_JWKS, else the project's JWKS endpoint
 *   (`auth_keys.ts`);
 * - the legacy symmetric secret (HS256): verified here when SUPABASE_JWKS
 *   carries it as an `oct` key (the CLI's local stack does), else by the
 *   project's Auth server, which hosted projects need: the secret is never
 *   given to functions there (`auth_server.ts`);
 * - mid-migration, both kinds at once.
 * Only `role: authenticated` tokens naming a user (`sub`, a UUID) with an
 * expiry and `aud: authenticated` are users, however they were verified.
 *
 * Why not supabase-js `auth.getClaims()`, the platform's own way: see
 * docs/auth.md (it refetches the JWKS for every unknown `kid`, asks Auth again for
 * every HS256 request, checks neither role, audience nor subject, and adds
 * about 0.8 MB to the bundle).
 *
 * Why not `@supabase/server`: its Hono adapter needs a project URL and
 * placeholder API keys even in user mode, builds two supabase-js clients per
 * request (an unpinned peer dependency), and leaves role, `exp` and the shape
 * of `sub` unchecked; all of which we would have had to wrap anyway.
 */
import { createMiddleware } from "hono/factory";
import * as jose from "jose";
import { LRUCache } from "lru-cache";
import { createSigningKeys, type SigningKeys } from "./auth_keys.ts";
import { type AuthServerCheck, createAuthServerCheck, TokenRejected } from "./auth_server.ts";
import type { AuthSources } from "./config.ts";
import type { Claims } from "./database.ts";
import { ApiError } from "./errors.ts";

export type UserClaims = Claims & { role: "authenticated"; sub: string };

export type TokenVerifier = (token: string) => Promise<UserClaims>;

export type { AuthSources } from "./config.ts";

export interface VerifierOptions {
  clockToleranceSeconds?: number;
  /** JWKS endpoint: cache age, least time between refetches for unknown kids, fetch timeout */
  jwksCacheMaxAgeMs?: number;
  jwksCooldownMs?: number;
  /** timeout of a JWKS fetch or an Auth server call */
  upstreamTimeoutMs?: number;
  /** after the endpoint or Auth failed, how long to answer without trying them again */
  upstreamRetryAfterMs?: number;
  log?: (message: string, error?: unknown) => void;
}

/** The most the verifier keeps of tokens it verified (refused ones: a quarter of that). */
const TOKEN_MEMORY_BYTES = 16 * 1024 * 1024;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

interface Verified {
  claims: UserClaims;
  /** the `kid` of the key from the JWKS that verified it, if one did */
  kid?: string;
}

/**
 * Verifies tokens, remembering the ones that passed until they expire, never
 * longer: a client sends the same token with every request, and checking it
 * is most of what a cheap request costs (or a call to Auth). Keyed by the
 * whole token, signature included, so only a byte-identical token hits.
 * Concurrent requests with the same new token share one verification, and
 * tokens Auth refused are remembered too, so a retrying client does not
 * call Auth again and again.
 */
export function createTokenVerifier(
  sources: AuthSources,
  opts: VerifierOptions = {},
): TokenVerifier {
  // Bounded in bytes as well as in count: a token carries the user's own metadata (set with
  // auth.updateUser, reissued at every refresh), so 10,000 of a user's tokens could hold
  // gigabytes in a 256 MB worker. A token and its decoded claims cost about twice its length.
  const verified = new LRUCache<string, Verified>({
    max: 10_000,
    maxSize: TOKEN_MEMORY_BYTES,
    sizeCalculation: (_, token) => token.length * 2,
  });
  const refused = new LRUCache<string, ApiError>({
    max: 10_000,
    maxSize: TOKEN_MEMORY_BYTES / 4,
    sizeCalculation: (_, token) => token.length,
  });
  const inflight = new Map<string, Promise<Verified>>();
  const { keys, verify } = createUncachedTokenVerifier(sources, opts);

  return async (token) => {
    const known = verified.get(token);
    // a key a refetch dropped (rotated out, revoked) takes its tokens with it
    if (known && keys.stillPublished(known.kid)) return known.claims;
    if (known) verified.delete(token);
    const refusal = refused.get(token);
    if (refusal) throw refusal;

    let pending = inflight.get(token);
    if (!pending) {
      pending = verify(token).finally(() => inflight.delete(token));
      inflight.set(token, pending);
    }
    try {
      const result = await pending;
      const ttl = (result.claims.exp as number) * 1000 - Date.now();
      if (ttl > 0) verified.set(token, result, { ttl });
      return result.claims;
    } catch (error) {
      if (error instanceof AuthServerRefusal) {
        const exp = jose.decodeJwt(token).exp;
        const ttl = typeof exp === "number" ? exp * 1000 - Date.now() : 0;
        if (ttl > 0) refused.set(token, error.response, { ttl });
        throw error.response;
      }
      throw error;
    }
  };
}

/** A 401 the Auth server decided: worth remembering, unlike a 503. */
class AuthServerRefusal extends Error {
  constructor(readonly response: ApiError) {
    super(String(response.detail));
  }
}

function createUncachedTokenVerifier(
  sources: AuthSources,
  opts: VerifierOptions,
): { keys: SigningKeys; verify: (token: string) => Promise<Verified> } {
  const all = sources.jwks.keys as jose.JWK[];
  const sharedSecrets = all.filter((k) => k.kty === "oct");
  const upstream = {
    timeoutMs: opts.upstreamTimeoutMs,
    retryAfterMs: opts.upstreamRetryAfterMs,
    log: opts.log,
  };
  const keys = createSigningKeys(
    all.filter((k) => k.kty !== "oct"),
    sources.url
      ? {
        url: new URL("auth/v1/.well-known/jwks.json", withSlash(sources.url)),
        headers: sources.apiKey ? { apikey: sources.apiKey } : undefined,
        cacheMaxAgeMs: opts.jwksCacheMaxAgeMs,
        cooldownMs: opts.jwksCooldownMs,
        ...upstream,
      }
      : undefined,
  );
  const authServer: AuthServerCheck | undefined = sources.url
    ? createAuthServerCheck({ url: sources.url, apiKey: sources.apiKey, ...upstream })
    : undefined;
  const options: jose.JWTVerifyOptions = {
    audience: "authenticated",
    requiredClaims: ["exp", "sub"],
    clockTolerance: opts.clockToleranceSeconds ?? 5,
  };

  // HS256 only with a shared secret from the JWKS: never with a public key (algorithm confusion)
  const sharedSecret = (kid: string | undefined) =>
    sharedSecrets.find((k) => !kid || !k.kid || k.kid === kid);
  const hs256Key: jose.JWTVerifyGetKey = async (header) => {
    const secret = sharedSecret(header.kid);
    if (!secret) throw new jose.errors.JWKSNoMatchingKey();
    return await jose.importJWK({ ...secret, alg: "HS256" }, "HS256");
  };

  return {
    keys,
    async verify(token) {
      let payload: jose.JWTPayload;
      let header: jose.ProtectedHeaderParameters;
      try {
        header = jose.decodeProtectedHeader(token);
        if (header.alg === "HS256" && !sharedSecret(header.kid) && authServer) {
          payload = userClaims(claimsOnly(token, options));
          if (await askAuthServer(authServer, token) !== payload.sub?.toLowerCase()) {
            throw new AuthServerRefusal(unauthorized("the Auth server vouches for another user"));
          }
        } else {
          ({ payload } = header.alg === "HS256"
            ? await jose.jwtVerify(token, hs256Key, { ...options, algorithms: ["HS256"] })
            : await jose.jwtVerify(token, keys.getKey, {
              ...options,
              algorithms: ["ES256", "RS256"],
            }));
        }
      } catch (error) {
        if (error instanceof ApiError || error instanceof AuthServerRefusal) throw error;
        throw unauthorized(reason(error));
      }
      return {
        claims: userClaims(payload),
        kid: header.alg === "HS256" ? undefined : header.kid,
      };
    },
  };
}

async function askAuthServer(check: AuthServerCheck, token: string): Promise<string> {
  try {
    return (await check(token)).toLowerCase();
  } catch (error) {
    if (error instanceof TokenRejected) {
      throw new AuthServerRefusal(unauthorized("the project's Auth server rejected the token"));
    }
    throw error;
  }
}

/**
 * The claims of a token whose signature someone else checks, validated by
 * jose exactly as it validates a signed token's (exp, nbf, aud, required
 * claims, clock tolerance): the token is re-framed as an unsecured JWT only
 * to reach that validation. Done before asking Auth, so an expired token or
 * one for another audience costs no call.
 */
function claimsOnly(token: string, options: jose.JWTVerifyOptions): jose.JWTPayload {
  const [, payload] = token.split(".");
  const unsecuredHeader = jose.base64url.encode(JSON.stringify({ alg: "none" }));
  return jose.UnsecuredJWT.decode(`${unsecuredHeader}.${payload}.`, options).payload;
}

/** A user's claims: role authenticated and a UUID subject, whatever verified the signature. */
function userClaims(payload: jose.JWTPayload): UserClaims {
  if (payload.role !== "authenticated") {
    throw unauthorized(
      `the token is not a signed-in user's (role ${JSON.stringify(payload.role)})`,
    );
  }
  if (typeof payload.sub !== "string" || !UUID.test(payload.sub)) {
    throw unauthorized("the token's subject is not a user id");
  }
  return { ...payload, role: "authenticated", sub: payload.sub.toLowerCase() } as UserClaims;
}

function withSlash(url: string): string {
  return url.endsWith("/") ? url : `${url}/`;
}

function reason(error: unknown): string {
  if (error instanceof jose.errors.JWTExpired) return "the token has expired";
  if (error instanceof jose.errors.JWTClaimValidationFailed) {
    return `the token's ${JSON.stringify(error.claim)} claim is not acceptable`;
  }
  if (error instanceof jose.errors.JWKSNoMatchingKey) {
    return "the token was not signed by a known key";
  }
  if (error instanceof jose.errors.JWSSignatureVerificationFailed) {
    return "the token's signature does not verify";
  }
  if (error instanceof jose.errors.JOSEAlgNotAllowed) {
    return "the token's signing algorithm is not accepted";
  }
  return "the token is malformed";
}

/**
 * 401 with its challenge (RFC 6750): a bare `Bearer` when no token came, and
 * `error="invalid_token"` when the one that came is no good.
 */
export function unauthorized(detail: string, tokenSent = true): ApiError {
  return new ApiError(401, `Not authenticated: ${detail}`, {
    "www-authenticate": tokenSent ? 'Bearer error="invalid_token"' : "Bearer",
  });
}

/** Rejects the request with 401 unless it carries a valid user token; puts the claims on the context. */
export function requireUser(verify: TokenVerifier) {
  return createMiddleware<{ Variables: { claims: UserClaims } }>(async (c, next) => {
    const header = c.req.header("authorization");
    if (!header) throw unauthorized("no bearer token", false);
    const match = /^Bearer +([A-Za-z0-9_.~+/=-]+) *$/i.exec(header);
    if (!match) throw unauthorized("the Authorization header is not a bearer token");
    c.set("claims", await verify(match[1]!));
    await next();
  });
}
