/**
 * The function's connections to Postgres, lent one caller's transaction at a time, any lost one
 * replaced. Request code never uses them directly: `database.ts`'s caller's transaction does. (A
 * lent connection is database.ts's `Tx`, written here as postgres.js's `ReservedSql`: this module
 * cannot import database.ts, which imports it.)
 */
import type postgres from "postgres";
import { clientOpener, type ClientOptions } from "./database_client.ts";
import { driverError, errorCode } from "./database_errors.ts";

export interface ConnectOptions extends ClientOptions {
  /** connections at most (DB_POOL_MAX) */
  max?: number;
  /** the longest a caller waits for a connection before the database counts as unavailable */
  waitMs?: number;
}

export function connect(url: string, opts: ConnectOptions = {}): Connections {
  return new Connections(clientOpener(url, opts), opts.max ?? 3, opts.waitMs ?? 10_000);
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
export class Connections {
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

  async reserve(): Promise<postgres.ReservedSql> {
    if (this.#ending) throw driverError("CONNECTION_ENDED", "the database connections are closing");
    const deadline = performance.now() + this.#waitMs;
    const slot = await this.#take(deadline);
    slot.lend();
    let tx: postgres.ReservedSql;
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
const leases = new WeakMap<postgres.ReservedSql, Slot>();

/** What the caller's transaction needs of the slot its connection was lent from. */
export type Lease = Readonly<Pick<Slot, "lost" | "lent" | "discard">>;

/** The lease of a connection lent by `Connections`; undefined for another pool's connection. */
export function leaseOf(tx: postgres.ReservedSql): Lease | undefined {
  return leases.get(tx);
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
