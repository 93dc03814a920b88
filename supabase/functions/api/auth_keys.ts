/**
 * Where the public keys of asymmetrically signed tokens (ES256, RS256) come
 * from: the keys given inline in SUPABASE_JWKS first, with no network call;
 * a `kid` they do not know is looked up at the project's JWKS endpoint with
 * jose's `createRemoteJWKSet`, which caches the set (10 minutes), refetches
 * it for an unknown `kid` at most once per cooldown (30 s), and lets
 * concurrent lookups share one fetch.
 *
 * Around jose, by hand (it has neither): when the endpoint cannot be reached
 * the last set fetched keeps serving, and after a failed fetch no new one is
 * tried for `retryAfterMs`, so an outage costs one fetch per interval rather
 * than one per request.
 */
import * as jose from "jose";
import { authUnavailable } from "./errors.ts";

export interface SigningKeys {
  getKey: jose.JWTVerifyGetKey;
  /**
   * Whether a key that verified a token is still published: inline keys
   * always are; a key from the endpoint stops being so when a refetch drops
   * it (a rotated-out, revoked key).
   */
  stillPublished(kid: string | undefined): boolean;
}

export interface RemoteKeysOptions {
  url: URL;
  headers?: Record<string, string>;
  /** how long a fetched set is used before it is fetched again */
  cacheMaxAgeMs?: number;
  /** the least time between two fetches caused by unknown `kid`s */
  cooldownMs?: number;
  timeoutMs?: number;
  /** after a failed fetch, how long to answer from the last set (or 503) without trying again */
  retryAfterMs?: number;
  log?: (message: string, error?: unknown) => void;
}

export function createSigningKeys(inline: jose.JWK[], remote?: RemoteKeysOptions): SigningKeys {
  const inlineSet = jose.createLocalJWKSet({ keys: inline });
  const inlineKids = new Set(inline.map((k) => k.kid));
  if (!remote) {
    return { getKey: inlineSet, stillPublished: () => true };
  }

  const endpoint = jose.createRemoteJWKSet(remote.url, {
    headers: remote.headers,
    cacheMaxAge: remote.cacheMaxAgeMs ?? 10 * 60_000,
    cooldownDuration: remote.cooldownMs ?? 30_000,
    timeoutDuration: remote.timeoutMs ?? 5_000,
  });
  const retryAfterMs = remote.retryAfterMs ?? 5_000;
  let failedAt = -Infinity;

  const fromEndpoint: jose.JWTVerifyGetKey = async (header, token) => {
    if (Date.now() - failedAt >= retryAfterMs) {
      try {
        return await endpoint(header, token);
      } catch (error) {
        if (!isFetchFailure(error)) throw error;
        failedAt = Date.now();
        remote.log?.("the project's JWKS endpoint could not be read", error);
      }
    }
    const last = endpoint.jwks();
    try {
      if (last) return await jose.createLocalJWKSet(last)(header, token);
    } catch (error) {
      // a kid the last set does not know may have been rotated in: it cannot be checked now
      if (!(error instanceof jose.errors.JWKSNoMatchingKey)) throw error;
    }
    throw authUnavailable(Math.ceil(retryAfterMs / 1000));
  };

  return {
    async getKey(header, token) {
      try {
        return await inlineSet(header, token);
      } catch (error) {
        if (!(error instanceof jose.errors.JWKSNoMatchingKey)) throw error;
      }
      return await fromEndpoint(header, token);
    },
    stillPublished(kid) {
      if (kid === undefined || inlineKids.has(kid)) return true;
      return endpoint.jwks()?.keys.some((k) => k.kid === kid) ?? false;
    },
  };
}

/**
 * The endpoint could not be read (network error, timeout, a status other
 * than 200, a body that is no key set), as opposed to a token the keys do not
 * verify: jose throws the bare JOSEError for a bad status or body.
 */
function isFetchFailure(error: unknown): boolean {
  if (!(error instanceof jose.errors.JOSEError)) return true;
  return error instanceof jose.errors.JWKSTimeout ||
    error instanceof jose.errors.JWKSInvalid ||
    error.code === jose.errors.JOSEError.code;
}
