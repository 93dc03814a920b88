/**
 * The contract of a reply in progress: GET re-attaches to it, DELETE stops it.
 * Declared twice: under /sessions/{session_id}/stream, and under
 * /chat/{session_id}/stream, where an AI SDK client with `api: '<origin>/api/chat'`
 * reconnects (`{api}/{chatId}/stream`).
 */
import { z } from "@hono/zod-openapi";
import { createRoute, errors, json } from "../contract.ts";
import { SessionPath, StreamQuery } from "../schemas.ts";

export const StoppedReply = z.object({
  id: z.uuid().describe("the assistant message the reply is stored as"),
  content: z.string().nullable().describe(
    "the reply as stored; null while it is still being saved",
  ),
  finish_reason: z.string().nullable(),
}).openapi("StoppedReply");

const base = (prefix: "sessions" | "chat") => `/${prefix}/{session_id}/stream`;

export const resumeRoute = (prefix: "sessions" | "chat") =>
  createRoute({
    method: "get",
    path: base(prefix),
    operationId: prefix === "chat" ? "resumeChatStream" : "resumeStream",
    tags: ["sessions"],
    summary: "Re-attach to the reply being written in this session: the whole reply from its " +
      "start, then followed to its end (any connection, device or instance)",
    request: { params: SessionPath, query: StreamQuery },
    responses: {
      200: {
        description: prefix === "chat"
          ? "The reply as the AI SDK UI message stream (or ?protocol=)"
          : "The reply in the protocol it was started in, unless ?protocol= or Accept names one",
        content: {
          "text/event-stream": { schema: z.string() },
          "text/plain": { schema: z.string() },
        },
      },
      204: { description: "No reply is being written in this session" },
      // REATTACH_MAX_PER_USER re-attached streams of the user's open on this instance already
      ...errors(401, 422, 429, 503),
    },
  });

export const stopRoute = (prefix: "sessions" | "chat") =>
  createRoute({
    method: "delete",
    path: base(prefix),
    operationId: prefix === "chat" ? "stopChatStream" : "stopStream",
    tags: ["sessions"],
    summary: "Stop the reply being written in this session, whatever instance writes it: the " +
      "model call ends and the reply is stored as `stopped`",
    request: { params: SessionPath },
    responses: {
      200: json("The reply, stopped and stored", StoppedReply),
      202: json("Stop asked for; the reply is not stored yet", StoppedReply),
      204: { description: "No reply is being written in this session" },
      // STOP_WAIT_MAX_PER_USER stops of the user's waiting on this instance already
      ...errors(401, 422, 429, 503),
    },
  });
