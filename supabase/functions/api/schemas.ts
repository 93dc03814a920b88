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

const UuidParam = z.string().regex(UUID, "must be a UUID").transform((id) => id.toLowerCase());

export const SessionPath = z.object({ session_id: UuidParam });

/** A message of a session, by its id (the stored one: `id` in every read). */
export const MessagePath = SessionPath.extend({ message_id: UuidParam });

/** A message id in a body or a query: the message whose branch a request means. */
export const MessageIdParam = UuidParam;

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

/**
 * The last message is the new one (with `regenerate-message`, the one to answer
 * again); earlier entries are ignored (the stored history is the truth).
 */
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

/**
 * What an AI SDK 5+ client sends besides the messages (`DefaultChatTransport`),
 * and what any client may send to edit or regenerate (docs/api.md).
 */
const uiRequestFields = {
  trigger: z.enum(["submit-message", "regenerate-message"], {
    error: "must be submit-message or regenerate-message",
  }).optional().describe(
    "regenerate-message: another reply to a stored message (messageId: a reply, or its " +
      "message; else the last message of the body, else the current branch's last), beside " +
      "the earlier one; any client may send it (ai 3/4: reload({ body: { trigger: " +
      "'regenerate-message' } })). Otherwise (submit-message, or none) a send; with " +
      "messageId naming an earlier user message, an edit: the last message's text is stored " +
      "beside that message and answered. Either way its branch becomes current",
  ),
  messageId: z.string().min(1).max(200).pipe(storableText).optional().describe(
    "the message to edit or regenerate: its id, or the client's id it was sent with",
  ),
};

const MessageBodyFields = z.looseObject({
  messages: z.array(z.unknown()),
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

function checkNewMessage(
  body: { messages: unknown[]; trigger?: string | undefined },
  ctx: z.core.$RefinementCtx,
) {
  const last = body.messages.length - 1;
  if (last < 0) {
    // a regeneration may name no message of its own: it answers a stored one
    if (body.trigger === "regenerate-message") return;
    ctx.addIssue({
      code: "too_small",
      origin: "array",
      minimum: 1,
      inclusive: true,
      input: body.messages,
      path: ["messages"],
      message: "must hold at least the new message",
    });
    return;
  }
  const parsed = NewMessage.safeParse(body.messages[last]);
  for (const issue of parsed.error?.issues ?? []) {
    ctx.addIssue({ ...issue, path: ["messages", last, ...issue.path] } as z.core.$ZodRawIssue);
  }
}

const readBody = (body: z.infer<typeof MessageBodyFields>) => {
  const last = body.messages.at(-1);
  return {
    message: last === undefined ? undefined : NewMessage.parse(last),
    model: body.model,
    regenerate: body.trigger === "regenerate-message",
    messageId: body.messageId,
    // the shape an AI SDK 5+ client sends (`submit-message`, and parts without content: ai 4.x
    // sends both and reads the data stream): it reads the UI message stream. A regeneration may
    // come from any client (ai 3/4's reload() sends it in its body), so it alone says nothing
    uiMessages: body.trigger === "submit-message" ||
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

export const ReadSessionQuery = z.looseObject({
  leaf: MessageIdParam.optional().openapi({
    description: "a message id: read the branch through it, to its newest leaf, instead of " +
      "the current branch",
  }),
});

export const CurrentBody = z.looseObject({
  message_id: MessageIdParam.describe(
    "any message of the session: the branch through it, to its newest leaf, becomes current",
  ),
}).openapi("CurrentBody");

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
  message_id: Uuid.nullable().describe(
    "the message that matched, on whichever branch (null: the title matched); " +
      "`GET /api/sessions/{id}?leaf=` reads its branch, `PUT .../current` makes it current",
  ),
}).openapi("SearchHit");

export const Session = SessionSummary.extend({ user_id: Uuid }).openapi("Session");

export const Message = z.object({
  id: Uuid,
  chat_session_id: Uuid,
  role: z.enum(["user", "assistant", "system"]),
  content: z.string(),
  created_at: Timestamp,
  parent_id: Uuid.nullable().describe("the message this one follows (null: a first message)"),
}).openapi("Message");

/** A message of a branch as a read answers it: where it sits among its siblings. */
export const BranchMessage = Message.extend({
  sibling_ids: z.array(Uuid).describe(
    "the messages with the same parent (edits, regenerated replies), oldest first, this one " +
      "among them: its index is its place (a UI's 2 / 3); `PUT .../current` switches to one",
  ),
}).openapi("BranchMessage");

/** Where the current branch is now, as switching and deleting answer. */
export const CurrentMessage = z.object({
  current_message_id: Uuid.nullable().describe("the current leaf (null: no messages left)"),
}).openapi("CurrentMessage");

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
