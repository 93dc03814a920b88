/**
 * GET /api/sessions/:id/export?format=json|markdown: the conversation as a
 * download, streamed a page of messages at a time, so a huge session is never
 * held in memory at once. Its current branch (what the user sees), or, as
 * JSON with `?branches=all`, the whole tree: every message with its parent.
 */
import { z } from "@hono/zod-openapi";
import { createRoute, errors, Router } from "../contract.ts";
import type { UserClaims } from "../auth.ts";
import { queryAsCaller, type Sql } from "../database.ts";
import type { RouteDeps } from "../deps.ts";
import { sessionNotFound } from "../errors.ts";
import {
  BranchMessage,
  Message,
  SessionPath,
  SessionSummary as SessionSummaryBody,
} from "../schemas.ts";
import { branchPlan, branchRowsPage, type PageEnd } from "../store/branch.ts";
import { messagesAfter, type StoredMessage } from "../store/history.ts";
import { findSessionAndLeaf, type SessionSummary } from "../store/sessions.ts";

const ExportQuery = z.looseObject({
  format: z.enum(["json", "markdown"]).default("json").openapi({ description: "json or markdown" }),
  branches: z.enum(["current", "all"]).default("current").openapi({
    description: "current: the current branch; all (json only): every message of the tree, " +
      "each with its parent_id, in the order written",
  }),
}).refine((q) => q.format === "json" || q.branches === "current", {
  path: ["branches"],
  message: "markdown exports the current branch; the whole tree is format=json",
});

/** The session as an export heads it: with its current leaf, where the current branch ends. */
const ExportedSession = SessionSummaryBody.extend({
  current_message_id: z.uuid().nullable(),
}).openapi("ExportedSession");

export const exportSessionRoute = createRoute({
  method: "get",
  path: "/sessions/{session_id}/export",
  operationId: "exportSession",
  tags: ["sessions"],
  summary: "The conversation as a download: its current branch, or (json) the whole tree",
  request: { params: SessionPath, query: ExportQuery },
  responses: {
    200: {
      description: "The conversation",
      content: {
        "application/json": {
          schema: z.object({
            session: ExportedSession,
            // the current branch as a read answers it; the whole tree with its parents
            messages: z.array(BranchMessage).or(z.array(Message)),
          }),
        },
        "text/markdown": { schema: z.string() },
      },
    },
    ...errors(401, 404, 422, 503),
  },
});

interface Format {
  contentType: string;
  extension: string;
  head(session: SessionSummary & { current_message_id: string | null }): string;
  message(message: StoredMessage, first: boolean): string;
  tail(): string;
}

const formats: Record<"json" | "markdown", Format> = {
  json: {
    contentType: "application/json; charset=utf-8",
    extension: "json",
    head: (session) => `{"session":${JSON.stringify(session)},"messages":[`,
    message: (message, first) => `${first ? "" : ","}${JSON.stringify(message)}`,
    tail: () => "]}\n",
  },
  markdown: {
    contentType: "text/markdown; charset=utf-8",
    extension: "md",
    head: (session) =>
      `# ${session.title}\n\n_Started ${session.created_at}, last active ${session.updated_at}._\n\n`,
    message: (message) =>
      `### ${message.role[0]!.toUpperCase()}${
        message.role.slice(1)
      } · ${message.created_at}\n\n${message.content}\n\n`,
    tail: () => "",
  },
};

/** Reads the next page of an export each time it is called; an empty page: nothing follows. */
type PageReader = () => Promise<(StoredMessage & { seq: string })[]>;

/** Every message of the session, in the order written, a page at a time. */
function wholeTree(sql: Sql, claims: UserClaims, id: string): PageReader {
  let after = 0;
  return async () => {
    const page = await queryAsCaller(sql, claims, (tx) => messagesAfter(tx, id, after));
    if (page.length > 0) after = Number(page.at(-1)!.seq);
    return page;
  };
}

/** The branch ending at `leaf`, planned once (each page's last message), a page at a time. */
async function branch(sql: Sql, claims: UserClaims, id: string, leaf: string): Promise<PageReader> {
  const [row] = await queryAsCaller(sql, claims, (tx) => branchPlan(tx, id, leaf));
  const plan: PageEnd[] = row?.ends ?? [];
  let index = 0;
  return async () => {
    if (index >= plan.length) return [];
    const after = index > 0 ? plan[index - 1]![1] : 0;
    const last = plan[index++]!;
    return await queryAsCaller(sql, claims, (tx) => branchRowsPage(tx, id, last, after));
  };
}

export function exportRoutes({ sql, signedIn }: RouteDeps) {
  return new Router(signedIn).add(exportSessionRoute, async (c) => {
    const claims = c.var.claims;
    const id = c.req.valid("param").session_id;
    const query = c.req.valid("query");
    const format = formats[query.format];
    // the session and its current leaf, read once: a branch switched meanwhile does not change
    // an export under way
    const [session] = await queryAsCaller(sql, claims, (tx) => findSessionAndLeaf(tx, id));
    if (!session) throw sessionNotFound();
    const leaf = session.current_message_id;
    const nextPage = query.branches === "all"
      ? wholeTree(sql, claims, id)
      : leaf === null
      ? () => Promise.resolve([])
      : await branch(sql, claims, id, leaf);

    const bytes = new TextEncoder();
    let first = true;
    let done = false;
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(bytes.encode(format.head(session)));
      },
      // the next page only when the client has taken the last one
      async pull(controller) {
        if (done) return;
        const page = await nextPage();
        const text = page.map(({ seq: _, ...message }) => {
          const line = format.message(message, first);
          first = false;
          return line;
        }).join("");
        // pages are bounded in bytes as well as messages: only an empty one says nothing follows
        if (page.length === 0) {
          done = true;
          controller.enqueue(bytes.encode(text + format.tail()));
          controller.close();
        } else {
          controller.enqueue(bytes.encode(text));
        }
      },
    }, { highWaterMark: 0 });
    return c.body(body, 200, {
      "content-type": format.contentType,
      "content-disposition": `attachment; filename="chat-${id}.${format.extension}"`,
    });
  }).app;
}
