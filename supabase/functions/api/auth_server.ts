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
 * `internal/api/auth.go`. A 429, a 5xx, a 4xx from the gateway (no error
 * code: our API key was refused), a network error or a timeout say nothing
 * about the token: Auth is unavailable (503), never a 401.
 */
import { authUnavailable } from "./errors.ts";

export interface AuthServerOptions {
  /** the project's URL (SUPABASE_URL) */
  url: string;
  /** publishable or anon key, sent as `apikey` */
  apiKey?: string;
  timeoutMs?: number;
  /** after a failure, how long to answer 503 without calling again */
  retryAfterMs?: number;
  /**
   * calls to Auth in flight at once, per instance; past it, 503. Any
   * well-formed HS256 token costs one call before it can be refused (only
   * Auth can check it), so without a bound a flood of forged tokens is a flood
   * of calls to the project's Auth.
   */
  maxInFlight?: number;
  log?: (message: string, error?: unknown) => void;
}

/** Resolves with the user id Auth vouches for; rejects with `TokenRejected` or a 503 ApiError. */
export type AuthServerCheck = (token: string) => Promise<string>;

export class TokenRejected extends Error {}

export function createAuthServerCheck(opts: AuthServerOptions): AuthServerCheck {
  const endpoint = new URL("auth/v1/user", opts.url.endsWith("/") ? opts.url : `${opts.url}/`);
  const timeoutMs = opts.timeoutMs ?? 5_000;
  const retryAfterMs = opts.retryAfterMs ?? 5_000;
  const unavailable = () => authUnavailable(Math.ceil(retryAfterMs / 1000));
  const maxInFlight = opts.maxInFlight ?? 8;
  let inFlight = 0;
  let failedAt = -Infinity;

  const failed = (message: string, error?: unknown) => {
    failedAt = Date.now();
    opts.log?.(message, error);
    return unavailable();
  };

  return async (token) => {
    // Auth just failed: do not queue every request behind another timeout
    if (Date.now() - failedAt < retryAfterMs) throw unavailable();
    if (inFlight >= maxInFlight) throw authUnavailable(1);
    inFlight++;
    try {
      return await ask(token);
    } finally {
      inFlight--;
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
    if (response.status === 200 && typeof body?.id === "string") return body.id;
    // Auth's own refusals carry an error code; a gateway's (a missing or wrong apikey) do not,
    // and say nothing about the token
    const authCode = typeof body?.error_code === "string" || typeof body?.code === "string";
    if (response.status >= 400 && response.status < 500 && response.status !== 429 && authCode) {
      throw new TokenRejected("the Auth server did not accept the token");
    }
    throw failed(
      `the project's Auth server answered ${response.status}`,
      typeof body?.message === "string" ? body.message : "",
    );
  }
}
