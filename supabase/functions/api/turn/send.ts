/**
 * Sending a message, decided once, in Postgres: `chat_private.send_message`
 * counts the quotas under a per-user lock, creates the session if the id is
 * new, stores the message once per client message id (after the current leaf,
 * or beside the message it edits; a regeneration stores none), makes its
 * branch current, reads the history that fits up the branch and creates the
 * reply, or says why not, in one statement. It travels
 * with its transaction's begin, claims and commit: one round trip. A send the
 * model answers is returned with its commit still on its way, so that the
 * model's request can leave meanwhile; nothing reaches the client before
 * `committed` resolves, so nothing the user sent is lost. Every outcome that
 * writes no reply is answered here, from one table, once committed.
 */
import type { UserClaims } from "../auth.ts";
import type { Config } from "../config.ts";
import { queryBeforeCommit, type Sql } from "../database.ts";
import { ApiError, sessionNotFound } from "../errors.ts";
import type { Ending, PromptMessage, Usage } from "../model.ts";
import type { Protocol } from "../reply/protocols.ts";

/** What a send asks for. */
export interface Send {
  sessionId: string;
  content: string;
  /** the client's id for the message (a retried send repeats it) */
  clientMessageId: string | null;
  /** another reply to a stored message, beside the earlier one */
  regenerate: boolean;
  /** the message an edit or regeneration names: its id or the client's id for it */
  messageId: string | null;
  /** the message's own tokens */
  tokens: number;
  /** room for the history, in tokens */
  historyTokens: number;
  /** what its reply is written with, recorded with the reply from the start */
  model: string;
  protocol: Protocol;
}

/**
 * A send the model answers: a new message, an edit (a new message beside an
 * earlier one), a regeneration of a stored one, or a retry of one whose reply
 * did not finish.
 */
export interface ReplyToWrite {
  outcome: "new" | "edit" | "regenerate" | "retry";
  userMessageId: string;
  /** the reply's id: its row while it is written, then the assistant message it is stored as */
  replyId: string;
  /** the newest stored messages that fit the budget, oldest first, this message last */
  history: PromptMessage[];
  /** the session still has the title it was created with */
  untitled: boolean;
  /**
   * Settles once the send is durable, rejecting if its commit failed: nothing of
   * the reply may reach the client before, and a failure aborts the model's request.
   */
  committed: Promise<void>;
}

/** A retried send whose reply finished: answered with that reply again, calling no model. */
export interface Replay {
  outcome: "replay";
  userMessageId: string;
  reply: StoredReply;
}

export interface StoredReply {
  id: string;
  content: string;
  model: string;
  ending: Ending;
  usage?: Usage;
}

export type Sent = ReplyToWrite | Replay;

/** The sends that are refused. None of them stored anything. */
type Refusal =
  | "not_found"
  | "message_not_found"
  | "not_a_user_message"
  | "conflict"
  | "superseded"
  | "busy"
  | "over_daily_quota"
  | "over_reply_quota";

/** Sends the message as the caller; throws the `ApiError` of a refused send. */
export async function sendMessage(
  sql: Sql,
  claims: UserClaims,
  limits: Config["quotas"],
  send: Send,
): Promise<Sent> {
  const { rows: [row], committed } = await queryBeforeCommit(sql, claims, (tx) =>
    tx<Outcome[]>`
      select * from chat_private.send_message(
        p_session_id => ${send.sessionId},
        p_content => ${send.content},
        p_client_message_id => ${send.clientMessageId},
        p_tokens => ${send.tokens},
        p_history_tokens => ${send.historyTokens},
        p_messages_per_day => ${limits.messagesPerDay},
        p_concurrent_replies => ${limits.concurrentStreams},
        p_reply_seconds => ${limits.replySlotSeconds},
        p_model => ${send.model},
        p_protocol => ${send.protocol},
        p_regenerate => ${send.regenerate},
        p_message_id => ${send.messageId})`);
  const sent = row!;
  if (
    sent.outcome === "new" || sent.outcome === "edit" || sent.outcome === "regenerate" ||
    sent.outcome === "retry"
  ) {
    return {
      outcome: sent.outcome,
      userMessageId: sent.user_message_id!,
      replyId: sent.reply_id!,
      history: sent.history!,
      untitled: sent.untitled!,
      committed,
    };
  }
  // answered from what was read: nothing the client is told leaves before the commit all the same
  await committed;
  switch (sent.outcome) {
    case "replay":
      return { outcome: "replay", userMessageId: sent.user_message_id!, reply: storedReply(sent) };
    default:
      throw refusals[sent.outcome](limits, sent.retry_after ?? 1);
  }
}

/** Each refusal's answer. Retry-After is the true wait, counted in Postgres. */
const refusals: Record<Refusal, (limits: Config["quotas"], retryAfter: number) => ApiError> = {
  not_found: () => sessionNotFound(),
  message_not_found: () => new ApiError(404, "Message not found in this session"),
  not_a_user_message: () =>
    new ApiError(422, [{
      loc: ["body", "messageId"],
      msg: "must name a user message (to edit it or answer it again) or a reply (to regenerate it)",
      type: "value_error",
    }]),
  conflict: () =>
    new ApiError(409, "Another message with this id exists in this session; use a new id"),
  superseded: () =>
    new ApiError(
      409,
      "Later messages followed this one; its reply cannot be written again. Send it as a new message",
    ),
  // another request is writing the reply to this very message: one model call per message at a
  // time. It can be followed (GET .../stream) or stopped (DELETE .../stream) and regenerated then;
  // asked again when its writer would be known dead if it stopped reporting now.
  busy: (_limits, retryAfter) =>
    new ApiError(409, "a reply to this message is already being written", {
      "retry-after": String(retryAfter),
    }),
  // until enough of the last 24 hours' sends have left the window
  over_daily_quota: (limits, retryAfter) =>
    new ApiError(
      429,
      `Daily message limit reached: ${limits.messagesPerDay} messages per 24 hours`,
      { "retry-after": String(retryAfter) },
    ),
  // until the first running reply lapses at the latest (sooner when it ends)
  over_reply_quota: (limits, retryAfter) =>
    new ApiError(
      429,
      `Concurrent reply limit reached: ${limits.concurrentStreams} replies streaming at a time`,
      { "retry-after": String(retryAfter) },
    ),
};

/** The row `chat_private.send_message` answers. */
interface Outcome {
  outcome: Sent["outcome"] | Refusal;
  user_message_id: string | null;
  reply_id: string | null;
  untitled: boolean | null;
  history: PromptMessage[] | null;
  retry_after: number | null;
  content: string | null;
  model: string | null;
  finish_reason: Ending | null;
  prompt_tokens: number | null;
  completion_tokens: number | null;
}

function storedReply(row: Outcome): StoredReply {
  const usage = row.prompt_tokens === null || row.completion_tokens === null
    ? undefined
    : { promptTokens: row.prompt_tokens, completionTokens: row.completion_tokens };
  return {
    id: row.reply_id!,
    content: row.content!,
    model: row.model ?? "",
    ending: row.finish_reason!,
    usage,
  };
}
