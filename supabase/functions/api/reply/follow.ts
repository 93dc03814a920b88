/**
 * Re-attaching to a reply in progress, from any connection, device or
 * instance: only Postgres is shared. The instance writing the reply appends
 * its text to the reply's row as it streams (relay.ts); a re-attached stream
 * replays that text from the start, follows the row by polling it, and ends
 * with the stored reply. A follower is a reader: its relay writes no row, and
 * ends when its client leaves.
 */
import type { UserClaims } from "../auth.ts";
import type { RouteDeps } from "../deps.ts";
import type { Ending, ReplyChunk } from "../model.ts";
import type { ReplyIds } from "./protocols.ts";
import { chooseProtocol, type ProtocolAsk, type ReplyResponse, replyResponse } from "./response.ts";
import { type FollowedReply, followReply } from "./row.ts";

type FollowDeps = Pick<RouteDeps, "sql" | "config" | "waitUntil" | "log">;

/** Endings that the original stream reported as an error, and a replay reports the same way. */
const FAILED: Ending[] = ["model_error", "timeout", "shutdown"];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The reply being written in the session, followed to its end in the protocol
 * the request names, else the one it was started in; null when none is.
 */
export async function reattach(
  deps: FollowDeps,
  claims: UserClaims,
  sessionId: string,
  ask: Omit<ProtocolAsk, "stored">,
): Promise<ReplyResponse | null> {
  const { sql, config } = deps;
  const first = await followReply(sql, claims, sessionId, null);
  if (first.state !== "streaming") return null;
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
  return replyResponse(protocol, {
    ids,
    chunks: follow(deps, claims, sessionId, first, follower.signal),
    abort: () => follower.abort(),
    waitUntil: deps.waitUntil,
    log: deps.log,
  });
}

/** The reply as it grows: each read's new text; at the end, the stored reply's rest and ending. */
async function* follow(
  deps: FollowDeps,
  claims: UserClaims,
  sessionId: string,
  first: FollowedReply,
  detached: AbortSignal,
): AsyncGenerator<ReplyChunk> {
  const { sql, config } = deps;
  let row = first;
  let sent = 0;
  // the writer's row lapses after QUOTA_REPLY_SLOT_SECONDS at the latest
  const until = performance.now() + config.quotas.replySlotSeconds * 1000;
  while (!detached.aborted) {
    const text = row.content ?? "";
    if (text.length > sent) {
      yield { text: text.slice(sent) };
      sent = text.length;
    }
    if (row.state === "stored") {
      const ending = row.finish_reason ?? "stop";
      if (FAILED.includes(ending)) {
        const why = ending === "shutdown"
          ? "the server writing it stopped before it was finished; send the message again"
          : `it ended early (${ending})`;
        throw Object.assign(new Error(`The reply was cut short: ${why}`), { ending });
      }
      const usage = row.prompt_tokens === null || row.completion_tokens === null
        ? undefined
        : { promptTokens: row.prompt_tokens, completionTokens: row.completion_tokens };
      yield { text: "", finishReason: ending, usage };
      return;
    }
    if (row.state === "gone" || performance.now() > until) {
      throw Object.assign(
        new Error("The reply was not stored: its session was deleted, or it was replaced"),
        { ending: "session_deleted" },
      );
    }
    await sleep(config.model.replyPersistMs);
    try {
      row = await followReply(sql, claims, sessionId, first.id);
    } catch (error) {
      // the database briefly away: read again next time
      deps.log("following a reply failed", error);
    }
  }
}
