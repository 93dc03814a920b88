/**
 * The queries behind the routes. Each runs in a transaction opened by
 * `asCaller` or `queryAsCaller`, so RLS scopes every statement to the
 * caller: none of them says whose rows it wants. Single statements are
 * returned unsent, for `queryAsCaller` to send in one round trip.
 */
import type { Tx } from "./database.ts";
import type { Ending, PromptMessage, Usage } from "./model.ts";

export interface QuotaUse {
  sent_today: number;
  /** seconds until the count of the last 24 hours falls below the daily limit */
  day_frees_in: number;
  streaming: number;
  /** seconds until the first running reply slot lapses at the latest (sooner when its reply ends) */
  slot_frees_in: number;
}

/**
 * What the caller has used of their quotas, under a per-user lock held to
 * the end of the transaction: concurrent sends of one user are counted one
 * after another, so none can slip past a limit. The counters live in
 * chat_private, out of the Data API's reach.
 */
export async function quotaUse(tx: Tx, messagesPerDay: number): Promise<QuotaUse> {
  const [use] = await tx<QuotaUse[]>`select * from chat_private.quota_use(${messagesPerDay})`;
  return use!;
}

/**
 * Begins the reply to a user message: takes its handle, a row that is also a
 * reply slot, lapses by itself after `seconds`, and whose id the reply is
 * stored under (reply/row.ts saves or releases it). Null when a reply to
 * this message is already being written: at most one handle per message, taken
 * under that row's unique key, so concurrent sends of one message id make one
 * model call. `countSend`: the send counts for the daily quota (a retry).
 */
export function beginReply(
  tx: Tx,
  reply: { sessionId: string; userMessageId: string; seconds: number; countSend: boolean },
) {
  return tx<{ id: string | null }[]>`
    select chat_private.begin_reply(${reply.sessionId}, ${reply.userMessageId},
                                    ${reply.seconds}, ${reply.countSend}) as id`;
}

export interface Turn {
  userMessageId: string;
  /** the newest stored messages that fit the budget, oldest first, the new message last */
  history: PromptMessage[];
  /** the session's title is still the one it was created with */
  untitled: boolean;
  /** the message was stored by an earlier send with the same client message id */
  retried: boolean;
  /** a retried message that later user messages followed: its reply can no longer be asked again */
  superseded?: boolean;
  /** a completed reply to this very message exists already (a retried send) */
  storedReply?: { id: string; content: string; model: string; ending: Ending; usage?: Usage };
}

/**
 * Everything a new message does before the model is called: creates the
 * session if the id is new, stores the message (once per client message id)
 * and reads the history. Null when the id is another user's session;
 * "conflict" when the client message id is taken by a different message.
 */
export async function beginTurn(
  tx: Tx,
  turn: {
    sessionId: string;
    content: string;
    /** the new message's own tokens, stored with it */
    tokens: number;
    clientMessageId: string | null;
    /** room for earlier messages, in tokens, and what the chat format adds per message */
    history: { tokens: number; perMessage: number };
  },
): Promise<Turn | "conflict" | null> {
  // Two statements sent together. A separate first statement, because the
  // second must see the new session. Another user's id conflicts here and is
  // then invisible to the second. Sessions and messages are written through
  // chat_private: the caller may not insert them directly (see its migration).
  const created = tx`select chat_private.open_session(${turn.sessionId})`.execute();
  const stored = tx<
    {
      found: boolean;
      untitled: boolean;
      user_message_id: string | null;
      history: PromptMessage[];
    }[]
  >`
    with session as (
      select id, title_set_by from public.chat_sessions where id = ${turn.sessionId}
    ), inserted as (
      -- its own write is not seen by the rest of this statement: the history below is what came before
      select seq, role, content, id from chat_private.add_user_message(
        ${turn.sessionId}, ${turn.content}, ${turn.clientMessageId}, ${turn.tokens})
    ), latest as (
      -- what the whole conversation so far costs in a prompt
      select tokens_before + coalesce(tokens, octet_length(content)) + ${turn.history.perMessage} as total
      from public.messages
      where chat_session_id = (select id from session)
      order by seq desc
      limit 1
    ), earlier as (
      -- The newest earlier turns that fit the room the budget leaves: one range of the running
      -- total's index, so only what fits is read. A reply that failed before its first word says
      -- nothing to the model.
      select seq, role, content from public.messages
      where chat_session_id = (select id from session)
        and tokens_before >= (select total from latest) - ${turn.history.tokens}
        and not (role = 'assistant' and content = '')
    ), conversation as (
      select seq, role, content from earlier
      union all
      select seq, role, content from inserted
    )
    select
      exists (select 1 from session) as found,
      coalesce((select title_set_by = 'default' from session), false) as untitled,
      (select id from inserted) as user_message_id,
      coalesce(
        (select json_agg(json_build_object('role', role, 'content', content) order by seq)
         from conversation),
        '[]'
      ) as history`.execute();
  // the first failure is the cause: the second statement then only reports an aborted transaction
  const [creation, storing] = await Promise.allSettled([created, stored]);
  if (creation.status === "rejected") throw creation.reason;
  if (storing.status === "rejected") throw storing.reason;
  const [row] = storing.value;
  if (!row?.found) return null;
  if (row.user_message_id) {
    return {
      userMessageId: row.user_message_id,
      history: row.history,
      untitled: row.untitled,
      retried: false,
    };
  }
  return await retriedTurn(tx, turn, row.untitled);
}

/**
 * A send whose client message id is stored already: find it and its answer.
 * A completed answer is replayed; otherwise the model is asked again with
 * the history up to this message (never the unfinished answer), so the
 * prompt ends with the user's message.
 */
async function retriedTurn(
  tx: Tx,
  turn: {
    sessionId: string;
    content: string;
    clientMessageId: string | null;
    history: { tokens: number };
  },
  untitled: boolean,
): Promise<Turn | "conflict"> {
  const [row] = await tx<
    {
      id: string;
      sent: string;
      superseded: boolean;
      history: PromptMessage[];
      reply_id: string | null;
      content: string | null;
      model: string | null;
      finish_reason: Ending | null;
      prompt_tokens: number | null;
      completion_tokens: number | null;
    }[]
  >`
    select m.id, m.content as sent, r.id as reply_id, r.content, r.model,
           r.finish_reason, r.prompt_tokens, r.completion_tokens,
           exists (
             select 1 from public.messages later
             where later.chat_session_id = m.chat_session_id and later.seq > m.seq
               and later.role = 'user'
           ) as superseded,
           (
             -- the newest earlier turns that fit, as for a new message, then the message itself
             select json_agg(json_build_object('role', c.role, 'content', c.content) order by c.seq)
             from (
               select e.seq, e.role, e.content from public.messages e
               where e.chat_session_id = m.chat_session_id and e.seq < m.seq
                 and e.tokens_before >= m.tokens_before - ${turn.history.tokens}
                 and not (e.role = 'assistant' and e.content = '')
               union all
               select m.seq, m.role, m.content
             ) c
           ) as history
    from public.messages m
    left join public.messages r on r.reply_to = m.id
    where m.chat_session_id = ${turn.sessionId} and m.client_message_id = ${turn.clientMessageId}`;
  if (row!.sent !== turn.content) return "conflict";
  const retried: Turn = {
    userMessageId: row!.id,
    history: row!.history,
    untitled,
    retried: true,
    superseded: row!.superseded,
  };
  // a stopped reply is finished as the user chose: replayed, never written again
  const completed = ["stop", "length", "content_filter", "tool_calls", "stopped"];
  if (row!.reply_id && completed.includes(row!.finish_reason ?? "")) {
    retried.storedReply = {
      id: row!.reply_id,
      content: row!.content!,
      model: row!.model ?? "",
      ending: row!.finish_reason!,
      usage: row!.prompt_tokens === null || row!.completion_tokens === null
        ? undefined
        : { promptTokens: row!.prompt_tokens, completionTokens: row!.completion_tokens },
    };
  }
  return retried;
}
