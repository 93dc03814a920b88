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
import { type JsonPage, streamJsonArray } from "../json_stream.ts";
import { linkNextPage, pageRequest, positionOf } from "../pagination.ts";
import { MessageIdParam } from "../schemas.ts";
import {
  type BranchEnd,
  branchJsonAfter,
  type BranchMessageRow,
  branchPageBefore,
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
      // The whole branch, which can run to hundreds of megabytes: streamed a page at a time.
      // The first page finds the leaf and the next ones read up from it, so a branch switched
      // meanwhile does not change a read under way.
      let leaf: BranchEnd = end;
      const readAfter = async (after: number): Promise<JsonPage<number> & { found: boolean }> => {
        const [row] = await queryAsCaller(
          sql,
          claims,
          (tx) => branchJsonAfter(tx, id, leaf, after).raw(),
        );
        // raw columns: their bytes as Postgres sent them, null for SQL null
        const [json, last, found, more, leafId] = row as (Uint8Array | null)[];
        const text = (value: Uint8Array | null | undefined) => value && decoder.decode(value);
        if (leafId) leaf = { leaf: text(leafId)! };
        return {
          elements: json ?? null,
          next: last ? Number(text(last)) : after,
          found: text(found) === "t",
          more: text(more) === "t",
        };
      };
      const first = await readAfter(0);
      if (!first.found) throw sessionNotFound();
      if (query.leaf && !("leaf" in leaf)) throw messageNotFound();
      return c.body(streamJsonArray(first, readAfter), 200, {
        "content-type": "application/json",
      });
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
