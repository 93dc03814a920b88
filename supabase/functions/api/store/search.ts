/** Search over the caller's sessions: titles and messages, best match first, each with a snippet. */
import type { z } from "@hono/zod-openapi";
import type { Tx } from "../database.ts";
import type * as schemas from "../schemas.ts";

/** A matching session as the API answers it. */
export type SearchHit = z.output<typeof schemas.SearchHit>;

/**
 * The caller's sessions whose title or messages match `query` (web-search
 * syntax: words, "phrases", -exclusions), best match first, each with a
 * snippet around its best match (matches between ** and **) and the id of
 * the message that matched, on whichever branch it is (null: the title), so
 * a client can read or switch to that branch.
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
      select s.id, ts_rank(s.search, q.q) * 2 as rank, null::bigint as seq, null::text as content,
             null::uuid as message_id
      from mine s, q where s.search @@ q.q
      union all
      select s.id, m.rank, m.seq, m.content, m.id
      from mine s cross join q cross join lateral (
        select ts_rank(m.search, q.q) as rank, m.seq, m.content, m.id from public.messages m
        where m.chat_session_id = s.id and m.search @@ q.q
        order by rank desc, m.seq desc
        limit 1
      ) m
    ),
    best as (
      select distinct on (id) id, rank, content, message_id from hits
      order by id, rank desc, seq desc
    )
    select s.id, s.title, s.created_at, s.updated_at,
           ts_headline('simple', coalesce(b.content, s.title), q.q,
                       'StartSel=**, StopSel=**, MaxWords=24, MinWords=8, MaxFragments=1') as snippet,
           b.message_id
    from best b
    join mine s on s.id = b.id
    cross join q
    order by b.rank desc, s.updated_at desc, s.id desc
    limit ${limit + 1} offset ${offset}`;
}
