/**
 * An export file read whole before anything is stored: its format (told, or recognised by the
 * first conversation's shape), every conversation validated and read into a tree of messages,
 * and the import's bounds. Any problem is a 422 listing where in the file it is (`loc`), any
 * bound passed a 413; either way nothing is stored.
 */
import type { z } from "zod";
import type { Config } from "../config.ts";
import { ApiError } from "../errors.ts";
import type { ImportFormat } from "./formats.ts";
import { ChatGptConversation, chatGptNodes, readChatGpt } from "./chatgpt.ts";
import { OpenWebUiChat, openWebUiNodes, readOpenWebUi } from "./open_webui.ts";
import { issueProblems, type Problem, unimportable } from "./problems.ts";
import {
  type ImportConversation,
  messageTree,
  type Path,
  type SourceConversation,
} from "./tree.ts";

export type { ImportFormat } from "./formats.ts";

interface Format {
  schema: z.ZodType;
  nodes: (conversation: unknown) => number;
  read: (conversation: never, at: Path) => SourceConversation;
}

const formats: Record<ImportFormat, Format> = {
  chatgpt: { schema: ChatGptConversation, nodes: chatGptNodes, read: readChatGpt },
  openwebui: { schema: OpenWebUiChat, nodes: openWebUiNodes, read: readOpenWebUi },
};

export interface ExportFile {
  format: ImportFormat;
  conversations: ImportConversation[];
}

/** The file's conversations as trees of messages to store, or the 422/413 that says why not. */
export function readExportFile(
  body: unknown,
  told: ImportFormat | undefined,
  limits: Config["imports"],
): ExportFile {
  // one conversation exported alone may come as itself rather than in an array
  const single = !Array.isArray(body);
  const items = single ? [body] : body as unknown[];
  const at = (i: number): Path => single ? [] : [i];
  if (items.length === 0) {
    throw unimportable([{ loc: [], msg: "holds no conversations", type: "too_short" }]);
  }
  const format = told ?? recognise(items[0]);
  if (!format) {
    throw unimportable([{
      loc: at(0),
      msg: "is neither a ChatGPT conversation (with a `mapping`) nor an Open WebUI chat " +
        "(with `chat.history`); `?format=` names the format",
      type: "format_unknown",
    }]);
  }
  const { schema, nodes, read } = formats[format];
  const messages = items.reduce((sum: number, item) => sum + nodes(item), 0);
  if (items.length > limits.maxConversations) {
    throw tooLarge(`${items.length} conversations`, `${limits.maxConversations} conversations`);
  }
  if (messages > limits.maxMessages) {
    throw tooLarge(`${messages} messages`, `${limits.maxMessages} messages`);
  }

  const problems: Problem[] = [];
  const conversations: ImportConversation[] = [];
  const seen = new Map<string, number>();
  for (const [i, item] of items.entries()) {
    // with each issue's input, so a value of the wrong type is told from a missing one
    const parsed = schema.safeParse(item, { reportInput: true });
    if (!parsed.success) {
      problems.push(...issueProblems(at(i), parsed.error.issues));
      continue;
    }
    const source = read(parsed.data as never, at(i));
    const earlier = seen.get(source.sourceId);
    if (earlier !== undefined) {
      problems.push({
        loc: [...at(i), "id"],
        msg: `is also the id of conversation ${earlier} of the file: each is imported once`,
        type: "duplicate_conversation",
      });
      continue;
    }
    seen.set(source.sourceId, i);
    const tree = messageTree(source);
    if ("problems" in tree) problems.push(...tree.problems);
    else conversations.push(tree);
  }
  if (problems.length) throw unimportable(problems);

  let characters = 0;
  for (const conversation of conversations) {
    for (const message of conversation.messages) characters += message.content.length;
  }
  if (characters > limits.maxCharacters) {
    throw tooLarge(`${characters} characters of text`, `${limits.maxCharacters} characters`);
  }
  return { format, conversations };
}

function recognise(conversation: unknown): ImportFormat | undefined {
  if (typeof conversation !== "object" || conversation === null) return undefined;
  if ("mapping" in conversation) return "chatgpt";
  if ("chat" in conversation) return "openwebui";
  return undefined;
}

function tooLarge(holds: string, most: string): ApiError {
  return new ApiError(
    413,
    `The file holds ${holds}; one import takes at most ${most}. Import it in parts ` +
      "(docs/api.md, Import, shows how to split a file)",
  );
}
