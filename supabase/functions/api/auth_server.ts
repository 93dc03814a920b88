/**
 * Tokens signed with the project's symmetric secret (HS256) can only be
 * checked by the project's Auth server when that secret is not given to the
 * function, as on hosted projects: Supabase never publishes it, and
 * SUPABASE_JWKS then holds only public keys (or none: `{"keys":[]}`).
 *
 * One call, the one supabase-js `auth.getUser(jwt)` makes: GET
 * /auth/v1/user with the token as bearer and the project's API key as
 * `apikey` (the hosted gateway refuses requests without one). Auth answers
 * 200 with the user when the signature, expiry, user and session check out,
 * and 4xx with an `error_code` otherwise (403 bad_jwt, user_not_found,
 * session_not_found; 400 for a sub that is no UUID): supabase/auth
 * `internal/api/auth.go`.
 *
 * Every well-formed HS256 token costs a call before it can be refused, so the
 * calls are rationed, each rule scoped to what it protects (docs/auth.md):
 * - at most `maxInFlight` calls at once per instance; past it a token waits
 *   briefly, in order, for a slot, and only then gets 503;
 * - one call at a time per signer (user and session, `key`), and after Auth
 *   refused one of its tokens, one call per `refusedBackoffMs`: a forger who
 *   holds a real session of their own cannot spend more than their share;
 * - a failure that says nothing about the token (a 5xx, a 429, the gateway
 *   refusing our API key, a network error or timeout) is a 503 for that token
 *   alone. Only `breakerFailures` failures in a row open the breaker: then
 *   Auth gets `retryAfterMs` of rest (or what its 429 asked for) before one
 *   probe; a single bad answer never blocks other tokens.
 */
import { ApiError, authUnavailable } from "./errors.ts";

export interface AuthServerOptions {
  /** the project's URL (SUPABASE_URL) */
  url: string;
  /** publishable or anon key, sent as `apikey` */
  apiKey?: string;
  timeoutMs?: number;
  /** once the breaker opens, how long Auth rests before a probe */
  retryAfterMs?: number;
  /** failures in a row that open the breaker */
  breakerFailures?: number;
  /** calls to Auth in flight at once, per instance */
  maxInFlight?: number;
  /** how long a token waits for a free slot before its 503, and how many may wait */
  queueWaitMs?: number;
  maxQueued?: number;
  /** after Auth refused a signer's token, the least time between calls for that signer */
  refusedBackoffMs?: number;
  log?: (message: string, error?: unknown) => void;
}

/**
 * Resolves with the user id Auth vouches for; rejects with `TokenRejected` or a
 * 503 ApiError. `key` names the signer the token claims (user and session).
 */
export type AuthServerCheck = (token: string, key: string) => Promise<string>;

export class TokenRejected extends Error {}

/** The gateway refused the request itself for its size: only this token is at fault. */
const TOKEN_TOO_LARGE = new Set([400, 413, 431]);

export function createAuthServerCheck(opts: AuthServerOptions): AuthServerCheck {
  const endpoint = new URL("auth/v1/user", opts.url.endsWith("/") ? opts.url : `${opts.url}/`);
  const timeoutMs = opts.timeoutMs ?? 5_000;
  const retryAfterMs = opts.retryAfterMs ?? 5_000;
  const breakerFailures = opts.breakerFailures ?? 3;
  const maxInFlight = opts.maxInFlight ?? 8;
  const queueWaitMs = opts.queueWaitMs ?? 1_000;
  const maxQueued = opts.maxQueued ?? 64;
  const refusedBackoffMs = opts.refusedBackoffMs ?? 5_000;
  const slots = new Slots(maxInFlight, maxQueued);
  /** signers with a call in flight */
  const busy = new Set<string>();
  /** signers Auth refused lately: when they may be tried again */
  const refusedUntil = new Map<string, number>();
  let failuresInARow = 0;
  let restUntil = 0;

  const failed = (message: string, error?: unknown, restMs = retryAfterMs) => {
    opts.log?.(message, error);
    if (++failuresInARow >= breakerFailures) restUntil = Date.now() + restMs;
    return authUnavailable(Math.ceil(restMs / 1000));
  };
  const secondsUntil = (at: number) => Math.max(1, Math.ceil((at - Date.now()) / 1000));

  return async (token, key) => {
    const now = Date.now();
    if (now < restUntil) throw authUnavailable(secondsUntil(restUntil));
    const refused = refusedUntil.get(key);
    if (refused !== undefined && now < refused) throw authUnavailable(secondsUntil(refused));
    if (refused !== undefined) refusedUntil.delete(key);
    if (busy.has(key)) throw authUnavailable(1);
    busy.add(key);
    try {
      if (!await slots.take(queueWaitMs)) throw authUnavailable(1);
      try {
        return await ask(token);
      } finally {
        slots.give();
      }
    } catch (error) {
      if (error instanceof TokenRejected) {
        refusedUntil.set(key, Date.now() + refusedBackoffMs);
        // bounded: the oldest entries go first (a Map keeps insertion order)
        for (const old of refusedUntil.keys()) {
          if (refusedUntil.size <= 10_000) break;
          refusedUntil.delete(old);
        }
      }
      throw error;
    } finally {
      busy.delete(key);
    }
  };

  async function ask(token: string): Promise<string> {
    let response: Response;
    try {
      response = await fetch(endpoint, {
        headers: {
          authorization: `Bearer ${token}`,
          ...(opts.apiKey ? { apikey: opts.apiKey } : {}),
          accept: "application/json",
        },
        redirect: "manual",
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (error) {
      throw failed("the project's Auth server could not be reached", error);
    }
    const body = await response.json().catch(() => undefined) as
      | { id?: unknown; error_code?: unknown; code?: unknown; message?: unknown }
      | undefined;
    if (response.status === 200 && typeof body?.id === "string") {
      failuresInARow = 0;
      return body.id;
    }
    // Auth's own refusals carry an error code; a gateway's do not
    const authCode = typeof body?.error_code === "string" || typeof body?.code === "string";
    if (response.status >= 400 && response.status < 500 && response.status !== 429 && authCode) {
      failuresInARow = 0;
      throw new TokenRejected("the Auth server did not accept the token");
    }
    if (TOKEN_TOO_LARGE.has(response.status) && !authCode) {
      // the gateway would not pass this request on: this token can never be checked
      throw new ApiError(401, "Not authenticated: the token could not be checked", {
        "www-authenticate": 'Bearer error="invalid_token"',
      });
    }
    const asked = Number(response.headers.get("retry-after"));
    throw failed(
      `the project's Auth server answered ${response.status}`,
      typeof body?.message === "string" ? body.message : "",
      response.status === 429 && asked > 0 ? asked * 1000 : retryAfterMs,
    );
  }
}

/**
 * Calls to Auth in flight, at most `max`; a caller past that waits in order for
 * one to end, up to a time limit, with at most `maxQueued` waiting. Hand-written:
 * a counting semaphore with a timeout is a dozen lines, smaller than a dependency.
 */
class Slots {
  #free: number;
  #waiting: (() => void)[] = [];
  constructor(max: number, readonly maxQueued: number) {
    this.#free = max;
  }

  async take(waitMs: number): Promise<boolean> {
    if (this.#free > 0) {
      this.#free--;
      return true;
    }
    if (this.#waiting.length >= this.maxQueued) return false;
    const granted = Promise.withResolvers<boolean>();
    const grant = () => granted.resolve(true);
    this.#waiting.push(grant);
    const timer = setTimeout(() => {
      this.#waiting = this.#waiting.filter((g) => g !== grant);
      granted.resolve(false);
    }, waitMs);
    const got = await granted.promise;
    clearTimeout(timer);
    return got;
  }

  give() {
    const next = this.#waiting.shift();
    if (next) next();
    else this.#free++;
  }
}
