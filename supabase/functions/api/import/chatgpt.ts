/**
 * ChatGPT's export (`conversations.json` in the zip of Settings, Data controls, Export): an array
 * of conversations, each a `mapping` of nodes by id (`parent`, `children`, `message`) and its
 * `current_node`. Which nodes become messages, and with what text (docs/api.md, "Import"):
 *
 * - kept: user and assistant messages addressed to everyone (`recipient: "all"`), with their text;
 * - skipped: nodes without a message (the root), hidden ones (`is_visually_hidden_from_conversation`:
 *   the empty system message, custom instructions), system and tool messages (browsing results,
 *   code output), an assistant's calls to a tool (`recipient` a tool: a search, code to run),
 *   reasoning (`thoughts`, `reasoning_recap`) and memory (`model_editable_context`);
 * - text: `parts` joined by line breaks; an image part becomes `[image]`, another file `[file]`;
 *   audio becomes its transcription; code addressed to everyone is kept as a fenced block; a
 *   reply's marks of its web sources become links to them (chatgpt_sources.ts).
 * - ending: `in_progress` (the reply was still being written when it was exported) is stored as
 *   `client_closed`, the text kept as far as it went; a reply cut by its length is `length`, one
 *   stopped by its user `stopped`, any other `stop`.
 */
import { z } from "zod";
import { withSourceLinks } from "./chatgpt_sources.ts";
import type { Ending, Path, SourceConversation } from "./tree.ts";
import { epochSeconds, Id, modelOf, textOf, titleOf } from "./values.ts";

const Message = z.looseObject({
  author: z.looseObject({ role: z.string() }),
  content: z.looseObject({
    content_type: z.string(),
    parts: z.array(z.unknown()).nullish(),
    text: z.string().nullish(),
    language: z.string().nullish(),
  }),
  create_time: z.number().nullish(),
  status: z.string().nullish(),
  recipient: z.string().nullish(),
  metadata: z.looseObject({
    is_visually_hidden_from_conversation: z.boolean().nullish(),
    model_slug: z.string().nullish(),
    finish_details: z.looseObject({ type: z.string().nullish() }).nullish(),
  }).nullish(),
});
type Message = z.output<typeof Message>;

const Node = z.looseObject({
  message: Message.nullish(),
  parent: Id.nullish(),
  children: z.array(z.string()).nullish(),
});

export const ChatGptConversation = z.looseObject({
  id: Id.nullish(),
  conversation_id: Id.nullish(),
  title: z.string().nullish(),
  create_time: z.number().nullish(),
  update_time: z.number().nullish(),
  mapping: z.record(Id, Node),
  current_node: Id.nullish(),
}).superRefine((conversation, ctx) => {
  if (!conversation.id && !conversation.conversation_id) {
    ctx.addIssue({
      code: "invalid_type",
      expected: "string",
      path: ["id"],
      message: "missing: a conversation needs its id (or conversation_id) to be imported once",
      input: undefined,
    });
  }
});
type ChatGptConversation = z.output<typeof ChatGptConversation>;

/** How many nodes the conversation holds, before any is validated (for the import's limits). */
export function chatGptNodes(conversation: unknown): number {
  const mapping = (conversation as { mapping?: unknown } | null)?.mapping;
  return typeof mapping === "object" && mapping !== null ? Object.keys(mapping).length : 0;
}

/** The conversation at `at` of a valid file, in the shape every format is read into. */
export function readChatGpt(conversation: ChatGptConversation, at: Path): SourceConversation {
  return {
    sourceId: (conversation.id || conversation.conversation_id)!,
    title: titleOf(conversation.title),
    created: epochSeconds(conversation.create_time),
    updated: epochSeconds(conversation.update_time),
    current: conversation.current_node ?? null,
    currentAt: [...at, "current_node"],
    nodes: Object.entries(conversation.mapping).map(([id, node]) => {
      const message = node.message;
      const metadata = message?.metadata;
      return {
        id,
        parent: node.parent ?? null,
        parentAt: [...at, "mapping", id, "parent"],
        children: node.children ?? [],
        role: message?.author.role === "user" ? "user" : "assistant",
        text: message ? messageText(message) : null,
        created: epochSeconds(message?.create_time),
        model: modelOf(metadata?.model_slug),
        ending: message ? ending(message) : "stop",
      };
    }),
  };
}

/** Content types that are never part of the conversation as its user read it. */
const SKIPPED = new Set([
  "thoughts",
  "reasoning_recap",
  "user_editable_context",
  "model_editable_context",
]);

function messageText(message: Message): string | null {
  const role = message.author.role;
  if (role !== "user" && role !== "assistant") return null;
  if (message.metadata?.is_visually_hidden_from_conversation) return null;
  // an assistant addressing a tool (browser, python, dalle...) is a call, not a reply
  if (role === "assistant" && message.recipient && message.recipient !== "all") return null;
  const content = message.content;
  if (SKIPPED.has(content.content_type)) return null;
  if (content.parts) {
    const text = content.parts.map(partText).filter((t) => t).join("\n");
    return textOf(role === "assistant" ? withSourceLinks(text, message.metadata) : text);
  }
  if (typeof content.text !== "string") return null;
  return textOf(
    content.content_type === "code"
      ? `\`\`\`${
        content.language === "unknown" ? "" : content.language ?? ""
      }\n${content.text}\n\`\`\``
      : content.text,
  );
}

/** A part of a message as text: text as it is, audio as its transcription, a file as a placeholder. */
function partText(part: unknown): string {
  if (typeof part === "string") return part;
  if (typeof part !== "object" || part === null) return "";
  const { content_type: type, text } = part as { content_type?: unknown; text?: unknown };
  if (type === "audio_transcription") return typeof text === "string" ? text : "";
  // the audio itself: its words are the transcription beside it
  if (typeof type === "string" && type.includes("audio")) return "";
  return type === "image_asset_pointer" ? "[image]" : "[file]";
}

function ending(message: Message): Ending {
  if (message.status === "in_progress") return "client_closed";
  const finish = message.metadata?.finish_details?.type;
  return finish === "max_tokens" ? "length" : finish === "interrupted" ? "stopped" : "stop";
}
