/**
 * Export files for the import tests: the real ones (`../shared/fixtures/imports/` beside the
 * repository, read at run time, never copied in), files built from the documented formats, and
 * what an import stored, read past RLS.
 */
import type { TestApi, TestUser } from "./api.ts";
import { json, send } from "./http.ts";

const FIXTURES = new URL("../../../shared/fixtures/imports/", import.meta.url);

/** A real export file, parsed. */
export async function realExport(
  name: "chatgpt-export.json" | "chatgpt-tree.json" | "openwebui-export.json",
  // deno-lint-ignore no-explicit-any -- export files are arbitrary JSON
): Promise<any> {
  const file = new URL(name, FIXTURES);
  try {
    return JSON.parse(await Deno.readTextFile(file));
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
    // reference data kept beside the repository, never copied in (docs/testing.md)
    throw new Error(
      `the real export files are read from ${FIXTURES.pathname} (../shared/fixtures/imports/ ` +
        `beside the repository); ${name} is not there: clone the repository beside ../shared`,
    );
  }
}

/** POST /api/imports. */
export function importFile(api: TestApi, user: TestUser, file: unknown, query = "") {
  return json(send(api, user, "POST", `/api/imports${query}`, file));
}

// ---- ChatGPT's format ----

export interface GptNode {
  id: string;
  parent: string | null;
  role?: "user" | "assistant" | "system" | "tool";
  text?: string;
  /** everything else of the message (content, status, metadata, recipient, create_time) */
  message?: Record<string, unknown>;
  /** no message at all (the root) */
  bare?: boolean;
}

/**
 * A ChatGPT conversation from its nodes, in order; `children` follow from the parents, in
 * node order, as ChatGPT writes them.
 */
export function gptConversation(
  id: string,
  nodes: GptNode[],
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  const mapping: Record<string, unknown> = {};
  for (const node of nodes) {
    mapping[node.id] = {
      id: node.id,
      message: node.bare ? null : {
        id: node.id,
        author: { role: node.role ?? "user", name: null, metadata: {} },
        create_time: null,
        content: { content_type: "text", parts: [node.text ?? ""] },
        status: "finished_successfully",
        end_turn: true,
        weight: 1,
        metadata: {},
        recipient: "all",
        ...node.message,
      },
      parent: node.parent,
      children: nodes.filter((n) => n.parent === node.id).map((n) => n.id),
    };
  }
  return {
    id,
    conversation_id: id,
    title: `Conversation ${id}`,
    create_time: 1_700_000_000,
    update_time: 1_700_000_100,
    mapping,
    current_node: nodes.at(-1)?.id ?? null,
    ...extra,
  };
}

/** A root, a hidden system node, then `turns` user/assistant pairs in one branch. */
export function gptLinear(id: string, turns: number): Record<string, unknown> {
  const nodes: GptNode[] = [
    { id: `${id}-root`, parent: null, bare: true },
    {
      id: `${id}-system`,
      parent: `${id}-root`,
      role: "system",
      message: { metadata: { is_visually_hidden_from_conversation: true } },
    },
  ];
  for (let i = 0; i < turns; i++) {
    nodes.push({
      id: `${id}-u${i}`,
      parent: nodes.at(-1)!.id,
      role: "user",
      text: `question ${i}`,
    });
    nodes.push({
      id: `${id}-a${i}`,
      parent: `${id}-u${i}`,
      role: "assistant",
      text: `answer ${i}`,
    });
  }
  return gptConversation(id, nodes);
}

// ---- Open WebUI's format ----

export interface WebUiMessage {
  id: string;
  parentId: string | null;
  role?: string;
  content?: string;
  [field: string]: unknown;
}

/** An Open WebUI chat from its messages, in order; `childrenIds` follow from the parents. */
export function webUiChat(
  id: string,
  messages: WebUiMessage[],
  currentId: string | null = messages.at(-1)?.id ?? null,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  const byId: Record<string, unknown> = {};
  for (const message of messages) {
    byId[message.id] = {
      role: "user",
      content: "",
      timestamp: 1_700_000_000,
      ...message,
      childrenIds: messages.filter((m) => m.parentId === message.id).map((m) => m.id),
    };
  }
  return {
    id,
    user_id: "someone",
    title: `Chat ${id}`,
    chat: { title: `Chat ${id}`, models: ["llama3"], history: { currentId, messages: byId } },
    created_at: 1_700_000_000,
    updated_at: 1_700_000_100,
    ...extra,
  };
}

// ---- what was stored ----

export interface StoredMessage {
  id: string;
  parent_id: string | null;
  reply_to: string | null;
  role: string;
  content: string;
  tokens: number | null;
  tokens_before: number;
  model: string | null;
  finish_reason: string | null;
  created_at: Date;
  imported_from: string | null;
}

/** A session and its messages as stored (in storage order), read past RLS. */
export async function storedSession(api: TestApi, sessionId: string) {
  const [session] = await api.db.admin<
    {
      user_id: string;
      title: string;
      title_set_by: string;
      created_at: Date;
      updated_at: Date;
      current_message_id: string | null;
    }[]
  >`select user_id, title, title_set_by, created_at, updated_at, current_message_id
    from public.chat_sessions where id = ${sessionId}`;
  const messages = await api.db.admin<StoredMessage[]>`
    select id, parent_id, reply_to, role, content, tokens, tokens_before::int as tokens_before,
           model, finish_reason, created_at, imported_from
    from public.messages where chat_session_id = ${sessionId} order by seq`;
  return { session: session!, messages: [...messages] };
}

/** The contents from a root to `leaf`, following parents. */
export function branchTo(messages: StoredMessage[], leaf: string | null): string[] {
  const byId = new Map(messages.map((m) => [m.id, m]));
  const branch: string[] = [];
  for (
    let m = leaf ? byId.get(leaf) : undefined;
    m;
    m = m.parent_id ? byId.get(m.parent_id) : undefined
  ) {
    branch.unshift(m.content);
  }
  return branch;
}

/** How many sessions and messages a user has, read past RLS. */
export async function countsOf(api: TestApi, userId: string) {
  const [row] = await api.db.admin<{ sessions: number; messages: number }[]>`
    select (select count(*)::int from public.chat_sessions where user_id = ${userId}) as sessions,
           (select count(*)::int from public.messages m
            join public.chat_sessions s on s.id = m.chat_session_id
            where s.user_id = ${userId}) as messages`;
  return row!;
}
