/**
 * The caller's sessions: listed (whole or a page at a time), found, renamed,
 * titled and deleted. Each query runs in a transaction opened by `asCaller`
 * or `queryAsCaller`, so RLS scopes it to the caller's own sessions: none
 * says whose rows it wants. Returned unsent, for `queryAsCaller` to send in
 * one round trip.
 */
import type { z } from "@hono/zod-openapi";
import type { Tx } from "../database.ts";
import type * as schemas from "../schemas.ts";

/** A session as the API answers it. */
export type SessionSummary = z.output<typeof schemas.SessionSummary>;
/** A session with its owner, as a rename answers it. */
export type Session = z.output<typeof schemas.Session>;

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

/** The caller's session with the leaf of its current branch, or no row. */
export function findSessionAndLeaf(tx: Tx, sessionId: string) {
  return tx<(SessionSummary & { current_message_id: string | null })[]>`
    select id, title, created_at, updated_at, current_message_id from public.chat_sessions
    where id = ${sessionId}`;
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
