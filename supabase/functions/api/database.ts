/**
 * The one way request code reaches the database. Every unit of work runs in a
 * transaction that carries the caller's verified claims and the caller's
 * Postgres role, exactly as PostgREST does, so Row Level Security decides
 * what the caller may see and change.
 */
import postgres from "postgres";

export type Sql = postgres.Sql;
/** A connection reserved for one caller's transaction. */
export type Tx = postgres.ReservedSql;

/** Verified JWT claims. Only these two roles may ever be assumed from a token. */
export type Claims = { role: "authenticated" | "anon"; sub?: string; [claim: string]: unknown };

export function connect(url: string, opts: { max?: number; prepare?: boolean } = {}): Sql {
  return postgres(url, {
    max: opts.max ?? 5,
    // the transaction pooler (Supavisor, port 6543) cannot keep prepared statements
    prepare: opts.prepare ?? true,
    idle_timeout: 60,
    connect_timeout: 5,
    onnotice: () => {},
    connection: { TimeZone: "UTC", application_name: "chat-api" },
    types: {
      // timestamps leave as ISO 8601 with offset and full precision: 2026-11-25T09:38:39.123456+00:00
      timestamptz: {
        to: 1184,
        from: [1184],
        serialize: (value: string) => value,
        parse: isoTimestamp,
      },
    },
  });
}

/** "2026-11-25 09:38:39.123456+00" → "2026-11-25T09:38:39.123456+00:00" (string ops: it runs per value) */
function isoTimestamp(value: string): string {
  const iso = `${value.slice(0, 10)}T${value.slice(11)}`;
  const sign = iso[iso.length - 3];
  return sign === "+" || sign === "-" ? `${iso}:00` : iso;
}

/**
 * Runs `work` as the caller, in one transaction on a reserved connection.
 * `request.jwt.claims` and `role` are transaction-local, so nothing leaks to
 * the next user of the connection.
 */
export async function asCaller<T>(
  sql: Sql,
  claims: Claims,
  work: (tx: Tx) => Promise<T>,
): Promise<T> {
  return await inCallerTransaction(sql, claims, async (tx) => {
    const result = await work(tx);
    await tx`commit`;
    return result;
  });
}

/**
 * Runs one statement as the caller. Its transaction opens, runs and commits
 * in a single round trip: all four statements travel together, and should
 * the statement fail, Postgres turns the commit into a rollback.
 */
export async function queryAsCaller<R>(
  sql: Sql,
  claims: Claims,
  // a pending query, as rows or `.raw()` bytes
  statement: (tx: Tx) => Promise<R> & { execute(): Promise<R> },
): Promise<R> {
  return await inCallerTransaction(sql, claims, async (tx) => {
    const rows = statement(tx).execute();
    const committed = tx`commit`.execute();
    const [result] = await Promise.allSettled([rows, committed]);
    await committed;
    if (result.status === "rejected") throw result.reason;
    return result.value;
  });
}

/**
 * Opens a transaction as the caller and hands it to `run`, which must end
 * it. `begin` and the caller's identity are sent without waiting for their
 * answers: they travel with the first statement of `run`, costing no round
 * trip of their own; should they fail, that statement reports it.
 */
async function inCallerTransaction<T>(
  sql: Sql,
  claims: Claims,
  run: (tx: Tx) => Promise<T>,
): Promise<T> {
  if (claims.role !== "authenticated" && claims.role !== "anon") {
    // a type can be cast away; assuming any other role (service_role!) must be impossible
    throw new Error(`refusing to assume database role ${JSON.stringify(claims.role)}`);
  }
  const tx = await sql.reserve();
  const opened = Promise.all([
    tx`begin`.execute(),
    tx`select set_config('request.jwt.claims', ${JSON.stringify(claims)}, true),
              set_config('role', ${claims.role}, true)`.execute(),
  ]);
  opened.catch(() => {});
  try {
    const result = await run(tx);
    await opened;
    return result;
  } catch (error) {
    await tx`rollback`.catch(() => {});
    // when opening failed, the statements after it only report an aborted transaction
    throw await opened.then(() => error, (openError) => openError);
  } finally {
    tx.release();
  }
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
  "57P01", // admin_shutdown
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now
  "53300", // too_many_connections
  "08000",
  "08003",
  "08006",
]);

export function errorCode(error: unknown): string | undefined {
  if (error && typeof error === "object" && "code" in error) return String(error.code);
  return undefined;
}

export function isDatabaseUnavailable(error: unknown): boolean {
  const code = errorCode(error);
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
