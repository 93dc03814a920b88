/**
 * Re-attaching to a reply in progress, from any connection, device or
 * instance: only Postgres is shared. The instance writing the reply appends
 * its text to the reply's parts once a reader has asked for it (relay.ts); a
 * re-attached stream replays that text from the start, follows the reply
 * through the poll its instance shares among the reply's readers
 * (shared_polls.ts), and ends with the stored reply. A follower is a reader:
 * its relay writes no row, and ends when its client leaves. A user holds at
 * most REATTACH_MAX_PER_USER of them at once on an instance.
 */
import type { UserClaims } from "../auth.ts";
import type { RouteDeps } from "../deps.ts";
import { ApiError } from "../errors.ts";
import type { Ending, ReplyChunk } from "../model.ts";
import type { ReplyIds } from "./protocols.ts";
import { chooseProtocol, type ProtocolAsk, type ReplyResponse, replyResponse } from "./response.ts";

type FollowDeps = Pick<RouteDeps, "config" | "waitUntil" | "log" | "readers">;

/** Endings that the original stream reported as an error, and a replay reports the same way. */
const FAILED: Ending[] = ["model_error", "timeout", "shutdown"];

/**
 * A guess at when a re-attached stream of the user's ends (the true wait is
 * unknown: each ends with its reply, or when its client leaves).
 */
const REATTACH_RETRY_SECONDS = 5;

/**
 * The reply being written in the session, followed to its end in the protocol
 * the request names, else the one it was started in; null when none is. 429
 * when the user holds REATTACH_MAX_PER_USER re-attached streams on this
 * instance already.
 */
export async function reattach(
  deps: FollowDeps,
  claims: UserClaims,
  sessionId: string,
  ask: Omit<ProtocolAsk, "stored">,
): Promise<ReplyResponse | null> {
  const { config, readers } = deps;
  const free = readers.reattaching.take(claims.sub);
  if (!free) {
    throw new ApiError(
      429,
      `Too many re-attached streams: at most ${readers.reattaching.max} at once per user`,
      { "retry-after": String(REATTACH_RETRY_SECONDS) },
    );
  }
  try {
    // which reply streams, without its text (the shared poll reads that): 30 readers arriving
    // at once cost one read
    const first = await readers.polls.find(claims, sessionId);
    if (first.state !== "streaming") {
      free();
      return null;
    }
    const id = first.id!;
    // the row knows its model and protocol from its creation (turn/send.ts)
    const ids: ReplyIds = {
      sessionId,
      userMessageId: first.user_message_id!,
      replyId: id,
      model: first.model ?? "",
    };
    const protocol = chooseProtocol({ ...ask, stored: first.protocol }, config.streamProtocol);
    const follower = new AbortController();
    follower.signal.addEventListener("abort", free, { once: true });
    return replyResponse(protocol, {
      ids,
      chunks: follow(deps, claims, sessionId, id, follower.signal, free),
      abort: () => follower.abort(),
      waitUntil: deps.waitUntil,
      log: deps.log,
    });
  } catch (error) {
    free();
    throw error;
  }
}

/** The reply as it grows: each read's new text; at the end, the stored reply's rest and ending. */
async function* follow(
  deps: FollowDeps,
  claims: UserClaims,
  sessionId: string,
  id: string,
  detached: AbortSignal,
  free: () => void,
): AsyncGenerator<ReplyChunk> {
  const { config, readers } = deps;
  const poll = readers.polls.join(claims, sessionId, id, true);
  let sent = 0;
  // the writer's row lapses after QUOTA_REPLY_SLOT_SECONDS at the latest
  const until = performance.now() + config.quotas.replySlotSeconds * 1000;
  try {
    while (!detached.aborted) {
      const { text, last, over } = poll.view();
      if (text.length > sent) {
        const next = text.slice(sent);
        sent = text.length;
        yield { text: next };
      }
      if (over && last?.state === "stored") {
        const ending = last.finish_reason ?? "stop";
        if (FAILED.includes(ending)) {
          const why = ending === "shutdown"
            ? "the server writing it stopped before it was finished; send the message again"
            : `it ended early (${ending})`;
          throw Object.assign(new Error(`The reply was cut short: ${why}`), { ending });
        }
        const usage = last.prompt_tokens === null || last.completion_tokens === null
          ? undefined
          : { promptTokens: last.prompt_tokens, completionTokens: last.completion_tokens };
        yield { text: "", finishReason: ending, usage };
        return;
      }
      if (over || performance.now() > until) {
        throw Object.assign(
          new Error("The reply was not stored: its session was deleted, or it was replaced"),
          { ending: "session_deleted" },
        );
      }
      await poll.next(detached);
    }
  } finally {
    poll.leave();
    free();
  }
}
