/**
 * The queries behind the routes. Each runs in a transaction opened by
 * `asCaller` or `queryAsCaller`, so RLS scopes every statement to the
 * caller: none of them says whose rows it wants. Single statements are
 * returned unsent, for `queryAsCaller` to send in one round trip.
 */
import type { Tx } from "./database.ts";
import type { Ending, PromptMessage, Usage } from "./model.ts";

export interface SessionSummary {
  id: string;
  title: string;
  created_at: string;
  updated_at: string;
}

export interface Session extends SessionSummary {
  user_id: string;
}

export interface StoredMessage {
  id: string;
  chat_session_id: string;
  role: "user" | "assistant" | "system";
  content: string;
  created_at: string;
}

export function listSessions(tx: Tx) {
  return tx<SessionSummary[]>`
    select id, title, created_at, updated_at from public.chat_sessions
    order by updated_at desc, id desc`;
}

/** Where a page of sessions ends: the last session's sort key. */
export type SessionPosition = [updatedAt: string, id: string];

/** A page of sessions after `before` (one more than `limit`, to tell whether another page follows). */
export function listSessionsPage(tx: Tx, limit: number, before: SessionPosition | null) {
  const after = before
    ? tx`where (updated_at, id) < (${before[0]}::timestamptz, ${before[1]}::uuid)`
    : tx``;
  return tx<SessionSummary[]>`
    select id, title, created_at, updated_at from public.chat_sessions ${after}
    order by updated_at desc, id desc
    limit ${limit + 1}`;
}

/** The caller's session, or no row. */
export function findSession(tx: Tx, sessionId: string) {
  return tx<SessionSummary[]>`
    select id, title, created_at, updated_at from public.chat_sessions where id = ${sessionId}`;
}

/**
 * How much of a history one page may hold: up to this many messages, and no
 * more content than this (one message is always let through, whatever its
 * size), so a page of large messages stays small in memory.
 */
export const historyPage = { messages: 500, bytes: 256 * 1024 };

/**
 * A page of a session's messages after message number `after`, in
 * conversation order, bounded by `historyPage`. An empty page: nothing
 * follows (or the session is not the caller's).
 */
export function messagesAfter(tx: Tx, sessionId: string, after: number) {
  return tx<(StoredMessage & { seq: string })[]>`
    select id, chat_session_id, role, content, created_at, seq
    from (${pageAfter(tx, sessionId, after)}) page
    order by seq`;
}

/**
 * The same page as JSON, written by Postgres and read as raw bytes, so the
 * messages' text is never decoded into the function's heap: `json` holds
 * the page's messages as `JSON.stringify` writes a `StoredMessage`, joined
 * by commas (null when nothing follows), `last` the last one's number,
 * `found` whether the caller has this session, and `more` whether messages
 * follow the page. (`row_to_json` writes
 * compact JSON, escaping exactly as JSON.stringify does for text Postgres
 * can hold; timestamps as ISO 8601 with offset, as `database.ts` parses
 * them; a test compares the two byte for byte.)
 */
export function messagesJsonAfter(tx: Tx, sessionId: string, after: number) {
  // `more`: whether a message follows the page (one index probe), so the last page needs no
  // further round trip to learn that nothing follows
  return tx`
    select json, last, found,
           exists (select 1 from public.messages
                   where chat_session_id = ${sessionId} and seq > coalesce(last, ${after})) as more
    from (
      select string_agg(row_to_json(message)::text, ',' order by page.seq) as json,
             max(page.seq) as last,
             exists (select 1 from public.chat_sessions where id = ${sessionId}) as found
      from (${pageAfter(tx, sessionId, after)}) page
      cross join lateral (
        select page.id, page.chat_session_id, page.role, page.content, page.created_at
      ) message
    ) read`.raw();
}

/** The rows of a page after `after`, bounded by `historyPage`: an index range, read no further than needed. */
function pageAfter(tx: Tx, sessionId: string, after: number) {
  // octet_length reads a stored value's size without fetching or decompressing it
  return tx`
    select id, chat_session_id, role, content, created_at, seq from (
      select id, chat_session_id, role, content, created_at, seq,
             sum(octet_length(content)) over (order by seq) - octet_length(content) as before
      from public.messages
      where chat_session_id = ${sessionId} and seq > ${after}
      order by seq
      limit ${historyPage.messages}
    ) counted
    where before < ${historyPage.bytes}`;
}

export interface SearchHit extends SessionSummary {
  snippet: string;
}

/**
 * The caller's sessions whose title or messages match `query` (web-search
 * syntax: words, "phrases", -exclusions), best match first, each with a
 * snippet around its best match (matches between ** and **).
 *
 * Shaped so that it reads only the caller's rows. `@@` is not leakproof, so
 * under RLS Postgres must check the policy before it may apply `@@` to a row,
 * and a search of `messages` alone scans every user's messages. Instead the
 * query starts from the caller's sessions (the policy is an index range on
 * `user_id`) and reaches each one's messages by `chat_session_id`: the
 * `limit 1` keeps that lateral subquery from being flattened into a join the
 * planner could drive from a scan of the whole table.
 */
export function searchSessions(tx: Tx, query: string, limit: number, offset: number) {
  return tx<SearchHit[]>`
    with q as (select websearch_to_tsquery('simple', ${query}) as q),
    mine as materialized (
      select id, title, created_at, updated_at, search from public.chat_sessions
    ),
    hits as (
      select s.id, ts_rank(s.search, q.q) * 2 as rank, null::bigint as seq, null::text as content
      from mine s, q where s.search @@ q.q
      union all
      select s.id, m.rank, m.seq, m.content
      from mine s cross join q cross join lateral (
        select ts_rank(m.search, q.q) as rank, m.seq, m.content from public.messages m
        where m.chat_session_id = s.id and m.search @@ q.q
        order by rank desc, m.seq desc
        limit 1
      ) m
    ),
    best as (
      select distinct on (id) id, rank, content from hits order by id, rank desc, seq desc
    )
    select s.id, s.title, s.created_at, s.updated_at,
           ts_headline('simple', coalesce(b.content, s.title), q.q,
                       'StartSel=**, StopSel=**, MaxWords=24, MinWords=8, MaxFragments=1') as snippet
    from best b
    join mine s on s.id = b.id
    cross join q
    order by b.rank desc, s.updated_at desc, s.id desc
    limit ${limit + 1} offset ${offset}`;
}

/**
 * A page of a session's messages: the newest ones before message number
 * `before`, newest first (one more than `limit`). No row at all when there is
 * no such session of the caller's; one row with null fields when it has none.
 */
export function readHistoryPage(tx: Tx, sessionId: string, limit: number, before: number | null) {
  const older = before === null ? tx`` : tx`and seq < ${before}`;
  return tx<((StoredMessage & { seq: string }) | { id: null })[]>`
    select m.id, s.id as chat_session_id, m.role, m.content, m.created_at, m.seq
    from public.chat_sessions s
    left join lateral (
      select id, role, content, created_at, seq from public.messages
      where chat_session_id = s.id ${older}
      order by seq desc limit ${limit + 1}
    ) m on true
    where s.id = ${sessionId}`;
}

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

export function renameSession(tx: Tx, sessionId: string, title: string) {
  return tx<Session[]>`
    update public.chat_sessions set title = ${title}, title_set_by = 'user' where id = ${sessionId}
    returning id, title, user_id, created_at, updated_at`;
}

/** A generated title, stored only while the session still has the title it was created with. */
export function setGeneratedTitle(tx: Tx, sessionId: string, title: string) {
  return tx`
    update public.chat_sessions set title = ${title}, title_set_by = 'model'
    where id = ${sessionId} and title_set_by = 'default'`;
}

export function deleteSession(tx: Tx, sessionId: string) {
  return tx`delete from public.chat_sessions where id = ${sessionId}`;
}

/** RLS limits this to the caller's own sessions; their messages go with them. */
export function deleteAllSessions(tx: Tx) {
  return tx`delete from public.chat_sessions`;
}

export interface UsageRow {
  day: string;
  model: string | null;
  replies: number;
  prompt_tokens: number;
  completion_tokens: number;
}

/**
 * The caller's replies and tokens per UTC day and model, from one day to
 * another (both included). Sums are bigint (a day's tokens pass 2^31 long
 * before anything else does) and leave as JSON numbers: exact up to 2^53,
 * which a day's tokens of one user cannot reach (4 million replies at the
 * largest count a reply can record).
 */
export function usageByDay(tx: Tx, from: string, to: string) {
  // through the caller's sessions, so the work grows with their data, not everyone's
  return tx<UsageCounts[]>`
    select to_char(m.created_at at time zone 'utc', 'YYYY-MM-DD') as day, m.model,
           count(*) as replies,
           coalesce(sum(m.prompt_tokens), 0)::bigint as prompt_tokens,
           coalesce(sum(m.completion_tokens), 0)::bigint as completion_tokens
    from public.chat_sessions s
    join public.messages m on m.chat_session_id = s.id
    where m.role = 'assistant'
      and m.created_at >= ${from}::date and m.created_at < ${to}::date + 1
    group by 1, 2
    order by 1, 2`;
}

/** bigint counts, as the driver returns them (strings) */
type UsageCounts = {
  [K in keyof UsageRow]: UsageRow[K] extends number ? string : UsageRow[K];
};

export function usageRow(row: UsageCounts): UsageRow {
  return {
    ...row,
    replies: Number(row.replies),
    prompt_tokens: Number(row.prompt_tokens),
    completion_tokens: Number(row.completion_tokens),
  };
}
