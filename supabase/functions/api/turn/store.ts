/**
 * Storing a turn's message: one RLS transaction, committed before the model
 * is called so that nothing the user sent is lost, that counts the quotas,
 * stores the message, reads the history that fits and takes the reply's
 * handle. Every outcome that is not a reply to write is answered here.
 */
import type { UserClaims } from "../auth.ts";
import { beginReply, beginTurn, type QuotaUse, quotaUse, type Turn } from "../chat_store.ts";
import type { Config } from "../config.ts";
import { asCaller, type Sql } from "../database.ts";
import { ApiError, sessionNotFound } from "../errors.ts";
import { perMessageTokens } from "../token_budget.ts";

/** Who takes the turn and where: every step that reads or writes runs as this caller, under RLS. */
export interface Caller {
  sql: Sql;
  claims: UserClaims;
  sessionId: string;
}

export type StoredReply = NonNullable<Turn["storedReply"]>;

/** The stored message, and either its complete reply (a retried send) or the handle its new reply is written under. */
export type StoredMessage =
  | { turn: Turn; reply: StoredReply; slotId?: undefined }
  | { turn: Turn; reply?: undefined; slotId: string };

/** How long a concurrent send of a message whose reply is being written is told to wait. */
const BUSY_RETRY_SECONDS = 3;

/** Stores the message; 404, 409 or 429 (nothing stored) when there is no reply to write or replay. */
export async function storeMessage(
  caller: Caller,
  limits: Config["quotas"],
  message: {
    content: string;
    clientMessageId: string | null;
    /** the message's own tokens */
    tokens: number;
    /** room for the history, in tokens */
    historyTokens: number;
  },
): Promise<StoredMessage> {
  const quotasOn = limits.messagesPerDay > 0 || limits.concurrentStreams > 0;
  const { turn, slotId } = await asCaller(caller.sql, caller.claims, async (tx) => {
    // counted under a per-user lock, taken before anything is stored
    const use = quotasOn ? await quotaUse(tx, limits.messagesPerDay) : undefined;
    const turn = await beginTurn(tx, {
      sessionId: caller.sessionId,
      content: message.content,
      tokens: message.tokens,
      clientMessageId: message.clientMessageId,
      history: { tokens: message.historyTokens, perMessage: perMessageTokens },
    });
    if (!turn || turn === "conflict" || turn.storedReply || turn.superseded) {
      return { turn, slotId: null };
    }
    // Only a send that calls the model counts: a replay of a stored reply costs nothing and is
    // answered at the limit too. Refused here, the transaction rolls back: nothing is stored.
    if (use) refuseOverQuota(use, limits);
    // The reply's handle, taken in the transaction that stored or found the message: a
    // concurrent send of the same id waits for this one to commit, then finds the handle.
    // A retry that asks the model again counts as a send: it costs a model call as one does.
    const [handle] = await beginReply(tx, {
      sessionId: caller.sessionId,
      userMessageId: turn.userMessageId,
      seconds: limits.replySlotSeconds,
      countSend: turn.retried,
    });
    return { turn, slotId: handle!.id };
  });
  if (!turn) throw sessionNotFound();
  if (turn === "conflict") {
    throw new ApiError(409, "Another message with this id exists in this session; use a new id");
  }
  if (turn.storedReply) return { turn, reply: turn.storedReply };
  if (turn.superseded) {
    throw new ApiError(
      409,
      "Later messages followed this one; its reply cannot be written again. Send it as a new message",
    );
  }
  if (!slotId) {
    // another request is streaming the reply to this very message (a later issue lets it re-attach)
    throw new ApiError(409, "a reply to this message is already being written", {
      "retry-after": String(BUSY_RETRY_SECONDS),
    });
  }
  return { turn, slotId };
}

function refuseOverQuota(use: QuotaUse, limits: Config["quotas"]) {
  // Retry-After is the true wait: for the day, until enough of the last 24 hours' messages
  // have left the window; for replies, until the first running one's slot lapses at the
  // latest (a slot is freed the moment its reply ends, so a retry may succeed sooner)
  if (limits.messagesPerDay > 0 && use.sent_today >= limits.messagesPerDay) {
    throw new ApiError(
      429,
      `Daily message limit reached: ${limits.messagesPerDay} messages per 24 hours`,
      { "retry-after": String(Math.max(1, use.day_frees_in)) },
    );
  }
  if (limits.concurrentStreams > 0 && use.streaming >= limits.concurrentStreams) {
    throw new ApiError(
      429,
      `Concurrent reply limit reached: ${limits.concurrentStreams} replies streaming at a time`,
      { "retry-after": String(Math.max(1, use.slot_frees_in)) },
    );
  }
}
