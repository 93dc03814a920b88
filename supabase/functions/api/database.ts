/**
 * The one way request code reaches the database. Every unit of work runs in a
 * transaction that carries the caller's verified claims and the caller's
 * Postgres role, exactly as PostgREST does, so Row Level Security decides
 * what the caller may see and change.
 */
import postgres from "postgres";

export type Sql = postgres.Sql;
export type Tx = postgres.TransactionSql;

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
        parse: (value: string) => value.replace(" ", "T").replace(/([+-]\d\d)$/, "$1:00"),
      },
    },
  });
}

/**
 * Runs `work` as the caller. `request.jwt.claims` and `role` are
 * transaction-local, so nothing leaks to the next user of the connection.
 */
export async function asCaller<T>(
  sql: Sql,
  claims: Claims,
  work: (tx: Tx) => Promise<T>,
): Promise<T> {
  if (claims.role !== "authenticated" && claims.role !== "anon") {
    // a type can be cast away; assuming any other role (service_role!) must be impossible
    throw new Error(`refusing to assume database role ${JSON.stringify(claims.role)}`);
  }
  return await sql.begin(async (tx) => {
    // Sent without waiting for its answer: it travels with the first query of
    // `work` on the same connection, saving a round trip. Should it fail, the
    // transaction is aborted and `work`'s own query reports it.
    const claimsSet = tx`select set_config('request.jwt.claims', ${JSON.stringify(claims)}, true),
                                set_config('role', ${claims.role}, true)`.execute();
    claimsSet.catch(() => {});
    const result = await work(tx);
    await claimsSet;
    return result;
  }) as T;
}
