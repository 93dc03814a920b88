/**
 * Open WebUI's export (Settings, Chats, Export chats; or one chat's "Export chat (.json)"): an
 * array of chats, each with `chat.history.messages` by id (`parentId`, `childrenIds`) and
 * `chat.history.currentId`. Which messages are kept, and with what text (docs/api.md, "Import"):
 *
 * - kept: user and assistant messages; skipped: any other role (system, tool);
 * - text: `content`, without the blocks Open WebUI folds into it: reasoning
 *   (`<details type="reasoning">`), tool calls and their results (`type="tool_calls"`) and code
 *   runs (`type="code_interpreter"`), as ChatGPT's reasoning and tool nodes are skipped; each file
 *   attached becomes `[image]` or `[file: its name]` on a line of its own;
 * - ending: a reply not `done` (still being written when it was exported) is `client_closed`,
 *   one with an `error` is `model_error`, any other `stop`.
 */
import { z } from "zod";
import type { Ending, Path, SourceConversation } from "./tree.ts";
import { epochSeconds, Id, modelOf, textOf, titleOf } from "./values.ts";

const Message = z.looseObject({
  parentId: Id.nullish(),
  childrenIds: z.array(z.string()).nullish(),
  role: z.string(),
  content: z.string().nullish(),
  timestamp: z.number().nullish(),
  model: z.string().nullish(),
  done: z.boolean().nullish(),
  error: z.unknown().optional(),
  files: z.array(z.looseObject({ type: z.string().nullish(), name: z.string().nullish() }))
    .nullish(),
});
type Message = z.output<typeof Message>;

export const OpenWebUiChat = z.looseObject({
  id: Id,
  title: z.string().nullish(),
  created_at: z.number().nullish(),
  updated_at: z.number().nullish(),
  chat: z.looseObject({
    title: z.string().nullish(),
    history: z.looseObject({
      currentId: Id.nullish(),
      messages: z.record(Id, Message),
    }),
  }),
});
type OpenWebUiChat = z.output<typeof OpenWebUiChat>;

/** How many messages the chat holds, before any is validated (for the import's limits). */
export function openWebUiNodes(chat: unknown): number {
  const messages = (chat as { chat?: { history?: { messages?: unknown } } } | null)?.chat?.history
    ?.messages;
  return typeof messages === "object" && messages !== null ? Object.keys(messages).length : 0;
}

/** The chat at `at` of a valid file, in the shape every format is read into. */
export function readOpenWebUi(chat: OpenWebUiChat, at: Path): SourceConversation {
  const history = chat.chat.history;
  return {
    sourceId: chat.id,
    title: titleOf(chat.title) ?? titleOf(chat.chat.title),
    created: epochSeconds(chat.created_at),
    updated: epochSeconds(chat.updated_at),
    current: history.currentId ?? null,
    currentAt: [...at, "chat", "history", "currentId"],
    nodes: Object.entries(history.messages).map(([id, message]) => ({
      id,
      parent: message.parentId ?? null,
      parentAt: [...at, "chat", "history", "messages", id, "parentId"],
      children: message.childrenIds ?? [],
      role: message.role === "user" ? "user" : "assistant",
      text: message.role === "user" || message.role === "assistant" ? messageText(message) : null,
      created: epochSeconds(message.timestamp),
      model: modelOf(message.model),
      ending: ending(message),
    })),
  };
}

/** The blocks Open WebUI writes into a reply besides its answer. */
const FOLDED =
  /<details\b[^>]*\btype="(?:reasoning|tool_calls|code_interpreter)"[^>]*>[\s\S]*?<\/details>/g;

function messageText(message: Message): string | null {
  const files = (message.files ?? []).map((file) =>
    file.type === "image" ? "[image]" : `[file${file.name ? `: ${file.name}` : ""}]`
  );
  return textOf([(message.content ?? "").replace(FOLDED, ""), ...files].join("\n"));
}

function ending(message: Message): Ending {
  if (message.error) return "model_error";
  return message.done === false ? "client_closed" : "stop";
}
