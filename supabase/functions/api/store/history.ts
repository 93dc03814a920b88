/**
 * A session's whole conversation tree read back, every branch, a page at a
 * time in the order it was written (an export of the tree; a branch alone is
 * read by `branch.ts`). Run as the caller, so RLS shows only the caller's
 * sessions: another user's reads as one that does not exist.
 */
import type { z } from "@hono/zod-openapi";
import type { Tx } from "../database.ts";
import type { Message } from "../schemas.ts";

/** A message as an export writes it, with its parent. */
export type StoredMessage = z.output<typeof Message>;

/**
 * How much of a history one page may hold: up to this many messages, and no
 * more content than this (one message is always let through, whatever its
 * size), so a page of large messages stays small in memory.
 */
export const historyPage = { messages: 500, bytes: 256 * 1024 };

/**
 * A page of all of a session's messages after message number `after`, in
 * the order they were written (a parent always before its children), bounded
 * by `historyPage`. An empty page: nothing follows (or the session is not the
 * caller's).
 */
export function messagesAfter(tx: Tx, sessionId: string, after: number) {
  // octet_length reads a stored value's size without fetching or decompressing it
  return tx<(StoredMessage & { seq: string })[]>`
    select id, chat_session_id, role, content, created_at, parent_id, seq from (
      select id, chat_session_id, role, content, created_at, parent_id, seq,
             sum(octet_length(content)) over (order by seq) - octet_length(content) as before
      from public.messages
      where chat_session_id = ${sessionId} and seq > ${after}
      order by seq
      limit ${historyPage.messages}
    ) counted
    where before < ${historyPage.bytes}
    order by seq`;
}
