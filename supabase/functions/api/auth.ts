/**
 * Bearer tokens, verified on every kind of Supabase project:
 * - asymmetric signing keys (ES256, RS256): verified with jose against
 *   the keys in SUPABASE_JWKS, else the project's JWKS endpoint
 *   (`auth_keys.ts`);
 * - the legacy symmetric secret (HS256): verified locally with an `oct` key,
 *   one SUPABASE_JWKS carries (the CLI's local stack does) or LEGACY_JWT_SECRET
 *   (hosted projects never give functions the secret, so one that wants no
 *   call to Auth sets it itself); else by the project's Auth server
 *   (`auth_server.ts`);
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
 *
 * Here: the verified tokens remembered, and the middleware that asks for one;
 * one token is verified in `auth_verify.ts`.
 */
import { createMiddleware } from "hono/factory";
import * as jose from "jose";
import { LRUCache } from "lru-cache";
import {
  AuthServerRefusal,
  type AuthSources,
  createUncachedTokenVerifier,
  unauthorized,
  type UserClaims,
  type Verified,
  type VerifierOptions,
} from "./auth_verify.ts";
import type { ApiError } from "./errors.ts";

export type { AuthSources, UserClaims, VerifierOptions } from "./auth_verify.ts";

export type TokenVerifier = (token: string) => Promise<UserClaims>;

/** The most the verifier keeps of tokens it verified (refused ones: a quarter of that). */
const TOKEN_MEMORY_BYTES = 16 * 1024 * 1024;
/**
 * The most tokens of one user remembered at once (one per device or session, and
 * a refresh or two): past it their oldest goes, so one account minting tokens
 * cannot push other users' tokens out of the cache.
 */
const TOKENS_PER_USER = 8;
/**
 * The largest token looked at. Supabase's access tokens are about 1 KB (more with
 * large user metadata); the gateway in front of Auth refuses headers not much
 * larger, and every byte is decoded and remembered: a bigger one is refused first.
 */
export const MAX_TOKEN_BYTES = 8 * 1024;

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
  const bySubject = new Map<string, Set<string>>();
  const verified = new LRUCache<string, Verified>({
    max: 10_000,
    maxSize: TOKEN_MEMORY_BYTES,
    sizeCalculation: (_, token) => token.length * 2,
    dispose: ({ claims }, token) => {
      const mine = bySubject.get(claims.sub);
      mine?.delete(token);
      if (mine?.size === 0) bySubject.delete(claims.sub);
    },
  });
  const remember = (token: string, result: Verified, ttl: number) => {
    const mine = bySubject.get(result.claims.sub) ?? new Set();
    bySubject.set(result.claims.sub, mine);
    mine.add(token);
    verified.set(token, result, { ttl });
    // the user's oldest tokens go first (a Set iterates in insertion order)
    for (const oldest of mine) {
      if (mine.size <= TOKENS_PER_USER) break;
      verified.delete(oldest);
    }
  };
  const refused = new LRUCache<string, ApiError>({
    max: 10_000,
    maxSize: TOKEN_MEMORY_BYTES / 4,
    sizeCalculation: (_, token) => token.length,
  });
  const inflight = new Map<string, Promise<Verified>>();
  const { keys, verify } = createUncachedTokenVerifier(sources, opts);

  return async (token) => {
    if (token.length > MAX_TOKEN_BYTES) {
      throw unauthorized(`the token is too large (over ${MAX_TOKEN_BYTES} bytes)`);
    }
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
      if (ttl > 0) remember(token, result, ttl);
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
