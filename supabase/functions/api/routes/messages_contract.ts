/** The contract of POST /api/sessions/{session_id}: send a message, the reply streams. */
import { z } from "@hono/zod-openapi";
import { createRoute, errors } from "../contract.ts";
import { ChatBody, PostMessageBody, SessionPath, StreamQuery } from "../schemas.ts";

export const sendMessageRoute = createRoute({
  method: "post",
  path: "/sessions/{session_id}",
  operationId: "sendMessage",
  tags: ["sessions"],
  summary: "Send a message (a new id creates the session); the reply streams",
  request: {
    params: SessionPath,
    query: StreamQuery,
    body: {
      required: true,
      content: { "application/json": { schema: PostMessageBody.openapi("PostMessageBody") } },
    },
  },
  responses: {
    200: {
      description:
        "The reply, as it arrives: data (AI SDK data stream v1) or text as text/plain, " +
        "sse as text/event-stream",
      content: {
        "text/plain": { schema: z.string() },
        "text/event-stream": { schema: z.string() },
      },
    },
    ...errors(401, 404, 409, 413, 422, 429, 502, 503, 504),
  },
});

/** The same send as AI SDK 5+ clients make it: `DefaultChatTransport({ api: '<origin>/api/chat' })`. */
export const chatRoute = createRoute({
  method: "post",
  path: "/chat",
  operationId: "chat",
  tags: ["sessions"],
  summary:
    "Send a message the AI SDK (5+) way: the session id is the chat `id` in the body; the reply " +
    "streams as the UI message stream",
  request: {
    query: StreamQuery,
    body: {
      required: true,
      content: { "application/json": { schema: ChatBody.openapi("ChatBody") } },
    },
  },
  responses: {
    200: {
      description: "The reply, as it arrives: the AI SDK UI message stream (or ?protocol=)",
      content: {
        "text/event-stream": { schema: z.string() },
        "text/plain": { schema: z.string() },
      },
    },
    ...errors(401, 404, 409, 413, 422, 429, 502, 503, 504),
  },
});
