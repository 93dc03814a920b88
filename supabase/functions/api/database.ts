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

export function connect(
  url: string,
  opts: { max?: number; prepare?: boolean; ca?: string | undefined } = {},
): Sql {
  return postgres(url, {
    max: opts.max ?? 3,
    // the transaction pooler (Supavisor, port 6543) cannot keep prepared statements
    prepare: opts.prepare ?? true,
    ...tlsFor(url, opts.ca),
    // an idle instance gives its connections back soon: the plan's connections are shared
    idle_timeout: 20,
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

/** How postgres.js should do TLS: nothing (it reads `sslmode` from the URL), off, or options. */
export type Tls = { ssl?: false | "prefer" | "require" | { ca: string; servername?: string } };

/**
 * TLS for a connection string. With `ca` (DB_CA_CERT) the server is verified against that CA,
 * unless the URL says `sslmode=disable` or the host is loopback without an `sslmode`. Otherwise
 * a `sslmode` in the URL is left to postgres.js; else none on loopback, `prefer` on a private
 * network (the CLI's `db` container, 10.x, 192.168.x: TLS when the server offers it), and
 * `require` everywhere else, as Supabase's direct connection (`db.<ref>.supabase.co`) and pooler
 * (`*.pooler.supabase.com`) serve TLS and may enforce it.
 *
 * `require` skips verification under Deno 2.9, but the Edge Runtime's Deno 2.1 verifies anyway,
 * against the public roots; Supabase's certificates chain to Supabase's own root CA, hence `ca`.
 * The address ranges are written out: a library for them would add to a bundle that must stay
 * under 5 MB.
 */
export function tlsFor(url: string, ca?: string): Tls {
  const { hostname, searchParams } = new URL(url);
  const sslmode = searchParams.get("sslmode") ?? searchParams.get("ssl");
  const host = hostname.replace(/^\[|\]$/g, "").toLowerCase();
  const loopback = host === "" || host === "localhost" || host === "::1" || /^127\./.test(host);
  if (ca && sslmode !== "disable" && !(loopback && sslmode === null)) {
    const ip = /^[\d.]+$/.test(host) || host.includes(":");
    return { ssl: ip ? { ca } : { ca, servername: host } };
  }
  if (sslmode !== null) return {};
  if (loopback) return { ssl: false };
  const privateNetwork = !host.includes(".") && !host.includes(":") ||
    /^(10\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.)/.test(host) || /^f[cd][0-9a-f]{2}:/.test(host);
  return { ssl: privateNetwork ? "prefer" : "require" };
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
  let connectionLost = false;
  try {
    const result = await run(tx);
    await opened;
    return result;
  } catch (error) {
    // when opening failed, the statements after it only report an aborted transaction
    const failure = await opened.then(() => error, (openError) => openError);
    connectionLost = lost.has(errorCode(failure) ?? "") || lost.has(errorCode(error) ?? "");
    // a lost connection took its transaction with it; on a live one, end it
    if (!connectionLost) await tx`rollback`.catch(() => {});
    throw failure;
  } finally {
    // postgres.js 3.4.9 puts a released connection back in the pool even when its server side
    // is gone, and the next query on it throws from a timer, outside any promise: the isolate
    // dies (porsager/postgres#1199, #1208). Unreleased, it stays closed and is reconnected.
    if (!connectionLost) tx.release();
  }
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
