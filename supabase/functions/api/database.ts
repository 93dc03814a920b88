/**
 * The one way request code reaches the database. Every unit of work runs in a
 * transaction that carries the caller's verified claims and the caller's
 * Postgres role, exactly as PostgREST does, so Row Level Security decides
 * what the caller may see and change.
 */
import postgres from "postgres";

/** A connection reserved for one caller's transaction. */
export type Tx = postgres.ReservedSql;

/** What lends a connection to a caller's transaction: `connect()`'s pool, or any postgres.js client. */
export interface Sql {
  reserve(): Promise<Tx>;
}

/** Verified JWT claims. Only these two roles may ever be assumed from a token. */
export type Claims = { role: "authenticated" | "anon"; sub?: string; [claim: string]: unknown };

export interface ConnectOptions {
  /** connections at most (DB_POOL_MAX) */
  max?: number;
  /** prepared statements (off through the transaction pooler) */
  prepare?: boolean;
  /** the CA to verify the server against (DB_CA_CERT) */
  ca?: string | undefined;
  /** the longest a caller waits for a connection before the database counts as unavailable */
  waitMs?: number;
}

export function connect(url: string, opts: ConnectOptions = {}): Connections {
  dropStrayTypeQueryFailures();
  const options: postgres.Options<Record<string, postgres.PostgresType>> = {
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
  };
  return new Connections(
    (onclose) => postgres(url, { ...options, max: 1, onclose }),
    opts.max ?? 3,
    opts.waitMs ?? 10_000,
  );
}

/**
 * The function's connections to Postgres: at most `max`, each the only connection of a
 * postgres.js client of its own, lent to one caller's transaction at a time; a caller waits its
 * turn here, at most `waitMs`, then the database counts as unavailable (503, or the save of a
 * reply waits and tries again).
 *
 * Not postgres.js's own pool: in 3.4.9 its `reserve()` can wait forever, or lose a connection for
 * good, when connections drop. A reserve waiting in its queue is handed to the reconnect of a
 * connection that dropped and is forgotten there (porsager/postgres#1195: a reply's save hung
 * after a database restart); a connection lost mid-statement keeps that statement's `57P01`, fails
 * the reserve that reconnects it with it, then hands itself to that failed reserve, out of the
 * pool. Here nothing ever queues inside postgres.js, and a client whose connection was lost while
 * lent, or that could not lend one, is ended and replaced by a fresh one: no broken state is used
 * again, and the slot is back at once.
 */
export class Connections implements Sql {
  readonly #idle: Slot[] = [];
  readonly #slots = new Set<Slot>();
  readonly #waiting: PromiseWithResolvers<Slot>[] = [];
  /** clients being ended, for `end()` to wait for */
  readonly #closing = new Set<Promise<void>>();
  #ending = false;
  readonly #open: (onclose: () => void) => postgres.Sql;
  readonly #max: number;
  readonly #waitMs: number;

  constructor(open: (onclose: () => void) => postgres.Sql, max: number, waitMs: number) {
    this.#open = open;
    this.#max = max;
    this.#waitMs = waitMs;
  }

  async reserve(): Promise<Tx> {
    if (this.#ending) throw driverError("CONNECTION_ENDED", "the database connections are closing");
    const deadline = performance.now() + this.#waitMs;
    const slot = await this.#take(deadline);
    slot.lend();
    let tx: Tx;
    try {
      // a connection that drops while it is set up (porsager/postgres#1195 again) is given up on
      const reserving = ownReason(slot.client.reserve(), slot.lost);
      tx = await within(
        Promise.race([reserving, slot.lost.catch((loss) => soonOr(reserving, loss))]),
        deadline - performance.now(),
        () => this.#timedOut(),
      );
    } catch (error) {
      this.#discard(slot);
      throw error;
    }
    const release = tx.release;
    tx.release = () => {
      if (!slot.lent) return;
      slot.lent = false;
      if (this.#ending) return this.#discard(slot);
      release();
      this.#hand(slot);
    };
    leases.set(tx, slot);
    return tx;
  }

  /** Closes every connection, waiting up to `timeout` seconds for those lent. */
  async end(options: { timeout?: number } = {}): Promise<void> {
    this.#ending = true;
    for (const waiter of this.#waiting.splice(0)) {
      waiter.reject(driverError("CONNECTION_ENDED", "the database connections are closing"));
    }
    this.#idle.length = 0;
    await Promise.all([
      ...[...this.#slots].map((slot) => slot.client.end(options)),
      ...this.#closing,
    ]);
  }

  /** An idle slot, a new one while there are fewer than `max`, or the next one given back. */
  async #take(deadline: number): Promise<Slot> {
    const idle = this.#idle.pop(); // the most recently used: its connection is the likeliest open
    if (idle) return idle;
    if (this.#slots.size < this.#max) return this.#add();
    const waiter = Promise.withResolvers<Slot>();
    this.#waiting.push(waiter);
    const timer = setTimeout(() => {
      const at = this.#waiting.indexOf(waiter);
      if (at >= 0) this.#waiting.splice(at, 1);
      waiter.reject(this.#timedOut());
    }, Math.max(0, deadline - performance.now()));
    try {
      return await waiter.promise;
    } finally {
      clearTimeout(timer);
    }
  }

  #add(): Slot {
    const slot: Slot = new Slot(this.#open, () => this.#discard(slot));
    this.#slots.add(slot);
    return slot;
  }

  /** Gives a slot to the caller waiting longest, or keeps it idle. */
  #hand(slot: Slot) {
    const waiter = this.#waiting.shift();
    if (waiter) waiter.resolve(slot);
    else this.#idle.push(slot);
  }

  /** Ends a slot's client (its connection was lost, or never came) and puts a fresh one in its place. */
  #discard(slot: Slot) {
    if (!this.#slots.delete(slot)) return;
    slot.lent = false;
    const closing = slot.client.end({ timeout: 0 }).catch(() => {});
    this.#closing.add(closing);
    closing.finally(() => this.#closing.delete(closing));
    if (this.#waiting.length && !this.#ending) this.#hand(this.#add());
  }

  #timedOut() {
    return driverError(
      "CONNECTION_WAIT_TIMEOUT",
      `no database connection became free within ${this.#waitMs} ms`,
    );
  }
}

/** One of `Connections`' clients, and whether its connection is lent. */
class Slot {
  readonly client: postgres.Sql;
  lent = false;
  #lost = Promise.withResolvers<never>();

  /**
   * Ends the client and puts a fresh one in its place, its connection unreleased: for a
   * connection lost while lent (postgres.js would put it back in use, and the next statement on
   * it would throw from a timer, outside any promise: porsager/postgres#1199).
   */
  readonly discard: () => void;

  constructor(open: (onclose: () => void) => postgres.Sql, discard: () => void) {
    this.discard = discard;
    // postgres.js says when the connection closes, and nothing more: closing while lent is
    // losing it (when idle it just reconnects on its next use)
    this.client = open(() => {
      if (!this.lent) return;
      this.#lost.reject(driverError("CONNECTION_CLOSED", "the database connection was lost"));
      discard();
    });
  }

  /** rejects once the connection lent is lost */
  get lost(): Promise<never> {
    return this.#lost.promise;
  }

  lend() {
    this.lent = true;
    this.#lost = Promise.withResolvers<never>();
    this.#lost.promise.catch(() => {});
  }
}

/** The slot each connection lent by `Connections` came from. */
const leases = new WeakMap<Tx, Slot>();

function driverError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

/**
 * A reserve's own failure, but for "destroyed", which only says that the slot's discard ended
 * its client: then the loss that caused the discard.
 */
function ownReason<T>(reserving: Promise<T>, lost: Promise<never>): Promise<T> {
  return reserving.catch((error) =>
    errorCode(error) === "CONNECTION_DESTROYED" ? lost : Promise.reject(error)
  );
}

/**
 * Why a connection being set up was lost: the client's own error when it gives one at once (a
 * TLS refusal names the certificate, which is what the operator must fix), else the loss.
 */
function soonOr(reserving: Promise<unknown>, loss: Error): Promise<never> {
  return within(reserving.then(() => Promise.reject(loss)), 100, () => loss);
}

/** `promise`, or `timeout()` thrown after `ms`. */
async function within<T>(promise: Promise<T>, ms: number, timeout: () => Error): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => timer = setTimeout(() => reject(timeout()), ms)),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

let strayFailuresDropped = false;

/**
 * postgres.js 3.4.9 reads a new connection's array types with a query nobody awaits: when the
 * connection drops in that moment, the query's rejection goes unhandled, and an unhandled
 * rejection ends the isolate (a test saw it under load). Whoever waits for that connection
 * learns of the loss on its own; this one rejection is dropped, any other is left alone.
 */
function dropStrayTypeQueryFailures() {
  if (strayFailuresDropped) return;
  strayFailuresDropped = true;
  globalThis.addEventListener("unhandledrejection", (event) => {
    const reason = event.reason as { query?: unknown } | undefined;
    if (lost.has(errorCode(reason) ?? "") && /\btyparray\b/.test(String(reason?.query))) {
      event.preventDefault();
    }
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
  const done = inCallerTransaction(sql, claims, async (tx) => {
    const rows = statement(tx).execute();
    const committed = tx`commit`.execute();
    rows.then(early.resolve, () => {});
    const [result] = await Promise.allSettled([rows, committed]);
    await committed;
    if (result.status === "rejected") throw result.reason;
    return result.value;
  });
  // a statement that failed (or could not start) fails the rows, reported as inCallerTransaction
  // reports it; once the rows have arrived, only `committed` can fail
  done.catch(early.reject);
  const committed = done.then(() => {});
  committed.catch(() => {}); // its caller awaits it; a rejection is never left unhandled
  return { rows: await early.promise, committed };
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
  const slot = leases.get(tx);
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
    connectionLost = (slot !== undefined && !slot.lent) || lost.has(errorCode(failure) ?? "") ||
      lost.has(errorCode(error) ?? "");
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
  "CONNECTION_WAIT_TIMEOUT", // no connection of the pool became free in time
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
