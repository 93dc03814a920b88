/**
 * The replies streaming on this instance right now, so they can all be cut
 * short and saved when the worker is about to be retired (the Edge Runtime's
 * `beforeunload`): each is stopped and stored with how it ended.
 */
import type { Ending } from "../model.ts";

/** Stops one reply as `ending`; resolves once it is saved. */
export type StopReply = (ending: Ending) => Promise<void>;

export class InFlightReplies {
  #replies = new Set<StopReply>();

  /** Registers a streaming reply; the returned function removes it once it has ended. */
  track(stop: StopReply): () => void {
    this.#replies.add(stop);
    return () => this.#replies.delete(stop);
  }

  get size(): number {
    return this.#replies.size;
  }

  /** Stops every reply in flight as `ending` and resolves once all are saved. */
  async stopAll(ending: Ending): Promise<void> {
    await Promise.allSettled([...this.#replies].map((stop) => stop(ending)));
  }
}

/**
 * Before the Edge Runtime retires a worker (wall clock, CPU or memory limit,
 * or idle) it dispatches `beforeunload` on the global scope, with the reason
 * in `detail.reason`. Every reply still streaming is then stopped and saved
 * as `shutdown`; `waitUntil` keeps the worker alive for the saves.
 * Returns a function that removes the listener.
 */
export function saveRepliesOnRetirement(
  replies: InFlightReplies,
  opts: {
    waitUntil: (work: Promise<unknown>) => void;
    log: (message: string, error?: unknown) => void;
    target?: EventTarget;
  },
): () => void {
  const target = opts.target ?? globalThis;
  const listener = (event: Event) => {
    if (replies.size === 0) return;
    const reason = (event as CustomEvent<{ reason?: string } | undefined>).detail?.reason;
    opts.log(`worker retiring (${reason ?? "no reason given"}): saving ${replies.size} replies`);
    opts.waitUntil(replies.stopAll("shutdown"));
  };
  target.addEventListener("beforeunload", listener);
  return () => target.removeEventListener("beforeunload", listener);
}
