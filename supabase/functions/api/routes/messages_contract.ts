/** The contract of POST /api/sessions/{session_id}: send a message, the reply streams. */
import { z } from "@hono/zod-openapi";
import { createRoute, errors } from "../contract.ts";
import { ChatBody, PostMessageBody, SessionPath, StreamQuery } from "../schemas.ts";

/**
 * A send's query: the protocol (as a re-attach's), and what the client leaving
 * does to the reply (reply/response.ts: `chooseOnDisconnect`).
 */
const SendQuery = StreamQuery.extend({
  on_disconnect: z.enum(["stop", "continue"]).optional().openapi({
    description: "what the client leaving mid-reply does to the reply: stop (the model call " +
      "ends; the reply is stored as far as it was streamed, as `stopped`) or continue (it is " +
      "written to its end and can be re-attached to with GET …/stream). By default a reply " +
      "goes on only for the ui protocol, whose clients re-attach; data, text and sse stop",
  }),
});

export const sendMessageRoute = createRoute({
  method: "post",
  path: "/sessions/{session_id}",
  operationId: "sendMessage",
  tags: ["sessions"],
  summary: "Send a message (a new id creates the session); the reply streams",
  request: {
    params: SessionPath,
    query: SendQuery,
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
    query: SendQuery,
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
