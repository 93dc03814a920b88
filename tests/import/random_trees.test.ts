/**
 * Property-based (fast-check): random conversation trees, with every kind of node the rules
 * name, written in both formats and imported, compared with a reference model of the documented
 * rules (kept nodes, nearest kept ancestor, continuations joined, the current leaf); and random
 * damage to a valid file, which is answered 200, 413 or 422, never 5xx, storing all or nothing.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { startTestApi } from "../support/api.ts";
import { fullScale } from "../support/figures.ts";
import {
  branchTo,
  countsOf,
  gptConversation,
  type GptNode,
  importFile,
  storedSession,
  webUiChat,
} from "../support/imports.ts";

const api = await startTestApi({ env: { QUOTA_IMPORTED_MESSAGES_PER_DAY: "0" } });
const runs = fullScale ? 300 : 40;

type Kind = "user" | "assistant" | "system" | "tool" | "empty";
interface Node {
  id: string;
  parent: string | null;
  kind: Kind;
}

/** A random tree: each node's parent is an earlier node (or none), so it is always a tree. */
const trees = fc.array(
  fc.record({
    parent: fc.option(fc.nat(), { nil: null, freq: 5 }),
    kind: fc.constantFrom<Kind>(
      "user",
      "assistant",
      "assistant",
      "user",
      "system",
      "tool",
      "empty",
    ),
  }),
  { minLength: 1, maxLength: 25 },
).chain((raw) =>
  fc.record({
    nodes: fc.constant(
      raw.map((n, i): Node => ({
        id: `n${i}`,
        parent: i === 0 || n.parent === null ? null : `n${n.parent % i}`,
        kind: n.kind,
      })),
    ),
    current: fc.option(fc.nat({ max: raw.length - 1 }), { nil: null }),
  })
);

const textOf = (node: Node) => `text of ${node.id}`;

/** The documented rules, written out plainly: the branch to the current leaf, as contents. */
function expected(nodes: Node[], current: number | null) {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const kept = (n: Node) => n.kind === "user" || n.kind === "assistant";
  const keptParent = (n: Node): Node | null => {
    for (
      let p = n.parent ? byId.get(n.parent) : undefined;
      p;
      p = p.parent ? byId.get(p.parent) : undefined
    ) {
      if (kept(p)) return p;
    }
    return null;
  };
  const keptChildren = (p: Node | null) => nodes.filter((n) => kept(n) && keptParent(n) === p);
  // a message is a kept node, or a kept assistant that is the only kept child of an assistant
  // (joined to it): each node's message is the first node of its run
  const head = (n: Node): Node => {
    const p = keptParent(n);
    return n.kind === "assistant" && p?.kind === "assistant" && keptChildren(p).length === 1
      ? head(p)
      : n;
  };
  const contentOf = new Map<Node, string>();
  for (const n of nodes.filter(kept)) {
    const h = head(n);
    contentOf.set(h, contentOf.has(h) ? `${contentOf.get(h)}\n\n${textOf(n)}` : textOf(n));
  }
  const messages = [...contentOf.keys()].map((h) => ({
    content: contentOf.get(h)!,
    parent: keptParent(h) ? contentOf.get(head(keptParent(h)!)) ?? null : null,
  }));
  let leaf: Node | null = null;
  for (
    let n = current === null ? undefined : nodes[current];
    n && !leaf;
    n = n.parent ? byId.get(n.parent) : undefined
  ) {
    if (kept(n)) leaf = head(n);
  }
  return { messages, leaf: leaf ? contentOf.get(leaf)! : null };
}

function chatGptFile(id: string, nodes: Node[], current: number | null) {
  const gptNodes: GptNode[] = nodes.map((n) => ({
    id: n.id,
    parent: n.parent,
    role: n.kind === "empty" ? "assistant" : n.kind,
    text: n.kind === "empty" ? "" : textOf(n),
  }));
  return gptConversation(id, gptNodes, {
    current_node: current === null ? null : nodes[current]!.id,
  });
}

function webUiFile(id: string, nodes: Node[], current: number | null) {
  return webUiChat(
    id,
    nodes.map((n) => ({
      id: n.id,
      parentId: n.parent,
      role: n.kind === "empty" ? "user" : n.kind,
      content: n.kind === "empty" ? "  " : textOf(n),
    })),
    current === null ? null : nodes[current]!.id,
  );
}

Deno.test("property: any tree, in either format, is stored as the rules say", async () => {
  const user = await api.user();
  await fc.assert(
    fc.asyncProperty(trees, fc.boolean(), async ({ nodes, current }, chatGpt) => {
      const id = crypto.randomUUID();
      const file = chatGpt ? chatGptFile(id, nodes, current) : webUiFile(id, nodes, current);
      const { status, body } = await importFile(api, user, [file]);
      assert.equal(status, 200, JSON.stringify(body));
      const { session, messages } = await storedSession(api, body.sessions[0].id);
      const want = expected(nodes, current);
      const contentById = new Map(messages.map((m) => [m.id, m.content]));
      // every kept node is stored, once, under the message of its nearest kept ancestor
      assert.deepEqual(
        messages.map((m) => ({
          content: m.content,
          parent: m.parent_id ? contentById.get(m.parent_id)! : null,
        })).sort((a, b) => a.content.localeCompare(b.content)),
        want.messages.sort((a, b) => a.content.localeCompare(b.content)),
      );
      if (want.leaf !== null) {
        assert.equal(contentById.get(session.current_message_id!), want.leaf);
      } else {
        // no current node kept: the newest branch's leaf, or none in an empty conversation
        const leaf = session.current_message_id;
        assert.equal(leaf === null, messages.length === 0);
        if (leaf) assert.ok(!messages.some((m) => m.parent_id === leaf));
      }
      assert.ok(branchTo(messages, session.current_message_id).length <= messages.length);
    }),
    { numRuns: runs },
  );
});

/** A value somewhere in a file replaced by anything at all. */
function damaged(file: unknown, path: number[], value: unknown): unknown {
  const copy = structuredClone(file);
  let at: unknown = copy;
  for (const step of path.slice(0, -1)) {
    if (typeof at !== "object" || at === null) break;
    const keys = Object.keys(at);
    if (keys.length) at = (at as Record<string, unknown>)[keys[step % keys.length]!];
  }
  if (typeof at === "object" && at !== null && Object.keys(at).length) {
    const keys = Object.keys(at);
    (at as Record<string, unknown>)[keys[path.at(-1)! % keys.length]!] = value;
  }
  return copy;
}

Deno.test("property: a damaged file is stored whole or not at all, and answered 200, 413 or 422", async () => {
  await fc.assert(
    fc.asyncProperty(
      trees,
      fc.boolean(),
      fc.array(fc.nat(), { minLength: 1, maxLength: 6 }),
      fc.anything(),
      async ({ nodes, current }, chatGpt, path, value) => {
        const user = await api.user();
        const id = crypto.randomUUID();
        const file = [chatGpt ? chatGptFile(id, nodes, current) : webUiFile(id, nodes, current)];
        const { status, body } = await importFile(api, user, damaged(file, path, value));
        assert.ok([200, 413, 422].includes(status), `${status} ${JSON.stringify(body)}`);
        const counts = await countsOf(api, user.id);
        if (status !== 200) return assert.deepEqual(counts, { sessions: 0, messages: 0 });
        const stored = body.sessions.reduce(
          (n: number, s: { messages: number }) => n + s.messages,
          0,
        );
        assert.deepEqual(counts, { sessions: body.sessions.length, messages: stored });
      },
    ),
    { numRuns: runs * 2 },
  );
});
