/**
 * What a turn does with its reply's handle once the message is stored: saves
 * the reply under it however the stream ends, frees it when the reply cannot
 * be saved, and persists it as it streams, reading whether it was stopped or
 * its session deleted meanwhile.
 */
import type { UserClaims } from "../auth.ts";
import { releaseReply, saveReply, writePartial } from "../chat_store.ts";
import { queryAsCaller, retryWhileUnavailable, type Sql } from "../database.ts";
import type { Ending, Usage } from "../model.ts";
import { contentTokens } from "../token_budget.ts";

export interface ReplySlot {
  /** saves the reply (and frees the slot); waits out a brief database outage */
  save: (content: string, ending: Ending, usage?: Usage) => Promise<void>;
  /** frees the slot of a reply that will not be saved */
  release: () => Promise<void>;
  /**
   * appends what the reply said since the last write to its persisted partial (so another
   * connection can resume it) and reads its state: a stop or the session's deletion, asked
   * for by any instance, is seen here
   */
  writePartial: (delta: string) => Promise<string>;
}

export function replySlot(
  sql: Sql,
  claims: UserClaims,
  log: (message: string, error?: unknown) => void,
  reply: { id: string; sessionId: string; replyTo: string; model: string },
): ReplySlot {
  const { sessionId } = reply;
  // the slot must not outlive the reply, whether or not the reply could be saved (a save frees it)
  const release = async () => {
    await queryAsCaller(sql, claims, (tx) => releaseReply(tx, reply.id))
      .catch((error) => log("freeing the reply slot failed", error));
  };
  return {
    release,
    // a reply outlives a brief database outage: its save waits for the database to return
    save: async (content, ending, usage) => {
      const tokens = await contentTokens(content);
      await retryWhileUnavailable(() =>
        queryAsCaller(sql, claims, (tx) =>
          saveReply(tx, {
            id: reply.id,
            sessionId,
            content,
            model: reply.model,
            ending,
            usage,
            tokens,
            replyTo: reply.replyTo,
          }))
      ).catch(async (error) => {
        await release();
        throw error;
      });
    },
    writePartial: async (delta) => {
      const [row] = await queryAsCaller(
        sql,
        claims,
        (tx) => writePartial(tx, { id: reply.id, sessionId, delta }),
      );
      return row!.state;
    },
  };
}
