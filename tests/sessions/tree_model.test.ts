/**
 * The conversation tree against a reference model (model-based testing with
 * fast-check): random sequences of send, edit, regenerate (by message, or the
 * current branch's last), switch, delete-branch and retry run against the API
 * and against an in-memory tree that states the rules; after every step the
 * current branch the API reads back (parents, siblings, contents) and the
 * whole tree it exports (no message lost, none extra) must equal the model's,
 * and every prompt must be the branch the message is on. Modest in
 * `deno task test`, larger with RELIABILITY_SCALE=full.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import type { ChatRequest, Script } from "../../local/stand_in_model.ts";
import { startTestApi, type TestUser } from "../support/api.ts";
import { fullScale, recordFigure } from "../support/figures.ts";
import { json, send } from "../support/http.ts";

const api = await startTestApi();
let replies = 0;
api.model.script((request: ChatRequest): Script => ({
  chunks: [`re: ${request.messages.at(-1)!.content} #${++replies}`],
}));

interface Node {
  id: string;
  parent: string | null;
  role: "user" | "assistant";
  content: string;
  clientId?: string;
  seq: number;
}

/** The rules, stated plainly: the tree, its current leaf, and what each request does to them. */
class Tree {
  nodes = new Map<string, Node>();
  current: string | null = null;
  /** the session exists once a send went ahead (and stays when its messages are deleted) */
  created = false;
  seq = 0;
  /** every client id sent, with its text, for retries */
  sent: { clientId: string; content: string }[] = [];

  add(node: Omit<Node, "seq">) {
    this.nodes.set(node.id, { ...node, seq: ++this.seq });
  }
  children(parent: string | null) {
    return [...this.nodes.values()].filter((n) => n.parent === parent).sort((a, b) =>
      a.seq - b.seq
    );
  }
  subtree(id: string): Node[] {
    return [this.nodes.get(id)!, ...this.children(id).flatMap((c) => this.subtree(c.id))];
  }
  newestLeaf(id: string) {
    return this.subtree(id).reduce((a, b) => (b.seq > a.seq ? b : a)).id;
  }
  path(leaf = this.current): Node[] {
    const path: Node[] = [];
    for (let at = leaf; at; at = this.nodes.get(at)!.parent) path.unshift(this.nodes.get(at)!);
    return path;
  }
  /** the newest finished answer to a user message */
  answer(id: string) {
    return this.children(id).filter((c) => c.role === "assistant").at(-1);
  }
  pick<T>(list: T[], at: number): T | undefined {
    return list.length ? list[at % list.length] : undefined;
  }
}

interface Real {
  user: TestUser;
  session: string;
}

/** A send as curl makes it; the reply's text and ids. */
async function post(real: Real, body: Record<string, unknown>) {
  const response = await send(
    api,
    real.user,
    "POST",
    `/api/sessions/${real.session}?protocol=text`,
    body,
  );
  const text = await response.text();
  await api.idle();
  return {
    status: response.status,
    text,
    userMessageId: response.headers.get("x-user-message-id")!,
    replyId: response.headers.get("x-assistant-message-id")!,
  };
}

/** A reply the API streamed: it joins the model under its user message, and becomes current. */
function answered(tree: Tree, reply: Awaited<ReturnType<typeof post>>, userMessage: string) {
  assert.equal(reply.status, 200, reply.text);
  // the model was asked the branch the message is on, up to it
  const prompt = api.model.requests.at(-1)!.messages.slice(1).map((m) => m.content);
  assert.deepEqual(prompt, tree.path(userMessage).map((n) => n.content));
  tree.add({ id: reply.replyId, parent: userMessage, role: "assistant", content: reply.text });
  tree.current = reply.replyId;
  tree.created = true;
}

type Command = fc.AsyncCommand<Tree, Real>;
let counter = 0;

const sendCommand = (text: string): Command => ({
  check: () => true,
  async run(tree, real) {
    const clientId = `c-${++counter}`;
    const content = `${text} ${counter}`;
    const reply = await post(real, { messages: [{ role: "user", content, id: clientId }] });
    tree.add({ id: reply.userMessageId, parent: tree.current, role: "user", content, clientId });
    tree.sent.push({ clientId, content });
    answered(tree, reply, reply.userMessageId);
  },
  toString: () => `send(${text})`,
});

const editCommand = (at: number, text: string): Command => ({
  check: (tree) => [...tree.nodes.values()].some((n) => n.role === "user"),
  async run(tree, real) {
    const edited = tree.pick([...tree.nodes.values()].filter((n) => n.role === "user"), at)!;
    const clientId = `c-${++counter}`;
    const content = `${text} ${counter}`;
    const reply = await post(real, {
      messages: [{ role: "user", content, id: clientId }],
      messageId: edited.id,
    });
    tree.add({ id: reply.userMessageId, parent: edited.parent, role: "user", content, clientId });
    tree.sent.push({ clientId, content });
    answered(tree, reply, reply.userMessageId);
  },
  toString: () => `edit(${at}, ${text})`,
});

/** Regenerates a message or reply picked anywhere in the tree, or (null) the current branch's last. */
const regenerateCommand = (at: number | null): Command => ({
  check: () => true,
  async run(tree, real) {
    const named = at === null ? undefined : tree.pick([...tree.nodes.values()], at);
    const leaf = named ?? (tree.current ? tree.nodes.get(tree.current) : undefined);
    const target = leaf?.role === "assistant" ? leaf.parent! : leaf?.id;
    const reply = await post(real, {
      messages: [],
      trigger: "regenerate-message",
      ...(named ? { messageId: named.id } : {}),
    });
    if (!target) return assert.equal(reply.status, 404, "nothing to regenerate");
    assert.equal(reply.userMessageId, target);
    answered(tree, reply, target);
  },
  toString: () => `regenerate(${at})`,
});

const switchCommand = (at: number): Command => ({
  check: (tree) => tree.nodes.size > 0,
  async run(tree, real) {
    const to = tree.pick([...tree.nodes.values()], at)!;
    const { status, body } = await json(
      send(api, real.user, "PUT", `/api/sessions/${real.session}/current`, { message_id: to.id }),
    );
    assert.equal(status, 200);
    tree.current = tree.newestLeaf(to.id);
    assert.equal(body.current_message_id, tree.current);
  },
  toString: () => `switch(${at})`,
});

const deleteCommand = (at: number): Command => ({
  check: (tree) => tree.nodes.size > 0,
  async run(tree, real) {
    const gone = tree.pick([...tree.nodes.values()], at)!;
    const { status, body } = await json(
      send(api, real.user, "DELETE", `/api/sessions/${real.session}/messages/${gone.id}`),
    );
    assert.equal(status, 200);
    const subtree = tree.subtree(gone.id);
    const wasCurrent = subtree.some((n) => n.id === tree.current);
    for (const n of subtree) tree.nodes.delete(n.id);
    assert.equal(body.deleted, subtree.length);
    if (wasCurrent) {
      const rest = [...tree.nodes.values()];
      tree.current = gone.parent
        ? tree.newestLeaf(gone.parent)
        : rest.length
        ? rest.reduce((a, b) => (b.seq > a.seq ? b : a)).id
        : null;
    }
    assert.equal(body.current_message_id, tree.current);
  },
  toString: () => `delete(${at})`,
});

/** Sends an earlier message again, with its id, as a client retrying (or ai 3/4's reload) does. */
const retryCommand = (at: number): Command => ({
  check: (tree) => tree.sent.length > 0,
  async run(tree, real) {
    const { clientId, content } = tree.pick(tree.sent, at)!;
    const stored = [...tree.nodes.values()].find((n) => n.clientId === clientId);
    const reply = await post(real, { messages: [{ role: "user", content, id: clientId }] });
    if (!stored) {
      // its message was deleted: the id is free, and this is a new send
      tree.add({ id: reply.userMessageId, parent: tree.current, role: "user", content, clientId });
      return answered(tree, reply, reply.userMessageId);
    }
    const done = tree.answer(stored.id);
    if (done) {
      // a finished reply is answered again: nothing is asked, nothing changes
      assert.deepEqual([reply.status, reply.replyId, reply.text], [200, done.id, done.content]);
      return;
    }
    const followed = tree.children(stored.id).some((c) =>
      c.role === "user" || tree.children(c.id).length > 0
    );
    if (followed) return assert.equal(reply.status, 409, "superseded");
    answered(tree, reply, stored.id);
  },
  toString: () => `retry(${at})`,
});

/** The API's current branch and whole tree, compared with the model's. */
async function compare(tree: Tree, real: Real) {
  const { status, body: branch } = await json(
    send(api, real.user, "GET", `/api/sessions/${real.session}`),
  );
  if (!tree.created) return assert.equal(status, 404);
  assert.deepEqual(
    branch.map((
      m: Record<string, unknown>,
    ) => [m.id, m.role, m.content, m.parent_id, m.sibling_ids]),
    tree.path().map((
      n,
    ) => [n.id, n.role, n.content, n.parent, tree.children(n.parent).map((c) => c.id)]),
  );
  const exported =
    await (await send(api, real.user, "GET", `/api/sessions/${real.session}/export?branches=all`))
      .json();
  assert.deepEqual(
    exported.messages.map((m: Record<string, unknown>) => [m.id, m.parent_id]),
    [...tree.nodes.values()].sort((a, b) => a.seq - b.seq).map((n) => [n.id, n.parent]),
  );
  assert.equal(exported.session.current_message_id, tree.current);
}

const word = fc.constantFrom("alpha", "beta", "gamma", "delta");
const commands = [
  // sends twice as often as the rest, so the tree grows as it is cut
  word.map(sendCommand),
  word.map(sendCommand),
  fc.tuple(fc.nat(), word).map(([at, text]) => editCommand(at, text)),
  fc.option(fc.nat(), { nil: null }).map(regenerateCommand),
  fc.nat().map(switchCommand),
  fc.nat().map(deleteCommand),
  fc.nat().map(retryCommand),
].map((arbitrary) =>
  arbitrary.map((command) => ({
    ...command,
    // every step is followed by the comparison
    run: async (tree: Tree, real: Real) => {
      steps++;
      await command.run(tree, real);
      await compare(tree, real);
    },
  }))
);
let steps = 0;

const runs = fullScale ? 200 : 40;
const maxCommands = fullScale ? 40 : 24;

Deno.test(`property: random send, edit, regenerate, switch, delete-branch and retry keep the API's tree equal to the model's (${runs} runs)`, async () => {
  const user = await api.user();
  await fc.assert(
    fc.asyncProperty(fc.commands(commands, { maxCommands, size: "max" }), async (sequence) => {
      const real = { user, session: crypto.randomUUID() };
      await fc.asyncModelRun(() => ({ model: new Tree(), real }), sequence);
    }),
    { numRuns: runs },
  );
  assert.ok(steps >= runs, `only ${steps} steps ran`);
  recordFigure("Conversation tree", "model-based runs / steps", `${runs} / ${steps}`);
});
