/**
 * What a database failure means: a connection lost, or the database unavailable for now (a 503,
 * or a reply's save that waits and tries again), as opposed to a statement that failed.
 */

export function errorCode(error: unknown): string | undefined {
  if (error && typeof error === "object" && "code" in error) return String(error.code);
  return undefined;
}

/** An error shaped as postgres.js's own, with a `code` the checks below know. */
export function driverError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

/**
 * postgres.js's codes for a connection whose socket is gone, not for a statement that failed
 * on a live one. (A server's 57P01 is not among them: postgres.js can report it late, on the
 * first statement of the connection that replaced the lost one.)
 */
const lost = new Set([
  "CONNECTION_CLOSED",
  "CONNECTION_DESTROYED",
  "CONNECTION_ENDED",
  "ECONNRESET",
  "EPIPE",
]);

/** Whether `error` says the connection's socket is gone (see `lost`). */
export function isConnectionLost(error: unknown): boolean {
  return lost.has(errorCode(error) ?? "");
}

/** SQLSTATEs and driver codes that mean the database is not there right now. */
const unavailable = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "CONNECT_TIMEOUT",
  "CONNECTION_CLOSED",
  "CONNECTION_DESTROYED",
  "CONNECTION_ENDED",
  "CONNECTION_WAIT_TIMEOUT", // no connection of the pool became free in time
  "57P01", // admin_shutdown
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now
  "53300", // too_many_connections
  "08000",
  "08003",
  "08006",
]);

/**
 * Supavisor refuses a client past its limit, or one it could not give a database connection
 * in time, with FATAL XX000 (internal_error) and these prefixes: busy, not broken.
 */
const poolerBusy = /^\((EMAXCONN|ECHECKOUTTIMEOUT)\)/;

export function isDatabaseUnavailable(error: unknown): boolean {
  const code = errorCode(error);
  if (code === "XX000") return poolerBusy.test(String((error as { message?: unknown }).message));
  return code !== undefined && unavailable.has(code);
}

/**
 * Runs `work`, and again after a pause while the database is unavailable:
 * for work that must not be lost to a brief outage (saving a streamed reply).
 */
export async function retryWhileUnavailable<T>(
  work: () => Promise<T>,
  delaysMs: number[] = [250, 500, 1000, 2000, 4000, 8000],
): Promise<T> {
  for (const delay of delaysMs) {
    try {
      return await work();
    } catch (error) {
      if (!isDatabaseUnavailable(error)) throw error;
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
  return await work();
}
