/**
 * The one way request code reaches the database. Every unit of work runs in a
 * transaction that carries the caller's verified claims and the caller's
 * Postgres role, exactly as PostgREST does, so Row Level Security decides
 * what the caller may see and change.
 */
import type postgres from "postgres";
import { isConnectionLost } from "./database_errors.ts";
import { leaseOf } from "./database_pool.ts";

/** A connection reserved for one caller's transaction. */
export type Tx = postgres.ReservedSql;

/** What lends a connection to a caller's transaction: `connect()`'s pool, or any postgres.js client. */
export interface Sql {
  reserve(): Promise<Tx>;
}

/** Verified JWT claims. Only these two roles may ever be assumed from a token. */
export type Claims = { role: "authenticated" | "anon"; sub?: string; [claim: string]: unknown };

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
  return await inCallerTransaction(sql, claims, (tx) => statementAndCommit(tx, statement));
}

/**
 * Runs one statement as the caller, as `queryAsCaller` does, but answers its
 * rows as soon as they arrive, with the commit still on its way: what the rows
 * lead to can be prepared while the commit is made durable. `committed`
 * settles once it is (rejecting if it failed): nothing that depends on the
 * statement's writes may leave the process before then. A failure before the
 * rows arrive rejects the whole.
 */
export async function queryBeforeCommit<R>(
  sql: Sql,
  claims: Claims,
  statement: (tx: Tx) => Promise<R> & { execute(): Promise<R> },
): Promise<{ rows: R; committed: Promise<void> }> {
  const early = Promise.withResolvers<R>();
  const done = inCallerTransaction(
    sql,
    claims,
    (tx) => statementAndCommit(tx, statement, early.resolve),
  );
  // a statement that failed (or could not start) fails the rows, reported as inCallerTransaction
  // reports it; once the rows have arrived, only `committed` can fail
  done.catch(early.reject);
  const committed = done.then(() => {});
  committed.catch(() => {}); // its caller awaits it; a rejection is never left unhandled
  return { rows: await early.promise, committed };
}

/**
 * Sends `statement` and `commit` together, so that they cost one round trip;
 * `onRows` hears of the rows as soon as they arrive. Should the statement
 * fail, Postgres turns the commit into a rollback, and the statement's error
 * is the one thrown.
 */
async function statementAndCommit<R>(
  tx: Tx,
  statement: (tx: Tx) => Promise<R> & { execute(): Promise<R> },
  onRows?: (rows: R) => void,
): Promise<R> {
  const rows = statement(tx).execute();
  const committed = tx`commit`.execute();
  if (onRows) rows.then(onRows, () => {});
  const [result] = await Promise.allSettled([rows, committed]);
  await committed;
  if (result.status === "rejected") throw result.reason;
  return result.value;
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
  // a connection lent by `connect()`'s pool says when it is lost; another pool's never does
  const slot = leaseOf(tx);
  const lostConnection = slot?.lost ?? new Promise<never>(() => {});
  const opened = Promise.all([
    tx`begin`.execute(),
    tx`select set_config('request.jwt.claims', ${JSON.stringify(claims)}, true),
              set_config('role', ${claims.role}, true)`.execute(),
  ]);
  opened.catch(() => {});
  let connectionLost = false;
  try {
    // the loss of the connection ends the wait: statements queued behind the one running when
    // it went would never settle (porsager/postgres#1186), and the transaction with them
    const result = await Promise.race([run(tx), lostConnection]);
    await Promise.race([opened, lostConnection]);
    return result;
  } catch (error) {
    // when opening failed, the statements after it only report an aborted transaction
    const failure = await Promise.race([
      opened.then(() => error, (openError) => openError),
      lostConnection.catch((lostError) => lostError),
    ]);
    connectionLost = (slot !== undefined && !slot.lent) || isConnectionLost(failure) ||
      isConnectionLost(error);
    // a lost connection took its transaction with it; on a live one, end it
    if (!connectionLost) await tx`rollback`.catch(() => {});
    throw failure;
  } finally {
    // postgres.js 3.4.9 puts a released connection back in use even when its server side is
    // gone, and the next statement on it throws from a timer, outside any promise: the isolate
    // dies (porsager/postgres#1199, #1208). A lost one is never released: `connect()`'s pool
    // replaces its client; any other pool's stays closed and is reconnected.
    if (!connectionLost) tx.release();
    else slot?.discard();
  }
}
