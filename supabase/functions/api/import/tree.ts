/**
 * A conversation of an export file as a tree of messages, whatever the file's format: which
 * nodes become messages, under which parent, in which order, and which is the current leaf.
 * Each format (chatgpt.ts, open_webui.ts) reads its nodes into `SourceConversation`; the rules
 * that do not depend on the format live here, once:
 *
 * - A node whose `text` is null (hidden, system, tool, reasoning, empty) is not stored; its
 *   children hang from its nearest stored ancestor, so no branch is lost with it.
 * - An assistant node that is the only stored child of an assistant message continues that
 *   message (a reply interrupted by a tool call, then resumed, is one reply).
 * - Parent pointers are the truth; `children` lists only order siblings (a child missing from
 *   them, or listed under the wrong parent, is ordered after the listed ones, in file order).
 * - The current leaf is the file's current node, or its nearest stored ancestor; without one,
 *   the newest branch: the last child at every step.
 */
import type { Problem } from "./problems.ts";

export type Path = (string | number)[];

export type Ending = "stop" | "length" | "stopped" | "client_closed" | "model_error";

export interface SourceNode {
  id: string;
  parent: string | null;
  /** where the node's parent is named in the file, for errors */
  parentAt: Path;
  /** the children it lists, in order */
  children: string[];
  role: "user" | "assistant";
  /** the message's text, or null: the node is not stored */
  text: string | null;
  /** seconds since the epoch */
  created: number | null;
  model: string | null;
  ending: Ending;
}

export interface SourceConversation {
  sourceId: string;
  title: string | null;
  created: number | null;
  updated: number | null;
  current: string | null;
  currentAt: Path;
  /** in file order */
  nodes: SourceNode[];
}

/** A message to store: what `chat_private.import_conversations` reads. */
export interface ImportMessage {
  /** the index of its parent (always earlier), or null for a root */
  parent: number | null;
  role: "user" | "assistant";
  content: string;
  created_at: number | null;
  model: string | null;
  finish_reason: Ending | null;
  tokens?: number;
}

export interface ImportConversation {
  source_id: string;
  title: string | null;
  created_at: number | null;
  updated_at: number | null;
  current: number | null;
  messages: ImportMessage[];
}

/** The conversation's messages, or the problems of its graph (a parent not found, a loop). */
export function messageTree(
  conversation: SourceConversation,
): ImportConversation | { problems: Problem[] } {
  const byId = new Map(conversation.nodes.map((node) => [node.id, node]));
  const problems = graphProblems(conversation, byId);
  if (problems.length) return { problems };

  // children in their listed order, then the unlisted ones in file order
  const children = new Map<string | null, SourceNode[]>();
  for (const node of conversation.nodes) {
    const siblings = children.get(node.parent) ?? [];
    siblings.push(node);
    children.set(node.parent, siblings);
  }
  for (const [parent, siblings] of children) {
    const listed = parent === null ? [] : byId.get(parent)!.children;
    const position = new Map(listed.map((id, at) => [id, at]));
    const rank = (node: SourceNode) => position.get(node.id) ?? listed.length;
    // a stable sort: equal ranks keep file order
    siblings.sort((a, b) => rank(a) - rank(b));
  }

  // depth first, so each branch is stored together, older siblings first; with the nearest
  // stored ancestor of each node (iteratively: a conversation can be thousands of nodes deep)
  const order: { node: SourceNode; keptParent: SourceNode | null }[] = [];
  const stack = [...(children.get(null) ?? [])].reverse().map((node) => ({
    node,
    keptParent: null as SourceNode | null,
  }));
  const storedChildren = new Map<SourceNode, number>();
  while (stack.length) {
    const visit = stack.pop()!;
    order.push(visit);
    const kept = visit.node.text !== null;
    if (kept && visit.keptParent) {
      storedChildren.set(visit.keptParent, (storedChildren.get(visit.keptParent) ?? 0) + 1);
    }
    const keptParent = kept ? visit.node : visit.keptParent;
    for (const child of [...(children.get(visit.node.id) ?? [])].reverse()) {
      stack.push({ node: child, keptParent });
    }
  }

  const messages: ImportMessage[] = [];
  const messageOf = new Map<SourceNode, number>();
  for (const { node, keptParent } of order) {
    if (node.text === null) continue;
    const parent = keptParent ? messageOf.get(keptParent)! : null;
    const previous = parent === null ? undefined : messages[parent]!;
    if (
      node.role === "assistant" && previous?.role === "assistant" &&
      storedChildren.get(keptParent!) === 1
    ) {
      previous.content += `\n\n${node.text}`;
      previous.finish_reason = node.ending;
      previous.model = node.model ?? previous.model;
      messageOf.set(node, parent!);
      continue;
    }
    messageOf.set(node, messages.length);
    messages.push({
      parent,
      role: node.role,
      content: node.text,
      created_at: node.created ?? previous?.created_at ?? conversation.created,
      model: node.role === "assistant" ? node.model : null,
      finish_reason: node.role === "assistant" ? node.ending : null,
    });
  }

  const times = messages.map((m) => m.created_at).filter((t) => t !== null);
  const created = conversation.created ?? (times.length ? Math.min(...times) : null);
  return {
    source_id: conversation.sourceId,
    title: conversation.title,
    created_at: created,
    updated_at: conversation.updated ?? (times.length ? Math.max(...times) : created),
    current: currentMessage(conversation, byId, messageOf, messages),
    messages,
  };
}

/** Parents that are not nodes of the conversation, loops, a current node that is none. */
function graphProblems(conversation: SourceConversation, byId: Map<string, SourceNode>) {
  const problems: Problem[] = [];
  for (const node of conversation.nodes) {
    if (node.parent !== null && !byId.has(node.parent)) {
      problems.push({
        loc: node.parentAt,
        msg: `names ${JSON.stringify(node.parent)}, which is not a message of this conversation`,
        type: "parent_not_found",
      });
    }
  }
  if (conversation.current !== null && !byId.has(conversation.current)) {
    problems.push({
      loc: conversation.currentAt,
      msg: `names ${
        JSON.stringify(conversation.current)
      }, which is not a message of this conversation`,
      type: "current_not_found",
    });
  }
  if (problems.length) return problems;
  // each node walks up until a node known to reach a root: linear overall
  const reachesRoot = new Set<string>();
  for (const start of conversation.nodes) {
    const path: SourceNode[] = [];
    const onPath = new Set<string>();
    let node: SourceNode | undefined = start;
    while (node && !reachesRoot.has(node.id)) {
      if (onPath.has(node.id)) {
        problems.push({
          loc: node.parentAt,
          msg: "its parents lead back to it: a conversation is a tree",
          type: "parent_loop",
        });
        return problems;
      }
      onPath.add(node.id);
      path.push(node);
      node = node.parent === null ? undefined : byId.get(node.parent);
    }
    for (const visited of path) reachesRoot.add(visited.id);
  }
  return problems;
}

/** The stored message the file's current node is, or is under; else the newest branch's leaf. */
function currentMessage(
  conversation: SourceConversation,
  byId: Map<string, SourceNode>,
  messageOf: Map<SourceNode, number>,
  messages: ImportMessage[],
): number | null {
  for (
    let node = conversation.current === null ? undefined : byId.get(conversation.current);
    node;
    node = node.parent === null ? undefined : byId.get(node.parent)
  ) {
    const message = messageOf.get(node);
    if (message !== undefined) return message;
  }
  // children are stored after their parent, the newest sibling last
  const lastChild = new Map<number | null, number>();
  messages.forEach((message, i) => lastChild.set(message.parent, i));
  let leaf: number | null = null;
  for (let next = lastChild.get(null); next !== undefined; next = lastChild.get(next)) leaf = next;
  return leaf;
}
