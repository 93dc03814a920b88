/**
 * A reply's run as named states, so the relay (relay.ts) asks "may this happen
 * now?" of one object instead of a dozen flags, and every timer it needs is
 * set and cleared in one place, with the state it serves:
 *
 *   streaming ──stop(ending)──▶ stopping
 *       │                          │
 *       └───────modelDone()────────┴──▶ saving ──end()──▶ ended
 *
 * - streaming: the model is being read.
 * - stopping: asked to stop while the model streamed (the deadline, the worker's
 *   retirement, a stop or the session's deletion seen in the reply's row). The
 *   first reason wins: a later one changes nothing, nor does one after the model
 *   is done (a reply that had finished is stored as it finished).
 * - saving: the model's stream is over; the reply is being stored.
 * - ended: stored (or nowhere to store it); whoever asked it to stop is answered.
 *
 * Beside it, the client: attached until it leaves, which drops the bytes. Its
 * leaving ends nothing of the run by itself: the relay either stops the run
 * (`stop("stopped")`, a client that cannot come back for the reply) or lets it
 * go on to be re-attached to (relay.ts, `OnDisconnect`).
 */
import type { StreamEnding } from "./protocols.ts";

export type Phase = "streaming" | "stopping" | "saving" | "ended";

/**
 * The run's timers, each serving one state: `deadline` and `progress` (the row's
 * write and poll) while the model is read, `flush` (a burst's bytes coalesced into
 * one write) while the client is attached.
 */
export type Timer = "deadline" | "progress" | "flush";

export class ReplyRun {
  #phase: Phase = "streaming";
  #stoppedAs: StreamEnding | undefined;
  #client: "attached" | "gone" = "attached";
  readonly #timers = new Map<Timer, ReturnType<typeof setTimeout>>();
  readonly #ended = Promise.withResolvers<void>();

  get phase(): Phase {
    return this.#phase;
  }

  /** why the run was stopped while the model streamed, if it was */
  get stoppedAs(): StreamEnding | undefined {
    return this.#stoppedAs;
  }

  /** the model is still being read (streaming or stopping) */
  get reading(): boolean {
    return this.#phase === "streaming" || this.#phase === "stopping";
  }

  get clientAttached(): boolean {
    return this.#client === "attached";
  }

  /** settles once the run has ended */
  get ended(): Promise<void> {
    return this.#ended.promise;
  }

  /** streaming → stopping. True when this call stopped it: the caller then ends the model call. */
  stop(ending: StreamEnding): boolean {
    if (this.#phase !== "streaming") return false;
    this.#phase = "stopping";
    this.#stoppedAs = ending;
    return true;
  }

  /** streaming or stopping → saving: the model's stream is over, and the timers of reading with it. */
  modelDone(): void {
    this.#expect(this.reading, "modelDone");
    this.#phase = "saving";
    this.cancel("deadline", "progress");
  }

  /** saving → ended. */
  end(): void {
    this.#expect(this.#phase === "saving", "end");
    this.#phase = "ended";
    this.#ended.resolve();
  }

  /** attached → gone: nothing more is written to the client. */
  clientLeft(): void {
    this.#client = "gone";
    this.cancel("flush");
  }

  /**
   * Runs `fn` after `ms`, replacing the timer of that name; not at all once the
   * state the timer serves is over (see `Timer`).
   */
  after(timer: Timer, ms: number, fn: () => void): void {
    if (timer === "flush" ? !this.clientAttached : !this.reading) return;
    clearTimeout(this.#timers.get(timer));
    this.#timers.set(
      timer,
      setTimeout(() => {
        this.#timers.delete(timer);
        fn();
      }, ms),
    );
  }

  /** whether the timer of that name is waiting to run */
  pending(timer: Timer): boolean {
    return this.#timers.has(timer);
  }

  cancel(...timers: Timer[]): void {
    for (const timer of timers) {
      clearTimeout(this.#timers.get(timer));
      this.#timers.delete(timer);
    }
  }

  #expect(allowed: boolean, transition: string) {
    if (!allowed) throw new Error(`reply run: ${transition} while ${this.#phase}`);
  }
}
