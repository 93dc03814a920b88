/**
 * The reply's row, and the SQL that writes and reads it. A reply is one row
 * from the moment its user message is stored (turn/send.ts creates it, and its
 * id is the id the reply is stored under) until it is saved as an assistant
 * message: the instance writing it appends its text as it streams and reads, in
 * the same round trip, whether it was stopped or its session deleted meanwhile;
 * any instance can follow it (follow.ts) or ask it to stop (stop.ts).
 *
 * Every statement runs as the caller (RLS) through `chat_private`'s functions,
 * each called in exactly one place below: the caller may not write assistant
 * messages, usage or finish reasons itself.
 */
import type { UserClaims } from "../auth.ts";
import { queryAsCaller, retryWhileUnavailable, type Sql, type Tx } from "../database.ts";
import type { Ending, Usage } from "../model.ts";
import { storable } from "../storable_text.ts";
import { contentTokens } from "../token_budget.ts";
import type { Protocol } from "./protocols.ts";

/** A new reply, as the instance writing it knows it. */
export interface NewReply {
  id: string;
  sessionId: string;
  /** the user message it answers; an unfinished earlier answer to it is replaced when it is saved */
  replyTo: string;
  model: string;
  protocol: Protocol;
}

/**
 * What became of a reply in progress, as its writer reads it: still streaming,
 * stopped by a client (from any instance), its session deleted (nowhere to save
 * it), or its row lapsed.
 */
export type RowState = "streaming" | "stopped" | "session_deleted" | "released";

/** The writer's hold on its reply's row. */
export interface ReplyWriter {
  /** stores the reply (which removes the row); waits out a brief database outage */
  save: (content: string, ending: Ending, usage?: Usage) => Promise<void>;
  /** removes the row of a reply that will not be saved */
  release: () => Promise<void>;
  /** appends what the reply said since the last write, and reads what became of it */
  writeProgress: (delta: string) => Promise<RowState>;
}

export function replyWriter(
  sql: Sql,
  claims: UserClaims,
  reply: NewReply,
  log: (message: string, error?: unknown) => void,
): ReplyWriter {
  // the row must not outlive the reply, whether or not the reply could be saved (a save removes it)
  const release = async () => {
    await queryAsCaller(sql, claims, (tx) => releaseStatement(tx, reply.id))
      .catch((error) => log("releasing the reply's row failed", error));
  };
  return {
    release,
    // a reply outlives a brief database outage: its save waits for the database to return
    save: async (content, ending, usage) => {
      const tokens = await contentTokens(content);
      await retryWhileUnavailable(() =>
        queryAsCaller(
          sql,
          claims,
          (tx) => saveStatement(tx, reply, { content, ending, usage, tokens }),
        )
      ).catch(async (error) => {
        await release();
        throw error;
      });
    },
    writeProgress: async (delta) => {
      const [row] = await queryAsCaller(sql, claims, (tx) => progressStatement(tx, reply, delta));
      return row!.state;
    },
  };
}

/**
 * Stores the reply as an assistant message and removes its row. `saved` is false
 * when the session is gone or the message has a finished answer already.
 */
function saveStatement(
  tx: Tx,
  reply: NewReply,
  end: { content: string; ending: Ending; usage: Usage | undefined; tokens: number },
) {
  return tx<{ saved: boolean }[]>`
    select chat_private.save_reply(
      ${reply.id}, ${reply.sessionId}, ${storable(end.content)}, ${reply.model}, ${end.ending},
      ${end.tokens}, ${tokenCount(end.usage?.promptTokens)},
      ${tokenCount(end.usage?.completionTokens)}, ${reply.replyTo}) as saved`;
}

/** A token count as the model reported it, or null (unknown) when it is not one a column can hold. */
function tokenCount(reported: number | undefined): number | null {
  return Number.isSafeInteger(reported) && reported! >= 0 && reported! <= 2 ** 31 - 1
    ? reported!
    : null;
}

/** Removes the row of a reply that could not be saved. */
function releaseStatement(tx: Tx, id: string) {
  return tx`select chat_private.release_reply(${id})`;
}

/**
 * Appends `delta` to the reply in progress (so another connection can follow it)
 * and reads, in the same round trip, what became of it.
 */
function progressStatement(tx: Tx, reply: NewReply, delta: string) {
  return tx<{ state: RowState }[]>`
    select chat_private.write_partial(${reply.id}, ${reply.sessionId},
                                      ${storable(delta)}) as state`;
}

/** Asks the reply in progress in a session to stop; its id, or null when none streams. */
export async function requestStop(sql: Sql, claims: UserClaims, sessionId: string) {
  const [row] = await queryAsCaller(
    sql,
    claims,
    (tx) => tx<{ id: string | null }[]>`select chat_private.request_stop(${sessionId}) as id`,
  );
  return row!.id;
}

/** A reply as a re-attaching client follows it: in progress (text so far), stored, or gone. */
export interface FollowedReply {
  state: "streaming" | "stored" | "gone";
  id: string | null;
  user_message_id: string | null;
  model: string | null;
  /** the protocol it was started in (null once stored) */
  protocol: Protocol | null;
  content: string | null;
  finish_reason: Ending | null;
  prompt_tokens: number | null;
  completion_tokens: number | null;
}

/** The reply in progress in a session (`id` null), or the one followed by its id. */
export async function followReply(
  sql: Sql,
  claims: UserClaims,
  sessionId: string,
  id: string | null,
): Promise<FollowedReply> {
  const [row] = await queryAsCaller(
    sql,
    claims,
    (tx) => tx<FollowedReply[]>`select * from chat_private.follow_reply(${sessionId}, ${id})`,
  );
  return { ...row!, protocol: row!.protocol ?? null };
}
