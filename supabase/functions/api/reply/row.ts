/**
 * The reply's row, and the SQL that writes and reads it. A reply is one row
 * from the moment its user message is stored (turn/send.ts creates it, and its
 * id is the id the reply is stored under) until it is saved as an assistant
 * message: the instance writing it polls it as it streams, learning in that
 * round trip whether it was stopped, its session deleted or a reader
 * re-attached meanwhile, and appends its text only while someone can re-attach
 * for it; any instance can follow it (follow.ts, shared_polls.ts) or ask it to
 * stop (stop.ts).
 *
 * Every statement runs as the caller (RLS) through `chat_private`'s functions,
 * each called in exactly one place below: the caller may not write assistant
 * messages, usage or finish reasons itself.
 */
import type { UserClaims } from "../auth.ts";
import { queryAsCaller, type Sql, type Tx } from "../database.ts";
import { retryWhileUnavailable } from "../database_errors.ts";
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
 * What became of a reply in progress, as its writer reads it: still streaming
 * (`followed`: and a re-attached reader asked for its text), stopped by a
 * client (from any instance), its session deleted (nowhere to save it), or its
 * row lapsed.
 */
export type RowState = "streaming" | "followed" | "stopped" | "session_deleted" | "released";

/** The writer's hold on its reply's row. */
export interface ReplyWriter {
  /** stores the reply (which removes the row); waits out a brief database outage */
  save: (content: string, ending: Ending, usage?: Usage) => Promise<void>;
  /** removes the row of a reply that will not be saved */
  release: () => Promise<void>;
  /**
   * appends `delta` (what the reply said since the last write; "" writes nothing) after the
   * text written so far, and reads what became of the reply
   */
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
  // where the next part starts, in characters as Postgres counts them (code points)
  let written = 0;
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
      const part = storable(delta);
      const [row] = await queryAsCaller(
        sql,
        claims,
        (tx) => progressStatement(tx, reply, part, written),
      );
      written += codePoints(part);
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
 * Appends `part` to the reply in progress as the part starting at `offset` (so
 * another connection can follow it) and reads, in the same round trip, what
 * became of it; with no text, only reads.
 */
function progressStatement(tx: Tx, reply: NewReply, part: string, offset: number) {
  return tx<{ state: RowState }[]>`
    select chat_private.write_partial(${reply.id}, ${reply.sessionId},
                                      ${part}, ${offset}) as state`;
}

/** Characters as Postgres counts them: code points (storable text has no lone surrogates). */
export function codePoints(text: string): number {
  let count = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0xdc00 || unit > 0xdfff) count++;
  }
  return count;
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

/**
 * A reply as a re-attaching client follows it: in progress, stored, or gone;
 * its text from the offset asked for.
 */
export interface FollowedReply {
  state: "streaming" | "stored" | "gone";
  id: string | null;
  user_message_id: string | null;
  model: string | null;
  /** the protocol it was started in (null once stored) */
  protocol: Protocol | null;
  /** the text from the offset asked for (streaming: null when none was asked for) */
  content: string | null;
  /** where that text ends, in code points: the offset to ask for next */
  text_length: number | null;
  finish_reason: Ending | null;
  prompt_tokens: number | null;
  completion_tokens: number | null;
}

/**
 * The reply in progress in a session (`id` null), or the one followed by its
 * id, with its text from code point `after` on; `after` null reads no text of
 * a reply in progress (and does not ask its writer to write any), and the
 * whole of a stored one.
 */
export async function followReply(
  sql: Sql,
  claims: UserClaims,
  sessionId: string,
  id: string | null,
  after: number | null,
): Promise<FollowedReply> {
  const [row] = await queryAsCaller(
    sql,
    claims,
    (tx) =>
      tx<FollowedReply[]>`
        select * from chat_private.follow_reply(${sessionId}, ${id}, ${after}::integer)`,
  );
  return { ...row!, protocol: row!.protocol ?? null };
}
