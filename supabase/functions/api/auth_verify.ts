/**
 * One bearer token verified, with no memory of earlier ones (`auth.ts`
 * remembers): by its signature with jose against the JWKS's keys
 * (`auth_keys.ts`), or for an HS256 token no key here can check, by the
 * project's Auth server (`auth_server.ts`). Whatever verified it, only a
 * signed-in user's token (role, UUID subject, expiry, audience) passes.
 */
import * as jose from "jose";
import { createSigningKeys, type SigningKeys } from "./auth_keys.ts";
import {
  type AuthServerCheck,
  type AuthServerOptions,
  createAuthServerCheck,
  TokenRejected,
} from "./auth_server.ts";
import type { Claims } from "./database.ts";
import { ApiError } from "./errors.ts";

export type UserClaims = Claims & { role: "authenticated"; sub: string };

/** Where tokens are checked (the `auth` part of the configuration). */
export interface AuthSources {
  /** inline keys (SUPABASE_JWKS); may be empty */
  jwks: { keys: Record<string, unknown>[] };
  /** the project's URL: its JWKS endpoint and Auth server */
  url?: string;
  /** publishable or anon key, the `apikey` the project's gateway asks for */
  apiKey?: string;
}

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
  /**
   * Whether the user a token names exists and, when it names a session, that session is
   * open (`signers.ts`): asked before the project's Auth server is, so a forged token that
   * names no live signer costs no call to Auth. Without it, every well-formed token is asked.
   */
  liveSigner?: (userId: string, sessionId: string | null) => Promise<boolean>;
  /** the Auth server's rations (`auth_server.ts`) */
  authServer?: Pick<
    AuthServerOptions,
    "breakerFailures" | "maxInFlight" | "queueWaitMs" | "refusedBackoffMs"
  >;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface Verified {
  claims: UserClaims;
  /** the `kid` of the key from the JWKS that verified it, if one did */
  kid?: string;
}

/** A 401 the Auth server decided: worth remembering, unlike a 503. */
export class AuthServerRefusal extends Error {
  constructor(readonly response: ApiError) {
    super(String(response.detail));
  }
}

/**
 * `verify` checks one token, every time it is called; `keys` are the signing
 * keys it checks against, which the cache asks whether a key is still published.
 */
export function createUncachedTokenVerifier(
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
    ? createAuthServerCheck({
      url: sources.url,
      apiKey: sources.apiKey,
      ...upstream,
      ...opts.authServer,
    })
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
          const signer = await liveSigner(opts, payload);
          if (await askAuthServer(authServer, token, signer) !== payload.sub?.toLowerCase()) {
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

/**
 * The signer a token claims (its user and session), checked against the database
 * when the verifier can: a forger who cannot name a live session of a real user
 * is refused here, before Auth is asked. Returns the signer's key for Auth's rations.
 */
async function liveSigner(opts: VerifierOptions, payload: jose.JWTPayload): Promise<string> {
  const user = String(payload.sub).toLowerCase();
  const claimed = payload.session_id;
  if (claimed !== undefined && (typeof claimed !== "string" || !UUID.test(claimed))) {
    throw new AuthServerRefusal(unauthorized("the token's session is not a session id"));
  }
  const session = claimed === undefined ? null : claimed.toLowerCase();
  if (opts.liveSigner && !await opts.liveSigner(user, session)) {
    throw new AuthServerRefusal(unauthorized("the token names no open session of a user"));
  }
  return `${user}/${session ?? ""}`;
}

async function askAuthServer(
  check: AuthServerCheck,
  token: string,
  signer: string,
): Promise<string> {
  try {
    return (await check(token, signer)).toLowerCase();
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
