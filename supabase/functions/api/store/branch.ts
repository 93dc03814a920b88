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
 * A branch is read oldest first but walked newest first (up from its leaf),
 * so it is planned in one walk: the common table expressions `leaf(id)`;
 * `branch(id, parent_id, seq, size)`, every message of it; and
 * `pages(id, seq, page)`, each numbered with its page (from 1). A page holds
 * up to `historyPage.messages` messages and starts again where the content
 * before it passes another `historyPage.bytes` (so a page holds no more than
 * that and its last message), as a page of the whole history does. Each later
 * page is then read up from its own last message to the page before it: the
 * whole branch costs one walk plus its pages, not a walk per page.
 */
function planOf(tx: Tx, sessionId: string, end: BranchEnd) {
  // octet_length reads a stored value's size without fetching or decompressing it
  return tx`
    leaf as (${leafOf(tx, sessionId, end)}),
    branch (id, parent_id, seq, size) as (
      select m.id, m.parent_id, m.seq, octet_length(m.content)
      from public.messages m join leaf on m.id = leaf.id
      where m.chat_session_id = ${sessionId}
      union all
      select p.id, p.parent_id, p.seq, octet_length(p.content)
      from branch b join public.messages p on p.id = b.parent_id
    ),
    buckets as (
      select id, seq, (row_number() over w - 1) / ${historyPage.messages} as by_count,
             (sum(size) over w - size) / ${historyPage.bytes} as by_bytes
      from branch window w as (order by seq)
    ),
    starts as (
      select id, seq, (lag(by_count) over w is distinct from by_count
                       or lag(by_bytes) over w is distinct from by_bytes)::int as starts
      from buckets window w as (order by seq)
    ),
    pages as (select id, seq, sum(starts) over (order by seq) as page from starts)`;
}

/** Each page's last message, `[id, seq]`, in order, as JSON. */
const pageEnds = (tx: Tx) =>
  tx`(select json_agg(json_build_array(e.id, e.seq) order by e.page)
      from (select distinct on (page) page, id, seq from pages order by page, seq desc) e)`;

/** Where a page of a branch ends: its last message. */
export type PageEnd = [id: string, seq: number];

/**
 * The page of a branch ending at message `last`, after message number `after`
 * (the page before's last), as `page(id, parent_id, seq)`.
 */
function pageUpTo(tx: Tx, sessionId: string, last: PageEnd, after: number) {
  return tx`
    page (id, parent_id, seq) as (
      select m.id, m.parent_id, m.seq from public.messages m
      where m.id = ${last[0]} and m.chat_session_id = ${sessionId} and m.seq > ${after}
      union all
      select p.id, p.parent_id, p.seq from page b join public.messages p on p.id = b.parent_id
      where p.seq > ${after}
    )`;
}

/** A message's siblings (its parent's children, or the session's first messages), oldest first. */
const siblingIds = (tx: Tx) =>
  tx`case when m.parent_id is null
       then (select json_agg(s.id order by s.seq) from public.messages s
             where s.chat_session_id = m.chat_session_id and s.parent_id is null)
       else (select json_agg(s.id order by s.seq) from public.messages s
             where s.parent_id = m.parent_id) end`;

/** A page's messages as JSON, written by Postgres (read `.raw()`: never decoded into the heap). */
const pageJson = (tx: Tx) => tx`string_agg(row_to_json(message)::text, ',' order by page.seq)`;
const asMessage = (tx: Tx) =>
  tx`cross join lateral (
      select m.id, m.chat_session_id, m.role, m.content, m.created_at, m.parent_id,
             ${siblingIds(tx)} as sibling_ids
    ) message`;

/**
 * The first page of the branch ending at `end`, and the plan of the rest, in
 * one query, for reading as raw bytes: `json` holds the page's messages as
 * `JSON.stringify` writes a `BranchMessageRow`, joined by commas (null: the
 * branch is empty), `found` whether the caller has this session, `leaf` the
 * branch's leaf (null: none), and `ends` (JSON) every page's last message: the
 * next pages are read up from those, so a branch switched meanwhile does not
 * change a read under way. (`row_to_json` writes compact JSON, escaping
 * exactly as JSON.stringify does for text Postgres can hold; timestamps as ISO
 * 8601 with offset, as `database_client.ts` parses them; a test compares the two byte
 * for byte.)
 */
export function branchJsonStart(tx: Tx, sessionId: string, end: BranchEnd) {
  return tx`
    with recursive ${planOf(tx, sessionId, end)}
    select (select ${pageJson(tx)} from pages page join public.messages m on m.id = page.id
            ${asMessage(tx)} where page.page = 1) as json,
           exists (select 1 from public.chat_sessions where id = ${sessionId}) as found,
           (select id from leaf) as leaf,
           ${pageEnds(tx)} as ends`;
}

/** A later page of a branch, up to its last message, after the page before's last, as JSON. */
export function branchJsonPage(tx: Tx, sessionId: string, last: PageEnd, after: number) {
  return tx`
    with recursive ${pageUpTo(tx, sessionId, last, after)}
    select ${pageJson(tx)} as json
    from page join public.messages m on m.id = page.id ${asMessage(tx)}`;
}

/** The pages of the branch ending at `leaf`: each one's last message, in order (null: none). */
export function branchPlan(tx: Tx, sessionId: string, leaf: string) {
  return tx<{ ends: PageEnd[] | null }[]>`
    with recursive ${planOf(tx, sessionId, { leaf })}
    select ${pageEnds(tx)} as ends`;
}

/** A page of a branch as rows, as an export writes them (the messages a read answers). */
export function branchRowsPage(tx: Tx, sessionId: string, last: PageEnd, after: number) {
  return tx<(BranchMessageRow & { seq: string })[]>`
    with recursive ${pageUpTo(tx, sessionId, last, after)}
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
