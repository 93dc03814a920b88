/** The contract of an import: POST /api/imports takes an export file as it was downloaded. */
import { z } from "@hono/zod-openapi";
import { createRoute, errors, json } from "../contract.ts";
import { importFormats } from "../import/formats.ts";
import { ImportResult } from "../schemas.ts";

/**
 * Read as any JSON here, then by the format's own rules (`import/`), which name what is wrong
 * with a file by its path in it, as a union of schemas could not.
 */
const ExportFile = z.unknown().openapi("ExportFile", {
  description: "The export file as its app wrote it: ChatGPT's `conversations.json` (an array of " +
    "conversations, each a `mapping` of nodes with `parent`, `children` and `message`, and " +
    "`current_node`) or Open WebUI's export (an array of chats, each with " +
    "`chat.history.messages` by id, with `parentId` and `childrenIds`, and " +
    "`chat.history.currentId`). One conversation alone may be sent as itself.",
});

const ImportQuery = z.looseObject({
  format: z.enum(importFormats).optional().openapi({
    description: "the file's format; without it, recognised by the first conversation's shape",
  }),
});

export const importRoute = createRoute({
  method: "post",
  path: "/imports",
  operationId: "importConversations",
  tags: ["sessions"],
  summary: "Import your history from a ChatGPT or Open WebUI export: a session per conversation",
  request: {
    query: ImportQuery,
    body: { required: true, content: { "application/json": { schema: ExportFile } } },
  },
  responses: {
    200: json(
      "Every conversation of the file, imported now or by an earlier import of it",
      ImportResult,
    ),
    ...errors(401, 413, 422, 429, 503),
  },
});
