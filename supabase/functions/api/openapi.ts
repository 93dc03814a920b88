/**
 * The OpenAPI 3.1 document, generated from the same zod schemas that
 * validate requests (zod's own JSON Schema output is OpenAPI 3.1's dialect).
 */
import { z } from "zod";
import { PostMessageBody, SearchQuery, SessionPath, StreamQuery, TitleBody } from "./schemas.ts";

const uuid = { type: "string", format: "uuid" };
const timestamp = { type: "string", format: "date-time" };
const SessionSummary = {
  type: "object",
  required: ["id", "title", "created_at", "updated_at"],
  properties: { id: uuid, title: { type: "string" }, created_at: timestamp, updated_at: timestamp },
};
const Message = {
  type: "object",
  required: ["id", "chat_session_id", "role", "content", "created_at"],
  properties: {
    id: uuid,
    chat_session_id: uuid,
    role: { enum: ["user", "assistant", "system"] },
    content: { type: "string" },
    created_at: timestamp,
  },
};
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: unknown) => ({ "application/json": { schema } });
const input = (schema: z.ZodType) =>
  z.toJSONSchema(schema, { io: "input", unrepresentable: "any" });

const errors = {
  401: "No valid bearer token (`WWW-Authenticate: Bearer`)",
  404: "No such session of yours",
  409:
    "The message id is taken by another message; a reply to this message is already being written (`Retry-After`); or later messages followed it",
  413: "Body or message too large",
  422: "Invalid input",
  429: "A quota is reached (`Retry-After`)",
  502: "The model could not be reached",
  503: "The database is unavailable (`Retry-After`)",
  504: "The model did not answer in time",
} as const;
const answers = (...codes: (keyof typeof errors)[]) =>
  Object.fromEntries(codes.map((code) => [
    code,
    {
      description: errors[code],
      content: json(code === 422 ? ref("ValidationError") : ref("Error")),
    },
  ]));

const pathParam = {
  name: "session_id",
  in: "path",
  required: true,
  schema: (input(SessionPath) as { properties: Record<string, unknown> }).properties.session_id,
};
const query = (name: string, schema: unknown, description: string) => ({
  name,
  in: "query",
  schema,
  description,
});
const pageParams = [
  query("limit", { type: "integer", minimum: 1, maximum: 100 }, "page size (clamped to 1..100)"),
  query("before", { type: "string" }, "the X-Next-Cursor of the previous page"),
];
const pageHeaders = {
  Link: {
    description: '`<?limit=N&before=...>; rel="next"` when another page follows',
    schema: { type: "string" },
  },
  "X-Next-Cursor": { description: "the cursor of the next page", schema: { type: "string" } },
};

export function openApiDocument() {
  return {
    openapi: "3.1.0",
    info: {
      title: "Chat sessions API",
      version: "1.0.0",
      description:
        "Chat sessions on Supabase: every request runs as the caller under Row Level Security.",
    },
    servers: [{ url: "/" }],
    security: [{ bearerAuth: [] }],
    components: {
      securitySchemes: {
        bearerAuth: {
          type: "http",
          scheme: "bearer",
          bearerFormat: "JWT",
          description: "A Supabase access token",
        },
      },
      schemas: {
        SessionSummary,
        Message,
        Session: {
          ...SessionSummary,
          required: [...SessionSummary.required, "user_id"],
          properties: { ...SessionSummary.properties, user_id: uuid },
        },
        Error: { type: "object", required: ["detail"], properties: { detail: { type: "string" } } },
        ValidationError: {
          type: "object",
          required: ["detail"],
          properties: {
            detail: {
              type: "array",
              items: {
                type: "object",
                required: ["loc", "msg", "type"],
                properties: {
                  loc: { type: "array", items: { type: ["string", "integer"] } },
                  msg: { type: "string" },
                  type: { type: "string" },
                },
              },
            },
          },
        },
        PostMessageBody: input(PostMessageBody),
        TitleBody: input(TitleBody),
      },
    },
    paths: {
      "/api/health": {
        get: {
          operationId: "health",
          tags: ["health"],
          summary: "Liveness and a database check",
          security: [],
          responses: {
            200: { description: "Up", content: json({ type: "object" }) },
            ...answers(503),
          },
        },
      },
      "/api/sessions": {
        get: {
          operationId: "listSessions",
          tags: ["sessions"],
          summary: "Your sessions, most recently active first; or, with q, the ones that match",
          parameters: [
            ...pageParams,
            query(
              "q",
              (input(SearchQuery) as { properties: Record<string, unknown> }).properties.q,
              "search text",
            ),
          ],
          responses: {
            200: {
              description: "Sessions (with q: also a `snippet`, matches between ** and **)",
              headers: pageHeaders,
              content: json({ type: "array", items: ref("SessionSummary") }),
            },
            ...answers(401, 422, 503),
          },
        },
      },
      "/api/sessions/{session_id}": {
        parameters: [pathParam],
        get: {
          operationId: "readSession",
          tags: ["sessions"],
          summary: "A session's messages in conversation order (paged: newest page first)",
          parameters: pageParams,
          responses: {
            200: {
              description: "Messages",
              headers: pageHeaders,
              content: json({ type: "array", items: ref("Message") }),
            },
            ...answers(401, 404, 422, 503),
          },
        },
        post: {
          operationId: "sendMessage",
          tags: ["sessions"],
          summary: "Send a message (a new id creates the session); the reply streams",
          parameters: [
            query(
              "protocol",
              (input(StreamQuery) as { properties: Record<string, unknown> }).properties.protocol,
              "data (AI SDK data stream v1; the default, STREAM_PROTOCOL), text or sse; " +
                "without it, Accept naming text/event-stream or text/plain picks sse or text",
            ),
          ],
          requestBody: { required: true, content: json(ref("PostMessageBody")) },
          responses: {
            200: {
              description: "The reply, as it arrives",
              content: {
                "text/plain": { schema: { type: "string" } },
                "text/event-stream": { schema: { type: "string" } },
              },
            },
            ...answers(401, 404, 409, 413, 422, 429, 502, 503, 504),
          },
        },
        delete: {
          operationId: "deleteSession",
          tags: ["sessions"],
          summary: "Delete a session and its messages",
          responses: {
            200: { description: "Deleted", content: json(ref("Error")) },
            ...answers(401, 404, 422, 503),
          },
        },
      },
      "/api/sessions/{session_id}/title": {
        parameters: [pathParam],
        patch: {
          operationId: "renameSession",
          tags: ["sessions"],
          summary: "Rename a session",
          requestBody: { required: true, content: json(ref("TitleBody")) },
          responses: {
            200: { description: "The session", content: json(ref("Session")) },
            ...answers(401, 404, 413, 422, 503),
          },
        },
      },
      "/api/sessions/{session_id}/export": {
        parameters: [pathParam],
        get: {
          operationId: "exportSession",
          tags: ["sessions"],
          summary: "The whole conversation as a download",
          parameters: [
            query("format", { enum: ["json", "markdown"], default: "json" }, "json or markdown"),
          ],
          responses: {
            200: {
              description: "The conversation",
              content: {
                "application/json": { schema: { type: "object" } },
                "text/markdown": { schema: { type: "string" } },
              },
            },
            ...answers(401, 404, 422, 503),
          },
        },
      },
      "/api/empty-sessions": {
        delete: {
          operationId: "deleteAllSessions",
          tags: ["sessions"],
          summary: "Delete all of your sessions",
          responses: {
            200: { description: "Deleted", content: json(ref("Error")) },
            ...answers(401, 503),
          },
        },
      },
      "/api/usage": {
        get: {
          operationId: "usage",
          tags: ["usage"],
          summary: "Your replies and tokens per day and model",
          parameters: [
            query(
              "from",
              { type: "string", format: "date" },
              "first day (default: 29 days before to)",
            ),
            query("to", { type: "string", format: "date" }, "last day (default: today)"),
          ],
          responses: {
            200: {
              description: "Totals",
              content: json({ type: "array", items: { type: "object" } }),
            },
            ...answers(401, 422, 503),
          },
        },
      },
    },
  };
}
