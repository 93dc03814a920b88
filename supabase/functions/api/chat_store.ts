/**
 * The queries behind the routes. Each runs in a transaction opened by
 * `asCaller` or `queryAsCaller`, so RLS scopes every statement to the
 * caller: none of them says whose rows it wants. Single statements are
 * returned unsent, for `queryAsCaller` to send in one round trip.
 */
import type { Tx } from "./database.ts";
import type { Ending, Usage } from "./model.ts";
import { storable } from "./storable_text.ts";
import type { Protocol } from "./stream_protocols.ts";

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

/**
 * Appends what the model wrote since the last call to the reply in progress
 * (so another connection can follow it) and reads, in the same round trip,
 * what became of it: its session deleted (stop now), still streaming, its row
 * lapsed, or `stopped` when a client asked to stop it.
 */
export function writePartial(tx: Tx, reply: { id: string; sessionId: string; delta: string }) {
  return tx<{ state: "session_deleted" | "streaming" | "released" | "stopped" }[]>`
    select chat_private.write_partial(${reply.id}, ${reply.sessionId},
                                      ${storable(reply.delta)}) as state`;
}

/** Asks the reply in progress in a session to stop; its id, or null when none streams. */
export function requestStop(tx: Tx, sessionId: string) {
  return tx<{ id: string | null }[]>`select chat_private.request_stop(${sessionId}) as id`;
}

/** A reply as a re-attaching client follows it: in progress (text so far), stored, or gone. */
export interface FollowedReply {
  state: "streaming" | "stored" | "gone";
  id: string | null;
  user_message_id: string | null;
  model: string | null;
  /** the protocol a reply in progress was asked for (null once stored) */
  protocol: Protocol | null;
  content: string | null;
  finish_reason: Ending | null;
  prompt_tokens: number | null;
  completion_tokens: number | null;
}

/** The reply in progress in a session (`id` null), or the one followed by its id. */
export function followReply(tx: Tx, sessionId: string, id: string | null) {
  return tx<FollowedReply[]>`select * from chat_private.follow_reply(${sessionId}, ${id})`;
}

/** Deletes the row of a reply that could not be saved, which frees it for the quota. */
export function releaseReply(tx: Tx, id: string) {
  return tx`select chat_private.release_reply(${id})`;
}

/**
 * Stores a reply under its id and deletes its row (which frees it for the
 * quota), through chat_private (the caller may not write assistant messages,
 * usage or finish reasons). `saved` is false when the session is gone; the
 * row goes all the same.
 */
export function saveReply(
  tx: Tx,
  reply: {
    id: string;
    sessionId: string;
    content: string;
    model: string;
    ending: Ending;
    usage: Usage | undefined;
    /** the reply's own tokens, for the budget of later turns */
    tokens: number;
    /** the user message it answers; an unfinished earlier answer to it is replaced */
    replyTo: string;
  },
) {
  return tx<{ saved: boolean }[]>`
    select chat_private.save_reply(
      ${reply.id}, ${reply.sessionId}, ${storable(reply.content)}, ${reply.model}, ${reply.ending},
      ${reply.tokens}, ${tokenCount(reply.usage?.promptTokens)},
      ${tokenCount(reply.usage?.completionTokens)}, ${reply.replyTo}) as saved`;
}

/** A token count as the model reported it, or null (unknown) when it is not one a column can hold. */
function tokenCount(reported: number | undefined): number | null {
  return Number.isSafeInteger(reported) && reported! >= 0 && reported! <= 2 ** 31 - 1
    ? reported!
    : null;
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
