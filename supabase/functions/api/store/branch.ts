/**
 * A branch of a session's conversation tree read back: the current one, or
 * the one through a message the request names, a page at a time. A branch is
 * read up from its leaf, a message by primary key per step (a recursive
 * query): its cost is the branch's length, never the session's size. Run as
 * the caller, so RLS shows only the caller's sessions: another user's reads as
 * one that does not exist.
 */
import type { z } from "@hono/zod-openapi";
import type { Tx } from "../database.ts";
import type { BranchMessage } from "../schemas.ts";
import { historyPage } from "./history.ts";

/** A message of a branch as the API answers it. */
export type BranchMessageRow = z.output<typeof BranchMessage>;

/**
 * Where a branch ends: a leaf pinned by an earlier page, the newest leaf
 * under a message the request names, or (neither) the session's current leaf.
 */
export type BranchEnd = { leaf: string } | { through: string } | { current: true };

/** The leaf `end` names in the session, as one row `leaf(id)` (none: no such leaf). */
function leafOf(tx: Tx, sessionId: string, end: BranchEnd) {
  if ("leaf" in end) return tx`select ${end.leaf}::uuid as id`;
  if ("through" in end) {
    // the newest message under it has no children: a child is numbered after its parent
    return tx`
      with recursive subtree (id, seq) as (
        select m.id, m.seq from public.messages m
        where m.id = ${end.through} and m.chat_session_id = ${sessionId}
        union all
        select c.id, c.seq from subtree t join public.messages c on c.parent_id = t.id
      )
      select id from subtree order by seq desc limit 1`;
  }
  return tx`select current_message_id as id from public.chat_sessions where id = ${sessionId}`;
}

/**
 * The common table expressions of a page of the branch ending at `end`:
 * `leaf(id)`; `branch(id, parent_id, seq)`, its messages numbered after
 * `after`, walked up from the leaf and no further; and `page(id, seq)`, the
 * first of them, bounded by `historyPage`.
 */
function pageAfter(tx: Tx, sessionId: string, end: BranchEnd, after: number) {
  // octet_length reads a stored value's size without fetching or decompressing it
  return tx`
    leaf as (${leafOf(tx, sessionId, end)}),
    branch (id, parent_id, seq) as (
      select m.id, m.parent_id, m.seq from public.messages m join leaf on m.id = leaf.id
      where m.chat_session_id = ${sessionId} and m.seq > ${after}
      union all
      select p.id, p.parent_id, p.seq from branch b join public.messages p on p.id = b.parent_id
      where p.seq > ${after}
    ),
    page as (
      select id, seq from (
        select b.id, b.seq,
               sum(octet_length(m.content)) over (order by b.seq) - octet_length(m.content)
                 as before
        from (select id, seq from branch order by seq limit ${historyPage.messages}) b
        join public.messages m on m.id = b.id
      ) counted
      where before < ${historyPage.bytes}
    )`;
}

/** A message's siblings (its parent's children, or the session's first messages), oldest first. */
const siblingIds = (tx: Tx) =>
  tx`case when m.parent_id is null
       then (select json_agg(s.id order by s.seq) from public.messages s
             where s.chat_session_id = m.chat_session_id and s.parent_id is null)
       else (select json_agg(s.id order by s.seq) from public.messages s
             where s.parent_id = m.parent_id) end`;

/**
 * A page of the branch ending at `end`, after message number `after`, as JSON
 * Postgres writes, for reading as raw bytes (`.raw()`), so the messages' text
 * is never decoded into the function's heap: `json` holds the page's messages as
 * `JSON.stringify` writes a `BranchMessageRow`, joined by commas (null when
 * nothing follows), `last` the last one's number, `found` whether the caller
 * has this session, `more` whether messages of the branch follow the page,
 * and `leaf` the branch's leaf, which the next pages pin (a branch switched
 * meanwhile does not change a read under way). (`row_to_json` writes compact
 * JSON, escaping exactly as JSON.stringify does for text Postgres can hold;
 * timestamps as ISO 8601 with offset, as `database.ts` parses them; a test
 * compares the two byte for byte.)
 */
export function branchJsonAfter(tx: Tx, sessionId: string, end: BranchEnd, after: number) {
  return tx`
    with recursive ${pageAfter(tx, sessionId, end, after)}
    select string_agg(row_to_json(message)::text, ',' order by page.seq) as json,
           max(page.seq) as last,
           exists (select 1 from public.chat_sessions where id = ${sessionId}) as found,
           (select count(*) from branch) > count(page.id) as more,
           (select id from leaf) as leaf
    from page
    join public.messages m on m.id = page.id
    cross join lateral (
      select m.id, m.chat_session_id, m.role, m.content, m.created_at, m.parent_id,
             ${siblingIds(tx)} as sibling_ids
    ) message`;
}

/** The same page as rows, as an export writes them (the messages a read answers). */
export function branchRowsAfter(tx: Tx, sessionId: string, leaf: string, after: number) {
  return tx<(BranchMessageRow & { seq: string })[]>`
    with recursive ${pageAfter(tx, sessionId, { leaf }, after)}
    select m.id, m.chat_session_id, m.role, m.content, m.created_at, m.parent_id,
           ${siblingIds(tx)} as sibling_ids, page.seq
    from page join public.messages m on m.id = page.id
    order by page.seq`;
}

/**
 * A page of a branch, newest first: the `limit` messages up from its leaf, or
 * up from the parent of message `before` (the oldest of the previous page),
 * and one more, to tell whether another page follows. No row at all when
 * there is no such session of the caller's; one row with null fields when its
 * branch is empty.
 */
export function branchPageBefore(
  tx: Tx,
  sessionId: string,
  end: BranchEnd,
  limit: number,
  before: string | null,
) {
  const start = before === null
    ? leafOf(tx, sessionId, end)
    : tx`select parent_id as id from public.messages where id = ${before}`;
  return tx<((BranchMessageRow & { depth: number }) | { id: null })[]>`
    with recursive start as (${start}),
    up (id, parent_id, depth) as (
      select m.id, m.parent_id, 1 from public.messages m join start on m.id = start.id
      where m.chat_session_id = ${sessionId}
      union all
      select p.id, p.parent_id, up.depth + 1 from up join public.messages p on p.id = up.parent_id
      where up.depth <= ${limit}
    )
    select page.id, s.id as chat_session_id, page.role, page.content, page.created_at,
           page.parent_id, page.sibling_ids, page.depth
    from public.chat_sessions s
    left join lateral (
      select m.id, m.role, m.content, m.created_at, m.parent_id, ${siblingIds(tx)} as sibling_ids,
             up.depth
      from up join public.messages m on m.id = up.id
      order by up.depth
    ) page on true
    where s.id = ${sessionId}
    order by page.depth`;
}
