/**
 * Stopping a reply in progress from any connection, whatever instance writes
 * it: the stop is a flag on the reply's row, which the writer sees at its next
 * progress write or poll (relay.ts); it ends the model call and stores the
 * reply as `stopped`. The asker waits a while to answer with the stored reply.
 */
import type { UserClaims } from "../auth.ts";
import type { RouteDeps } from "../deps.ts";
import type { Ending } from "../model.ts";
import { followReply, requestStop } from "./row.ts";

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
 * `ended` false when it had not ended (been stored) within STOP_WAIT_MS.
 */
export async function stopReply(
  deps: Pick<RouteDeps, "sql" | "config">,
  claims: UserClaims,
  sessionId: string,
): Promise<{ ended: boolean; reply: StoppedReply } | null> {
  const { sql, config } = deps;
  const id = await requestStop(sql, claims, sessionId);
  if (!id) return null;
  // the writer sees the stop at its next write or poll (REPLY_PERSIST_MS / REPLY_POLL_MS)
  const until = performance.now() + STOP_WAIT_MS;
  while (performance.now() < until) {
    await new Promise((resolve) => setTimeout(resolve, config.model.replyPersistMs));
    const row = await followReply(sql, claims, sessionId, id);
    if (row.state !== "streaming") {
      return { ended: true, reply: { id, content: row.content, finish_reason: row.finish_reason } };
    }
  }
  return { ended: false, reply: { id, content: null, finish_reason: null } };
}
