/**
 * Open WebUI files built from the documented format, one rule at a time (docs/api.md, Import).
 */
import assert from "node:assert/strict";
import { startTestApi, type TestUser } from "../support/api.ts";
import { branchTo, importFile, storedSession, webUiChat } from "../support/imports.ts";

const api = await startTestApi();

async function imported(user: TestUser, file: unknown) {
  const { status, body } = await importFile(api, user, file);
  assert.equal(status, 200, JSON.stringify(body));
  assert.equal(body.format, "openwebui");
  return await storedSession(api, body.sessions[0].id);
}

Deno.test("system and tool messages are skipped, their children kept under the nearest kept message", async () => {
  const user = await api.user();
  const { messages, session } = await imported(user, [
    webUiChat("roles", [
      { id: "s", parentId: null, role: "system", content: "Be terse" },
      { id: "u", parentId: "s", role: "user", content: "Weather?" },
      { id: "t", parentId: "u", role: "tool", content: '{"temp": 18}' },
      { id: "a", parentId: "t", role: "assistant", content: "18C." },
    ]),
  ]);
  assert.deepEqual(messages.map((m) => [m.role, m.content]), [["user", "Weather?"], [
    "assistant",
    "18C.",
  ]]);
  assert.equal(messages[0]!.parent_id, null);
  assert.equal(messages[1]!.parent_id, messages[0]!.id);
  assert.equal(session.current_message_id, messages[1]!.id);
});

Deno.test("reasoning, tool calls and code runs are folded out of a reply; other details and files stay, as text", async () => {
  const user = await api.user();
  const reply = [
    '<details type="reasoning" done="true" duration="2"><summary>Thought</summary>&gt; hmm</details>',
    '<details type="tool_calls" done="true" id="x"><summary>Tool</summary>"42"</details>',
    "The answer is 42.\n",
    '<details type="code_interpreter" done="true"><summary>Ran</summary>print(42)</details>',
    "<details><summary>More</summary>kept, the user's own markup</details>",
  ].join("");
  const { messages } = await imported(user, [
    webUiChat("folded", [
      {
        id: "u",
        parentId: null,
        role: "user",
        content: "Look",
        files: [{ type: "image", url: "data:..." }, { type: "file", name: "notes.pdf" }],
      },
      { id: "a", parentId: "u", role: "assistant", content: reply, done: true },
    ]),
  ]);
  assert.deepEqual(messages.map((m) => m.content), [
    "Look\n[image]\n[file: notes.pdf]",
    "The answer is 42.\n<details><summary>More</summary>kept, the user's own markup</details>",
  ]);
});

Deno.test("a reply not done is client_closed, one with an error model_error; timestamps in milliseconds are read as such", async () => {
  const user = await api.user();
  const { messages } = await imported(user, [
    webUiChat("endings", [
      { id: "u", parentId: null, role: "user", content: "Go", timestamp: 1_700_000_000_000 },
      { id: "a", parentId: "u", role: "assistant", content: "Half", done: false },
      { id: "b", parentId: "u", role: "assistant", content: "Oops", error: { content: "500" } },
      { id: "c", parentId: "u", role: "assistant", content: "Fine", done: true },
    ]),
  ]);
  assert.deepEqual(messages.map((m) => m.finish_reason), [
    null,
    "client_closed",
    "model_error",
    "stop",
  ]);
  assert.equal(messages[0]!.created_at.getTime(), 1_700_000_000_000);
});

Deno.test("siblings are stored in childrenIds order; without a currentId the newest branch is current", async () => {
  const user = await api.user();
  const chat = webUiChat("siblings", [
    { id: "u", parentId: null, role: "user", content: "Pick" },
    { id: "older", parentId: "u", role: "assistant", content: "older" },
    { id: "newer", parentId: "u", role: "assistant", content: "newer" },
    { id: "follow", parentId: "older", role: "user", content: "follow-up" },
  ], null);
  // deno-lint-ignore no-explicit-any
  const history = (chat as any).chat.history;
  history.messages.u.childrenIds = ["newer", "older"];
  const { messages, session } = await imported(user, [chat]);
  assert.deepEqual(messages.map((m) => m.content), ["Pick", "newer", "older", "follow-up"]);
  // the last child at every step: "older" (listed last), then its follow-up
  assert.deepEqual(branchTo(messages, session.current_message_id), [
    "Pick",
    "older",
    "follow-up",
  ]);
});

Deno.test("one chat sent alone is a file of one; a blank title falls back to the chat's, then to the default", async () => {
  const user = await api.user();
  const alone = webUiChat("alone", [{ id: "u", parentId: null, content: "hi" }], "u", {
    title: "",
  });
  // deno-lint-ignore no-explicit-any
  (alone as any).chat.title = "From the chat";
  assert.equal((await imported(user, alone)).session.title, "From the chat");
  const untitled = webUiChat("untitled", [{ id: "u", parentId: null, content: "hi" }], "u", {
    title: null,
    created_at: 1_600_000_000,
  });
  // deno-lint-ignore no-explicit-any
  (untitled as any).chat.title = " ";
  const { session } = await imported(user, [untitled]);
  assert.equal(session.title, "New Chat - 2020-09-13 12:26:40");
});

Deno.test("?format= names the format; a chat with no message is an empty session", async () => {
  const user = await api.user();
  const { status, body } = await importFile(
    api,
    user,
    [webUiChat("empty", [], null)],
    "?format=openwebui",
  );
  assert.equal(status, 200);
  const { session, messages } = await storedSession(api, body.sessions[0].id);
  assert.deepEqual([messages.length, session.current_message_id], [0, null]);
  assert.equal(body.sessions[0].messages, 0);
});
