/** The contract of POST /api/sessions/{session_id}: send a message, the reply streams. */
import { z } from "@hono/zod-openapi";
import { createRoute, errors } from "../contract.ts";
import { PostMessageBody, SessionPath, StreamQuery } from "../schemas.ts";

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
