/**
 * A session's conversation tree: its current branch read as the plain array
 * the original frontend reads (each message also telling its parent and its
 * siblings), any other branch read by `?leaf=`, another branch made current,
 * a branch deleted.
 */
import { z } from "@hono/zod-openapi";
import { Router } from "../contract.ts";
import { queryAsCaller } from "../database.ts";
import type { RouteDeps } from "../deps.ts";
import { ApiError, sessionNotFound } from "../errors.ts";
import { jsonArray, type JsonPage, streamJsonArray } from "../json_stream.ts";
import { linkNextPage, pageRequest, positionOf } from "../pagination.ts";
import { MessageIdParam } from "../schemas.ts";
import {
  type BranchEnd,
  branchJsonPage,
  branchJsonStart,
  type BranchMessageRow,
  branchPageBefore,
  type PageEnd,
} from "../store/branch.ts";
import { deleteBranch, type Moved, switchBranch } from "../store/current.ts";
import { deleteBranchRoute, readSessionRoute, switchBranchRoute } from "./branches_contract.ts";

/** A page cursor of a branch: the oldest message of the page before (its ancestors follow). */
const MessagePosition: z.ZodType<string> = MessageIdParam;

const messageNotFound = () => new ApiError(404, "Message not found in this session");

const decoder = new TextDecoder();

export function branchRoutes({ sql, cursors, signedIn }: RouteDeps) {
  const app = new Router(signedIn);

  app.add(readSessionRoute, async (c) => {
    const claims = c.var.claims;
    const id = c.req.valid("param").session_id;
    const query = c.req.valid("query");
    const end: BranchEnd = query.leaf ? { through: query.leaf } : { current: true };
    const page = pageRequest(query);
    if (!page) {
      // The whole branch, which can run to hundreds of megabytes: streamed a page at a time. The
      // first read finds the leaf and plans the pages (each one's last message); each next page
      // is read up from its own last message, so a branch switched meanwhile does not change a
      // read under way, and the whole branch costs one walk plus its pages.
      const [start] = await queryAsCaller(
        sql,
        claims,
        (tx) => branchJsonStart(tx, id, end).raw(),
      );
      // raw columns: their bytes as Postgres sent them, null for SQL null
      const [json, found, leaf, endsJson] = start as (Uint8Array | null)[];
      if (decoder.decode(found!) !== "t") throw sessionNotFound();
      if (query.leaf && !leaf) throw messageNotFound();
      const ends: PageEnd[] = endsJson ? JSON.parse(decoder.decode(endsJson)) : [];
      const readPage = async (index: number): Promise<JsonPage<number>> => {
        const [row] = await queryAsCaller(
          sql,
          claims,
          (tx) => branchJsonPage(tx, id, ends[index]!, ends[index - 1]![1]).raw(),
        );
        return { elements: row![0] ?? null, next: index + 1, more: index + 1 < ends.length };
      };
      const headers = { "content-type": "application/json" };
      // one page (most branches): the array whole, without a stream's machinery per request
      if (ends.length <= 1) return c.body(jsonArray(json ?? null), 200, headers);
      const first = { elements: json ?? null, next: 1, more: true };
      return c.body(streamJsonArray(first, readPage), 200, headers);
    }
    const scope = `${claims.sub}:messages:${id}`;
    const before = page.cursor
      ? await positionOf(cursors, scope, page.cursor, MessagePosition)
      : null;
    const rows = await queryAsCaller(
      sql,
      claims,
      (tx) => branchPageBefore(tx, id, end, page.limit, before),
    );
    if (rows.length === 0) throw sessionNotFound();
    // newest first from the database; a page reads in conversation order
    const newest = rows.filter((row): row is BranchMessageRow & { depth: number } =>
      row.id !== null
    ).slice(0, page.limit);
    if (query.leaf && before === null && newest.length === 0) throw messageNotFound();
    const oldest = newest.at(-1);
    if (rows.length > page.limit && oldest) {
      linkNextPage(c, page.limit, await cursors.encode(scope, oldest.id));
    }
    return c.json(newest.reverse().map(({ depth: _, ...message }) => message));
  });

  /** A move's answer: 404 for a session or message that is not the caller's. */
  const answer = (moved: Moved | undefined) => {
    if (!moved || moved.outcome === "session_not_found") throw sessionNotFound();
    if (moved.outcome === "message_not_found") throw messageNotFound();
    return moved;
  };

  app.add(switchBranchRoute, async (c) => {
    const id = c.req.valid("param").session_id;
    const { message_id } = c.req.valid("json");
    const [moved] = await queryAsCaller(
      sql,
      c.var.claims,
      (tx) => switchBranch(tx, id, message_id),
    );
    return c.json({ current_message_id: answer(moved).current_message_id });
  });

  app.add(deleteBranchRoute, async (c) => {
    const { session_id, message_id } = c.req.valid("param");
    const [moved] = await queryAsCaller(
      sql,
      c.var.claims,
      (tx) => deleteBranch(tx, session_id, message_id),
    );
    const { deleted = 0, current_message_id } = answer(moved);
    return c.json({
      detail: `The message and the ${deleted - 1} after it have been deleted`,
      deleted,
      current_message_id,
    });
  });

  return app.app;
}
