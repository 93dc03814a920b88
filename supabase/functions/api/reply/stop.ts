/**
 * Stopping a reply in progress from any connection, whatever instance writes
 * it: the stop is a flag on the reply's row, which the writer sees at its next
 * progress write or poll (relay.ts); it ends the model call and stores the
 * reply as `stopped`. The asker waits a while to answer with the stored reply,
 * in the poll its instance shares among the reply's readers (shared_polls.ts).
 * A user has at most STOP_WAIT_MAX_PER_USER stops waiting at once on an
 * instance.
 */
import type { UserClaims } from "../auth.ts";
import type { RouteDeps } from "../deps.ts";
import { ApiError } from "../errors.ts";
import type { Ending } from "../model.ts";
import { requestStop } from "./row.ts";

/** How long a stop waits for the reply to be stored before answering that it was asked for. */
const STOP_WAIT_MS = 10_000;

export interface StoppedReply {
  id: string;
  /** the reply as stored; null while it is still being saved */
  content: string | null;
  finish_reason: Ending | null;
}

/**
 * Asks the reply being written in the session to stop. Null when none is;
 * `ended` false when it had not ended (been stored) within STOP_WAIT_MS. 429,
 * with nothing asked, when the user has STOP_WAIT_MAX_PER_USER stops waiting
 * on this instance already.
 */
export async function stopReply(
  deps: Pick<RouteDeps, "sql" | "readers">,
  claims: UserClaims,
  sessionId: string,
): Promise<{ ended: boolean; reply: StoppedReply } | null> {
  const { sql, readers } = deps;
  const free = readers.stopping.take(claims.sub);
  if (!free) {
    throw new ApiError(
      429,
      `Too many stops waiting: at most ${readers.stopping.max} at once per user`,
      // each waits STOP_WAIT_MS at the most
      { "retry-after": String(STOP_WAIT_MS / 1000) },
    );
  }
  try {
    const id = await requestStop(sql, claims, sessionId);
    if (!id) return null;
    // the writer sees the stop at its next write or poll (REPLY_PERSIST_MS / REPLY_POLL_MS)
    const poll = readers.polls.join(claims, sessionId, id, false);
    const waited = AbortSignal.timeout(STOP_WAIT_MS);
    try {
      while (!waited.aborted) {
        const { text, last, over } = poll.view();
        if (over) {
          const stored = last?.state === "stored";
          return {
            ended: true,
            reply: {
              id,
              content: stored ? text : null,
              finish_reason: last?.finish_reason ?? null,
            },
          };
        }
        await poll.next(waited);
      }
    } finally {
      poll.leave();
    }
    return { ended: false, reply: { id, content: null, finish_reason: null } };
  } finally {
    free();
  }
}
