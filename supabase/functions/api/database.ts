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
    max: opts.max ?? 10,
    // the transaction pooler (Supavisor, port 6543) cannot keep prepared statements
    prepare: opts.prepare ?? true,
    idle_timeout: 60,
    connect_timeout: 5,
    onnotice: () => {},
  });
}

/** Runs `work` as the caller: `request.jwt.claims` and `role` are transaction-local, so nothing leaks to the pool. */
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
    await tx`select set_config('request.jwt.claims', ${JSON.stringify(claims)}, true),
                    set_config('role', ${claims.role}, true)`;
    return await work(tx);
  }) as T;
}
