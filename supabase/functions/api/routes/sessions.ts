/**
 * Listing, renaming and deleting sessions: paths and bodies exactly as the
 * original API. Reading one (its current branch) is `branches.ts`.
 */
import { z } from "@hono/zod-openapi";
import { createRoute, ErrorBody, errors, json, Router } from "../contract.ts";
import { queryAsCaller } from "../database.ts";
import type { RouteDeps } from "../deps.ts";
import { sessionNotFound } from "../errors.ts";
import { linkNextPage, pageHeaders, PageQuery, pageRequest, positionOf } from "../pagination.ts";
import {
  SearchHit,
  SearchQuery,
  Session,
  SessionPath,
  SessionSummary,
  TitleBody,
} from "../schemas.ts";
import { searchSessions } from "../store/search.ts";
import {
  deleteAllSessions,
  deleteSession,
  listSessions,
  listSessionsPage,
  renameSession,
  type SessionPosition,
} from "../store/sessions.ts";

export const listSessionsRoute = createRoute({
  method: "get",
  path: "/sessions",
  operationId: "listSessions",
  tags: ["sessions"],
  summary: "Your sessions, most recently active first; or, with q, the ones that match",
  request: { query: PageQuery.extend(SearchQuery.shape) },
  responses: {
    200: {
      description: "Sessions (with q: each with a `snippet`, best match first)",
      headers: pageHeaders,
      content: { "application/json": { schema: z.array(SessionSummary).or(z.array(SearchHit)) } },
    },
    ...errors(401, 422, 503),
  },
});

export const renameSessionRoute = createRoute({
  method: "patch",
  path: "/sessions/{session_id}/title",
  operationId: "renameSession",
  tags: ["sessions"],
  summary: "Rename a session",
  request: {
    params: SessionPath,
    body: { required: true, content: { "application/json": { schema: TitleBody } } },
  },
  responses: { 200: json("The session", Session), ...errors(401, 404, 413, 422, 503) },
});

export const deleteSessionRoute = createRoute({
  method: "delete",
  path: "/sessions/{session_id}",
  operationId: "deleteSession",
  tags: ["sessions"],
  summary: "Delete a session and its messages",
  request: { params: SessionPath },
  responses: { 200: json("Deleted", ErrorBody), ...errors(401, 404, 422, 503) },
});

export const deleteAllSessionsRoute = createRoute({
  method: "delete",
  path: "/empty-sessions",
  operationId: "deleteAllSessions",
  tags: ["sessions"],
  summary: "Delete all of your sessions",
  responses: { 200: json("Deleted", ErrorBody), ...errors(401, 503) },
});

/**
 * A timestamp as the database hands it out (UTC, at most microseconds) that
 * it also reads back: a real calendar date from year 1 on (Postgres has no
 * year 0; JavaScript's Date rolls Feb 30 over, so the round trip catches it).
 */
const DatabaseTimestamp = z.string()
  .regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?\+00:00$/)
  .refine((t) => {
    const time = new Date(t).getTime();
    return !t.startsWith("0000") && Number.isFinite(time) &&
      new Date(time).toISOString().slice(0, 19) === t.slice(0, 19);
  });
const SessionPosition: z.ZodType<SessionPosition> = z.tuple([
  DatabaseTimestamp,
  SessionPath.shape.session_id,
]);
const SearchOffset = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

export function sessionRoutes({ sql, cursors, signedIn }: RouteDeps) {
  const app = new Router(signedIn);

  app.add(listSessionsRoute, async (c) => {
    const claims = c.var.claims;
    const query = c.req.valid("query");
    const q = query.q;
    const page = pageRequest(query);
    if (q !== undefined) {
      // search pages are ranked, not keyed by time: the cursor carries an offset
      const limit = page?.limit ?? 20;
      const scope = `${claims.sub}:search:${q}`;
      const offset = page?.cursor ? await positionOf(cursors, scope, page.cursor, SearchOffset) : 0;
      const rows = await queryAsCaller(sql, claims, (tx) => searchSessions(tx, q, limit, offset));
      if (rows.length > limit) {
        linkNextPage(c, limit, await cursors.encode(scope, offset + limit), { q });
      }
      return c.json(rows.slice(0, limit));
    }
    if (!page) return c.json(await queryAsCaller(sql, claims, listSessions));
    const scope = `${claims.sub}:sessions`;
    const before = page.cursor
      ? await positionOf(cursors, scope, page.cursor, SessionPosition)
      : null;
    const rows = await queryAsCaller(sql, claims, (tx) => listSessionsPage(tx, page.limit, before));
    const sessions = rows.slice(0, page.limit);
    const last = sessions.at(-1);
    if (rows.length > page.limit && last) {
      linkNextPage(c, page.limit, await cursors.encode(scope, [last.updated_at, last.id]));
    }
    return c.json(sessions);
  });

  app.add(renameSessionRoute, async (c) => {
    const id = c.req.valid("param").session_id;
    const { title } = c.req.valid("json");
    const [session] = await queryAsCaller(sql, c.var.claims, (tx) => renameSession(tx, id, title));
    if (!session) throw sessionNotFound();
    return c.json(session);
  });

  app.add(deleteSessionRoute, async (c) => {
    const id = c.req.valid("param").session_id;
    const { count } = await queryAsCaller(sql, c.var.claims, (tx) => deleteSession(tx, id));
    if (count === 0) throw sessionNotFound();
    return c.json({ detail: "Chat session and its messages have been deleted" });
  });

  app.add(deleteAllSessionsRoute, async (c) => {
    await queryAsCaller(sql, c.var.claims, deleteAllSessions);
    return c.json({ detail: "All chat sessions and messages have been deleted" }, 200);
  });

  return app.app;
}
