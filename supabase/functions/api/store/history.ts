/**
 * A session's messages read back: a page at a time in conversation order
 * (for a streamed history or an export), as rows or as JSON Postgres writes,
 * or the newest page before a point (history pages). Run as the caller, so
 * RLS shows only the caller's sessions: another user's reads as one that
 * does not exist.
 */
import type { z } from "@hono/zod-openapi";
import type { Tx } from "../database.ts";
import type { Message } from "../schemas.ts";

/** A message as the API answers it. */
export type StoredMessage = z.output<typeof Message>;

/**
 * How much of a history one page may hold: up to this many messages, and no
 * more content than this (one message is always let through, whatever its
 * size), so a page of large messages stays small in memory.
 */
const historyPage = { messages: 500, bytes: 256 * 1024 };

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
