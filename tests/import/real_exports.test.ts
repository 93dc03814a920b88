/**
 * The real export files (../shared/fixtures/imports/, read where they are) imported whole, and
 * what was stored checked node by node against the file: each kept node under its nearest kept
 * ancestor, the skipped ones (hidden, system, tool, browsing calls, reasoning) absent, every
 * branch kept, the current node current, a token count on every message.
 */
import assert from "node:assert/strict";
import { contentTokens } from "../../supabase/functions/api/token_budget.ts";
import { startTestApi } from "../support/api.ts";
import { json, send } from "../support/http.ts";
import {
  branchTo,
  importFile,
  realExport,
  type StoredMessage,
  storedSession,
} from "../support/imports.ts";

const api = await startTestApi();

/** A node the rules keep: its time (ms), role and nearest kept ancestor's time. */
interface Kept {
  ms: number;
  role: string;
  parentMs: number | null;
}

/** What the documented rules keep of a ChatGPT conversation, worked out here on their own. */
// deno-lint-ignore no-explicit-any -- export files are arbitrary JSON
function keptChatGpt(conversation: any): Map<number, Kept> {
  // deno-lint-ignore no-explicit-any
  const keeps = (node: any) => {
    const m = node?.message;
    return m && ["user", "assistant"].includes(m.author.role) && m.recipient === "all" &&
      !m.metadata?.is_visually_hidden_from_conversation && m.content.content_type === "text" &&
      m.content.parts.join("").trim() !== "";
  };
  const kept = new Map<number, Kept>();
  for (const node of Object.values(conversation.mapping)) {
    if (!keeps(node)) continue;
    // deno-lint-ignore no-explicit-any
    let parent: any = conversation.mapping[(node as any).parent];
    while (parent && !keeps(parent)) parent = conversation.mapping[parent.parent];
    const ms = (m: { message: { create_time: number } }) =>
      Math.floor(m.message.create_time * 1000);
    // deno-lint-ignore no-explicit-any
    kept.set(ms(node as any), {
      // deno-lint-ignore no-explicit-any
      ms: ms(node as any),
      // deno-lint-ignore no-explicit-any
      role: (node as any).message.author.role,
      parentMs: parent ? ms(parent) : null,
    });
  }
  return kept;
}

/** Every stored message matches a kept node, under the message of that node's kept ancestor. */
function assertSameTree(messages: StoredMessage[], kept: Map<number, Kept>) {
  assert.equal(messages.length, kept.size);
  const msOf = new Map(messages.map((m) => [m.id, Math.round(m.created_at.getTime())]));
  for (const message of messages) {
    const node = kept.get(msOf.get(message.id)!);
    assert.ok(node, `no kept node at ${message.created_at.toISOString()}`);
    assert.equal(message.role, node.role);
    assert.equal(message.parent_id ? msOf.get(message.parent_id) : null, node.parentMs);
  }
}

/** Tokens counted by the function's tokenizer; the running total follows the branch. */
async function assertCounted(messages: StoredMessage[]) {
  const byId = new Map(messages.map((m) => [m.id, m]));
  for (const message of messages) {
    assert.equal(message.tokens, await contentTokens(message.content));
    const parent = message.parent_id ? byId.get(message.parent_id)! : undefined;
    assert.equal(message.tokens_before, parent ? parent.tokens_before + parent.tokens! + 4 : 0);
    assert.equal(message.reply_to, message.role === "assistant" ? message.parent_id : null);
  }
}

Deno.test("the ChatGPT tree: both forks kept, the hidden system node skipped, the reply in progress kept unfinished, the current node current", async () => {
  const user = await api.user();
  const file = await realExport("chatgpt-tree.json");
  const { status, body } = await importFile(api, user, file);
  assert.equal(status, 200);
  assert.equal(body.format, "chatgpt");
  assert.equal(body.sessions.length, 1);
  const imported = body.sessions[0];
  assert.deepEqual({ ...imported, id: undefined }, {
    id: undefined,
    source_id: "d5dc5307-6807-41a0-8b04-4acee626eeb7",
    title: "Assist user with summary",
    status: "imported",
    messages: 11,
  });

  const { session, messages } = await storedSession(api, imported.id);
  assertSameTree(messages, keptChatGpt(file[0]));
  await assertCounted(messages);
  assert.equal(messages.filter((m) => m.role === "system").length, 0);
  // a fork under the first reply, and two replies to "tell me a joke"
  const children = (content: string) => {
    const parent = messages.find((m) => m.content === content)!;
    return messages.filter((m) => m.parent_id === parent.id).map((m) => m.content);
  };
  assert.deepEqual(children("Hello! How can I assist you today?"), ["so cool bro", "hi again"]);
  assert.equal(children("tell me a joke").length, 2);
  // the reply still being written when it was exported: its text as far as it went
  // deno-lint-ignore no-explicit-any
  const story = Object.values(file[0].mapping).map((n: any) => n.message)
    .find((m) => m?.status === "in_progress");
  const unfinished = messages.find((m) => m.finish_reason === "client_closed")!;
  assert.equal(unfinished.content, story.content.parts[0].trim());
  assert.deepEqual(messages.filter((m) => m.finish_reason === "client_closed").length, 1);
  // current_node is the second joke
  const current = messages.find((m) => m.id === session.current_message_id)!;
  const currentNode = file[0].mapping[file[0].current_node].message;
  assert.equal(current.created_at.getTime(), Math.floor(currentNode.create_time * 1000));
  assert.deepEqual(branchTo(messages, current.id).slice(0, 5), [
    "hi there",
    "Hello! How can I assist you today?",
    "hi again",
    "Hey! Welcome back. What's on your mind?",
    "tell me a joke",
  ]);
  // kept as the file has them: title, times, models, where it came from
  assert.equal(session.title, "Assist user with summary");
  assert.equal(session.created_at.getTime(), Math.floor(file[0].create_time * 1000));
  assert.equal(session.updated_at.getTime(), Math.floor(file[0].update_time * 1000));
  assert.ok(messages.every((m) => m.imported_from === "chatgpt"));
  assert.deepEqual(
    [...new Set(messages.filter((m) => m.role === "assistant").map((m) => m.model))],
    ["text-davinci-002-render-sha"],
  );
});

Deno.test("the ChatGPT export with web browsing: tool and browsing nodes skipped, each answer under its question, sources kept as links", async () => {
  const user = await api.user();
  const file = await realExport("chatgpt-export.json");
  const { status, body } = await importFile(api, user, file);
  assert.equal(status, 200);
  assert.deepEqual(body.sessions.map((s: { messages: number }) => s.messages), [6, 4]);
  for (const [i, imported] of body.sessions.entries()) {
    assert.equal(imported.source_id, file[i].id);
    assert.equal(imported.title, file[i].title);
    const { session, messages } = await storedSession(api, imported.id);
    assertSameTree(messages, keptChatGpt(file[i]));
    await assertCounted(messages);
    // one branch, alternating, ending at current_node
    assert.deepEqual(
      branchTo(messages, session.current_message_id),
      messages.map((m) => m.content),
    );
    assert.deepEqual(
      messages.map((m) => m.role),
      messages.map((_, j) => j % 2 ? "assistant" : "user"),
    );
  }
  const { messages } = await storedSession(api, body.sessions[0].id);
  const texts = messages.map((m) => m.content).join("\n");
  // the calls to the browser (search(...), mclick(...)) and its pages are not messages
  assert.doesNotMatch(texts, /search\(|mclick\(|Avg MPG/);
  // 【13†source】 became a link to the page the reply cites
  assert.doesNotMatch(texts, /【|†/);
  assert.match(
    messages[3]!.content,
    /due to the additional weight \(\[Volkswagen Transporter TDI340 2014 - Pricing & Specifications \| carsales\.com\.au\]\(https:\/\/www\.carsales\.com\.au\/volkswagen\/transporter\/price\/2014\/tdi340-381631\/\)\)\.$/,
  );
});

Deno.test("the Open WebUI export: reasoning and tool calls folded out of the replies, each chat's current message current", async () => {
  const user = await api.user();
  const file = await realExport("openwebui-export.json");
  const { status, body } = await importFile(api, user, file);
  assert.equal(status, 200);
  assert.equal(body.format, "openwebui");
  assert.deepEqual(body.sessions.map((s: { source_id: string }) => s.source_id), [
    "reasoning-chat",
    "tool-chat",
    "simple-chat",
  ]);
  const replies = [];
  for (const [i, imported] of body.sessions.entries()) {
    const chat = file[i];
    assert.equal(imported.title, chat.title);
    const { session, messages } = await storedSession(api, imported.id);
    await assertCounted(messages);
    const history = chat.chat.history;
    const ids = Object.keys(history.messages);
    // one stored message per message of the file, each at its time, under its parent
    assert.equal(messages.length, ids.length);
    for (const [j, id] of ids.entries()) {
      const source = history.messages[id];
      assert.equal(messages[j]!.created_at.getTime(), source.timestamp * 1000);
      assert.equal(messages[j]!.role, source.role);
      assert.equal(
        messages[j]!.parent_id,
        source.parentId ? messages[ids.indexOf(source.parentId)]!.id : null,
      );
      if (source.role === "assistant") assert.equal(messages[j]!.model, source.model);
    }
    assert.equal(session.current_message_id, messages[ids.indexOf(history.currentId)]!.id);
    assert.equal(session.created_at.getTime(), chat.created_at * 1000);
    assert.equal(session.updated_at.getTime(), chat.updated_at * 1000);
    replies.push(messages.find((m) => m.role === "assistant")!.content);
  }
  assert.deepEqual(replies, ["255", "The weather in Paris is 18C with rain.", "Hi there!"]);
});

Deno.test("importing a real file again adds nothing: every conversation is already imported", async () => {
  const user = await api.user();
  for (
    const name of ["chatgpt-tree.json", "chatgpt-export.json", "openwebui-export.json"] as const
  ) {
    const file = await realExport(name);
    const first = await importFile(api, user, file);
    const again = await importFile(api, user, file);
    assert.equal(again.status, 200);
    assert.deepEqual(
      again.body.sessions,
      first.body.sessions.map((s: object) => ({ ...s, status: "already_imported", messages: 0 })),
    );
  }
  const { body: sessions } = await json(send(api, user, "GET", "/api/sessions"));
  assert.equal(sessions.length, 6);
});
