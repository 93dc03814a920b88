/**
 * Request and response shapes: the API's contract (routes declare them in
 * `routes/*`), and the only way handlers read input.
 */
import { z } from "@hono/zod-openapi";

const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** Text Postgres can store as sent: no NUL byte, no lone surrogate. */
const storableText = z.string().refine(
  (s) => !s.includes("\u0000") && s.isWellFormed(),
  "must not contain NUL bytes or unpaired surrogates",
);

export const SessionPath = z.object({
  session_id: z.string().regex(UUID, "must be a UUID").transform((id) => id.toLowerCase()),
});

/**
 * A UI message (ai 5 and later: `parts` instead of `content`) read as the text
 * of its text parts; any other part is refused below. A message with
 * `content` (ai 4.x sends both) is read from its content alone.
 */
function partsAsContent(message: unknown): unknown {
  if (typeof message !== "object" || message === null) return message;
  if ("content" in message) return { ...message, parts: undefined };
  const parts = (message as { parts?: unknown }).parts;
  if (!Array.isArray(parts)) return message;
  const text = parts.map((p) => (p as { type?: unknown; text?: unknown } | null)?.text)
    .filter((t) => typeof t === "string").join("");
  return { ...message, content: text };
}

/** The last message is the new one; earlier entries are ignored (the stored history is the truth). */
const NewMessage = z.preprocess(
  partsAsContent,
  z.looseObject({
    role: z.literal("user", { error: "the new message must have role 'user'" }),
    content: storableText.refine((s) => s.trim().length > 0, "must not be empty"),
    id: z.string().min(1).max(200).pipe(storableText).optional(),
    parts: z.array(z.looseObject({
      type: z.literal("text", { error: "only text parts are supported" }),
    })).optional(),
  }),
);

/** What an AI SDK 5+ client sends besides the messages (`DefaultChatTransport`). */
const uiRequestFields = {
  trigger: z.enum(["submit-message"], {
    error: "only submit-message is supported; to retry an unfinished reply, send its " +
      "message again with the same id, or send a new message",
  }).optional(),
  messageId: z.string().max(200).optional(),
};

const MessageBodyFields = z.looseObject({
  messages: z.array(z.unknown()).min(1, "must hold at least the new message"),
  /** a model id as providers spell them (`gpt-4o-mini`, `meta-llama/Llama-3.1-8B`, `llama3:8b`): printable ASCII, no spaces */
  model: z.string()
    .regex(
      /^[\x21-\x7e]{1,200}$/,
      "must be a model name: 1-200 printable ASCII characters, no spaces",
    )
    .describe(
      "optional; an unlisted name is served by the default model (422 when the deployment's list is strict)",
    )
    .optional(),
  ...uiRequestFields,
});

function checkNewMessage(body: { messages: unknown[] }, ctx: z.core.$RefinementCtx) {
  const last = body.messages.length - 1;
  const parsed = NewMessage.safeParse(body.messages[last]);
  for (const issue of parsed.error?.issues ?? []) {
    ctx.addIssue({ ...issue, path: ["messages", last, ...issue.path] } as z.core.$ZodRawIssue);
  }
}

const readBody = (body: z.infer<typeof MessageBodyFields>) => {
  const last = body.messages.at(-1);
  return {
    message: NewMessage.parse(last),
    model: body.model,
    // the shape an AI SDK 5+ client sends (`trigger`, and parts without content: ai 4.x sends
    // both and reads the data stream): it reads the UI message stream
    uiMessages: body.trigger !== undefined ||
      typeof last === "object" && last !== null && "parts" in last && !("content" in last),
  };
};

export const PostMessageBody = MessageBodyFields.superRefine(checkNewMessage).transform(readBody);

/** POST /api/chat: what `DefaultChatTransport` sends, the session id as the chat `id`. */
export const ChatBody = MessageBodyFields.extend({
  id: z.string().regex(UUID, "must be a UUID (the session id)").transform((id) => id.toLowerCase()),
}).superRefine(checkNewMessage).transform((body) => ({ ...readBody(body), sessionId: body.id }));

export const StreamQuery = z.looseObject({
  protocol: z.enum(["text", "data", "sse", "ui"]).optional().openapi({
    description: "data (AI SDK data stream v1; the default, STREAM_PROTOCOL), text, sse, or ui " +
      "(AI SDK 5+ UI message stream; the default for a body of UI messages, with `parts`); " +
      "without it, Accept naming text/event-stream or text/plain picks sse or text",
  }),
});

export const TitleBody = z.looseObject({
  title: storableText.transform((s) => s.trim()).pipe(
    z.string().min(1, "must not be empty")
      // characters as Postgres counts them (code points), not UTF-16 units
      .refine((s) => [...s].length <= 200, "must be at most 200 characters"),
  ),
}).openapi("TitleBody");

export const SearchQuery = z.looseObject({
  q: storableText.pipe(z.string().trim().min(1, "must not be empty").max(500)).optional()
    .openapi({ description: "search text" }),
});

// ---- responses ----

const Uuid = z.uuid();
/** as the database writes them: ISO 8601 with an offset */
const Timestamp = z.iso.datetime({ offset: true });

export const SessionSummary = z.object({
  id: Uuid,
  title: z.string(),
  created_at: Timestamp,
  updated_at: Timestamp,
}).openapi("SessionSummary");

export const SearchHit = SessionSummary.extend({
  snippet: z.string().describe("the best match in context, matches between ** and **"),
}).openapi("SearchHit");

export const Session = SessionSummary.extend({ user_id: Uuid }).openapi("Session");

export const Message = z.object({
  id: Uuid,
  chat_session_id: Uuid,
  role: z.enum(["user", "assistant", "system"]),
  content: z.string(),
  created_at: Timestamp,
}).openapi("Message");

export const UsageRow = z.object({
  day: z.iso.date(),
  model: z.string().nullable(),
  replies: z.number().int(),
  prompt_tokens: z.number().int(),
  completion_tokens: z.number().int(),
}).openapi("UsageRow");

export const ImportedSession = z.object({
  source_id: z.string().describe("the conversation's id in the file"),
  id: Uuid.describe("the session it is stored as"),
  title: z.string(),
  status: z.enum(["imported", "already_imported"]).describe(
    "already_imported: an earlier import stored it (and the session still exists); nothing was added",
  ),
  messages: z.number().int().describe("messages stored by this import"),
}).openapi("ImportedSession");

export const ImportResult = z.object({
  format: z.enum(["chatgpt", "openwebui"]),
  sessions: z.array(ImportedSession).describe("every conversation of the file, in file order"),
}).openapi("ImportResult");
