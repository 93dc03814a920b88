/**
 * Bearer tokens verified locally against the project's JWKS (no network call
 * per request), with jose. Supabase signs user tokens with ES256 or RS256
 * signing keys; legacy projects sign with HS256, whose shared secret a JWKS
 * carries as an `oct` key. Only `role: authenticated` tokens naming a user
 * (`sub`, a UUID) with an expiry are users.
 *
 * Why not `@supabase/server`: its Hono adapter needs a project URL and
 * placeholder API keys even in user mode, builds two supabase-js clients per
 * request (an unpinned peer dependency), and leaves role, `exp` and the shape
 * of `sub` unchecked; all of which we would have had to wrap anyway.
 */
import { createMiddleware } from "hono/factory";
import * as jose from "jose";
import { LRUCache } from "lru-cache";
import type { Claims } from "./database.ts";
import { ApiError } from "./errors.ts";

export type UserClaims = Claims & { role: "authenticated"; sub: string };

export type TokenVerifier = (token: string) => Promise<UserClaims>;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Verifies tokens, remembering the ones that passed until they expire: a
 * client sends the same token with every request, and checking its
 * signature is most of what a cheap request costs. Keyed by the whole token,
 * signature included, so only a byte-identical token hits.
 */
export function createTokenVerifier(
  jwks: { keys: Record<string, unknown>[] },
  opts: { clockToleranceSeconds?: number } = {},
): TokenVerifier {
  const verified = new LRUCache<string, UserClaims>({ max: 10_000 });
  const verify = createUncachedTokenVerifier(jwks, opts.clockToleranceSeconds ?? 5);
  return async (token) => {
    const known = verified.get(token);
    if (known) return known;
    const claims = await verify(token);
    const ttl = (claims.exp as number) * 1000 - Date.now();
    if (ttl > 0) verified.set(token, claims, { ttl });
    return claims;
  };
}

function createUncachedTokenVerifier(
  jwks: { keys: Record<string, unknown>[] },
  clockTolerance: number,
): TokenVerifier {
  const keys = jwks.keys as jose.JWK[];
  const signingKeys = jose.createLocalJWKSet({ keys: keys.filter((k) => k.kty !== "oct") });
  const sharedSecrets = keys.filter((k) => k.kty === "oct");
  const options: jose.JWTVerifyOptions = {
    audience: "authenticated",
    requiredClaims: ["exp", "sub"],
    clockTolerance,
  };

  // HS256 only with a shared secret from the JWKS: never with a public key (algorithm confusion)
  const hs256Key: jose.JWTVerifyGetKey = async (header) => {
    const secret = sharedSecrets.find((k) => !header.kid || !k.kid || k.kid === header.kid);
    if (!secret) throw new jose.errors.JWKSNoMatchingKey();
    return await jose.importJWK({ ...secret, alg: "HS256" }, "HS256");
  };

  return async (token) => {
    let payload: jose.JWTPayload;
    try {
      const { alg } = jose.decodeProtectedHeader(token);
      ({ payload } = alg === "HS256"
        ? await jose.jwtVerify(token, hs256Key, { ...options, algorithms: ["HS256"] })
        : await jose.jwtVerify(token, signingKeys, { ...options, algorithms: ["ES256", "RS256"] }));
    } catch (error) {
      throw unauthorized(reason(error));
    }
    if (payload.role !== "authenticated") {
      throw unauthorized(
        `the token is not a signed-in user's (role ${JSON.stringify(payload.role)})`,
      );
    }
    if (typeof payload.sub !== "string" || !UUID.test(payload.sub)) {
      throw unauthorized("the token's subject is not a user id");
    }
    return { ...payload, role: "authenticated", sub: payload.sub.toLowerCase() } as UserClaims;
  };
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
