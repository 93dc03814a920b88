/**
 * ChatGPT files built from the documented format, one rule at a time (docs/api.md, Import):
 * which nodes are kept, what text they keep, where their children go, which leaf is current,
 * how replies ended, titles and times.
 */
import assert from "node:assert/strict";
import { startTestApi, type TestUser } from "../support/api.ts";
import {
  branchTo,
  gptConversation,
  type GptNode,
  importFile,
  storedSession,
} from "../support/imports.ts";

const api = await startTestApi();

async function imported(user: TestUser, conversation: unknown) {
  const { status, body } = await importFile(api, user, [conversation]);
  assert.equal(status, 200, JSON.stringify(body));
  return await storedSession(api, body.sessions[0].id);
}

const root: GptNode = { id: "root", parent: null, bare: true };

Deno.test("system, tool, hidden, tool-call, reasoning and memory nodes are skipped; their children move up to the nearest kept message", async () => {
  const user = await api.user();
  const { messages, session } = await imported(
    user,
    gptConversation("odd-roles", [
      root,
      { id: "sys", parent: "root", role: "system", text: "You are ChatGPT" },
      { id: "u1", parent: "sys", role: "user", text: "Plot x^2" },
      {
        id: "ctx",
        parent: "u1",
        role: "user",
        message: {
          content: { content_type: "user_editable_context", user_profile: "I am a tester" },
          metadata: { is_visually_hidden_from_conversation: true },
        },
      },
      {
        id: "think",
        parent: "ctx",
        role: "assistant",
        message: { content: { content_type: "thoughts", thoughts: [{ summary: "hmm" }] } },
      },
      {
        id: "recap",
        parent: "think",
        role: "assistant",
        message: { content: { content_type: "reasoning_recap", content: "Thought for 2s" } },
      },
      {
        id: "call",
        parent: "recap",
        role: "assistant",
        message: {
          recipient: "python",
          content: { content_type: "code", language: "python", text: "plot(x**2)" },
        },
      },
      {
        id: "out",
        parent: "call",
        role: "tool",
        message: { content: { content_type: "execution_output", text: "<Figure>" } },
      },
      { id: "a1", parent: "out", role: "assistant", text: "Here is the plot." },
      {
        id: "memory",
        parent: "a1",
        role: "assistant",
        message: { content: { content_type: "model_editable_context", model_set_context: "x" } },
      },
    ]),
  );
  assert.deepEqual(messages.map((m) => [m.role, m.content]), [
    ["user", "Plot x^2"],
    ["assistant", "Here is the plot."],
  ]);
  assert.equal(messages[0]!.parent_id, null);
  assert.equal(messages[1]!.parent_id, messages[0]!.id);
  // current_node was the memory node: its nearest kept ancestor is current
  assert.equal(session.current_message_id, messages[1]!.id);
});

Deno.test("a reply resumed after a tool call is one message; a fork after the call keeps both branches", async () => {
  const user = await api.user();
  const call = (id: string, parent: string): GptNode => ({
    id,
    parent,
    role: "assistant",
    message: { recipient: "browser", content: { content_type: "code", text: "search('x')" } },
  });
  const { messages } = await imported(
    user,
    gptConversation("resumed", [
      root,
      { id: "u1", parent: "root", role: "user", text: "Find it" },
      { id: "a1", parent: "u1", role: "assistant", text: "Let me look." },
      call("c1", "a1"),
      { id: "t1", parent: "c1", role: "tool", text: "results" },
      { id: "a2", parent: "t1", role: "assistant", text: "Found it." },
      { id: "u2", parent: "a2", role: "user", text: "Again" },
      { id: "a3", parent: "u2", role: "assistant", text: "Looking again." },
      call("c2", "a3"),
      { id: "t2", parent: "c2", role: "tool", text: "results" },
      { id: "a4", parent: "t2", role: "assistant", text: "First answer." },
      { id: "a5", parent: "t2", role: "assistant", text: "Second answer." },
    ]),
  );
  assert.deepEqual(messages.map((m) => m.content), [
    "Find it",
    "Let me look.\n\nFound it.",
    "Again",
    "Looking again.",
    "First answer.",
    "Second answer.",
  ]);
  const [, , , looking, first, second] = messages;
  assert.equal(first!.parent_id, looking!.id);
  assert.equal(second!.parent_id, looking!.id);
});

Deno.test("text parts: images and files become placeholders, audio its transcription, code for everyone a fenced block", async () => {
  const user = await api.user();
  const { messages } = await imported(
    user,
    gptConversation("parts", [
      root,
      {
        id: "u1",
        parent: "root",
        role: "user",
        message: {
          content: {
            content_type: "multimodal_text",
            parts: [
              { content_type: "image_asset_pointer", asset_pointer: "file-service://x" },
              "What is in this picture?",
              { content_type: "audio_asset_pointer", asset_pointer: "sediment://y" },
              { content_type: "audio_transcription", text: "and say it aloud" },
              { content_type: "file_asset_pointer", asset_pointer: "file-service://z" },
            ],
          },
        },
      },
      {
        id: "a1",
        parent: "u1",
        role: "assistant",
        message: { content: { content_type: "code", language: "python", text: "print(1)" } },
      },
      { id: "u2", parent: "a1", role: "user", text: "  trailing space  \n" },
    ]),
  );
  assert.deepEqual(messages.map((m) => m.content), [
    "[image]\nWhat is in this picture?\nand say it aloud\n[file]",
    "```python\nprint(1)\n```",
    "trailing space",
  ]);
});

Deno.test("endings: in_progress is client_closed, max_tokens length, interrupted stopped, else stop; an empty reply is not stored", async () => {
  const user = await api.user();
  const reply = (id: string, parent: string, message: Record<string, unknown>): GptNode => ({
    id,
    parent,
    role: "assistant",
    text: `reply ${id}`,
    message,
  });
  const { messages } = await imported(
    user,
    gptConversation("endings", [
      root,
      { id: "u", parent: "root", role: "user", text: "Go" },
      reply("a", "u", { status: "in_progress" }),
      reply("b", "u", { metadata: { finish_details: { type: "max_tokens" } } }),
      reply("c", "u", { metadata: { finish_details: { type: "interrupted" } } }),
      reply("d", "u", { metadata: { finish_details: { type: "stop" } } }),
      { id: "e", parent: "u", role: "assistant", message: { status: "in_progress" } },
    ]),
  );
  assert.deepEqual(messages.slice(1).map((m) => [m.content, m.finish_reason]), [
    ["reply a", "client_closed"],
    ["reply b", "length"],
    ["reply c", "stopped"],
    ["reply d", "stop"],
  ]);
});

Deno.test("without a current node the newest branch is current; an edited first message makes two roots", async () => {
  const user = await api.user();
  const { messages, session } = await imported(
    user,
    gptConversation("edited", [
      root,
      { id: "sys", parent: "root", role: "system", text: "" },
      { id: "u1", parent: "sys", role: "user", text: "first try" },
      { id: "a1", parent: "u1", role: "assistant", text: "answer to first" },
      { id: "u1b", parent: "sys", role: "user", text: "second try" },
      { id: "a1b", parent: "u1b", role: "assistant", text: "answer to second" },
      { id: "a1c", parent: "u1b", role: "assistant", text: "regenerated answer" },
    ], { current_node: null }),
  );
  assert.deepEqual(messages.filter((m) => m.parent_id === null).map((m) => m.content), [
    "first try",
    "second try",
  ]);
  assert.deepEqual(branchTo(messages, session.current_message_id), [
    "second try",
    "regenerated answer",
  ]);
});

Deno.test("titles and times: a blank title gets the default at the conversation's time, a long one is cut, missing times are inherited, future ones are now", async () => {
  const user = await api.user();
  const untitled = await imported(
    user,
    gptConversation("untitled", [
      root,
      {
        id: "u",
        parent: "root",
        role: "user",
        text: "hi",
        message: { create_time: 1_600_000_000 },
      },
      { id: "a", parent: "u", role: "assistant", text: "hello" },
    ], { title: "   ", create_time: null, update_time: null }),
  );
  assert.equal(untitled.session.title, "New Chat - 2020-09-13 12:26:40");
  assert.equal(untitled.session.title_set_by, "default");
  // no time of its own: its parent's; the session spans its messages
  assert.deepEqual(untitled.messages.map((m) => m.created_at.getTime() / 1000), [
    1_600_000_000,
    1_600_000_000,
  ]);
  assert.equal(untitled.session.created_at.getTime() / 1000, 1_600_000_000);

  const before = Date.now();
  const long = await imported(
    user,
    gptConversation("long", [
      root,
      { id: "u", parent: "root", role: "user", text: "hi", message: { create_time: 4e9 } },
    ], { title: `${"é".repeat(199)}🙂tail`, create_time: 4e9, update_time: 4e9 }),
  );
  assert.equal(long.session.title, `${"é".repeat(199)}🙂`);
  assert.equal(long.session.title_set_by, "user");
  for (const time of [long.session.created_at, long.messages[0]!.created_at]) {
    assert.ok(time.getTime() >= before - 1000 && time.getTime() <= Date.now() + 1000);
  }
});
