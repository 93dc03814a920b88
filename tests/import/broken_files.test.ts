/**
 * Broken export files: each a 422 naming where in the file the problem is (`loc`, from `body`)
 * and what it is, with nothing stored, not even the valid conversations beside it.
 */
import assert from "node:assert/strict";
import { startTestApi } from "../support/api.ts";
import { json, send } from "../support/http.ts";
import { countsOf, gptConversation, gptLinear, importFile, webUiChat } from "../support/imports.ts";

const api = await startTestApi();

// deno-lint-ignore no-explicit-any -- files are edited as arbitrary JSON
type Json = any;
const gpt = (): Json => gptLinear("g", 2);
const webUi = (): Json =>
  webUiChat("w", [
    { id: "u", parentId: null, role: "user", content: "hi" },
    { id: "a", parentId: "u", role: "assistant", content: "hello" },
  ]);
const edited = <T>(value: T, edit: (v: T) => void) => (edit(value), value);

const cases: { name: string; file: unknown; query?: string; loc: unknown[]; type: string }[] = [
  { name: "a string", file: JSON.stringify("hello"), loc: ["body"], type: "format_unknown" },
  { name: "no conversations", file: [], loc: ["body"], type: "too_short" },
  {
    name: "neither format",
    file: [{ title: "x", messages: [] }],
    loc: ["body", 0],
    type: "format_unknown",
  },
  {
    name: "an Open WebUI file told to be ChatGPT's",
    file: [webUi()],
    query: "?format=chatgpt",
    loc: ["body", 0, "mapping"],
    type: "missing",
  },
  {
    name: "a parent that is no node",
    file: [edited(gpt(), (c) => c.mapping["g-u1"].parent = "gone")],
    loc: ["body", 0, "mapping", "g-u1", "parent"],
    type: "parent_not_found",
  },
  {
    name: "parents in a loop",
    file: [edited(gpt(), (c) => c.mapping["g-u0"].parent = "g-a1")],
    loc: ["body", 0, "mapping", "g-u0", "parent"],
    type: "parent_loop",
  },
  {
    name: "a current node that is no node",
    file: [edited(gpt(), (c) => c.current_node = "gone")],
    loc: ["body", 0, "current_node"],
    type: "current_not_found",
  },
  {
    name: "a conversation without an id",
    file: [edited(gpt(), (c) => (delete c.id, delete c.conversation_id))],
    loc: ["body", 0, "id"],
    type: "missing",
  },
  {
    name: "a message without a role",
    file: [edited(gpt(), (c) => delete c.mapping["g-a0"].message.author.role)],
    loc: ["body", 0, "mapping", "g-a0", "message", "author", "role"],
    type: "missing",
  },
  {
    name: "parts that are not a list",
    file: [edited(gpt(), (c) => c.mapping["g-u0"].message.content.parts = "text")],
    loc: ["body", 0, "mapping", "g-u0", "message", "content", "parts"],
    type: "invalid_type",
  },
  {
    name: "a time that is not a number",
    file: [edited(gpt(), (c) => c.create_time = "yesterday")],
    loc: ["body", 0, "create_time"],
    type: "invalid_type",
  },
  {
    name: "an id with a NUL byte",
    file: [edited(gpt(), (c) => c.id = "a\u0000b")],
    loc: ["body", 0, "id"],
    type: "custom",
  },
  {
    name: "one conversation twice",
    file: [gpt(), gpt()],
    loc: ["body", 1, "id"],
    type: "duplicate_conversation",
  },
  {
    name: "a valid conversation before a broken one",
    file: [gptLinear("fine", 1), gptConversation("broken", [{ id: "x", parent: "y" }])],
    loc: ["body", 1, "mapping", "x", "parent"],
    type: "parent_not_found",
  },
  {
    name: "an Open WebUI chat without messages",
    file: [edited(webUi(), (c) => delete c.chat.history.messages)],
    loc: ["body", 0, "chat", "history", "messages"],
    type: "missing",
  },
  {
    name: "an Open WebUI message whose content is not text",
    file: [edited(webUi(), (c) => c.chat.history.messages.a.content = 42)],
    loc: ["body", 0, "chat", "history", "messages", "a", "content"],
    type: "invalid_type",
  },
  {
    name: "an Open WebUI parent that is no message",
    file: [edited(webUi(), (c) => c.chat.history.messages.a.parentId = "gone")],
    loc: ["body", 0, "chat", "history", "messages", "a", "parentId"],
    type: "parent_not_found",
  },
  {
    name: "an Open WebUI currentId that is no message",
    file: [edited(webUi(), (c) => c.chat.history.currentId = "gone")],
    loc: ["body", 0, "chat", "history", "currentId"],
    type: "current_not_found",
  },
  {
    name: "an unknown format asked for",
    file: [gpt()],
    query: "?format=claude",
    loc: ["query", "format"],
    type: "invalid_value",
  },
];

for (const broken of cases) {
  Deno.test(`422 naming the problem, nothing stored: ${broken.name}`, async () => {
    const user = await api.user();
    const { status, body } = await importFile(api, user, broken.file, broken.query);
    assert.equal(status, 422, JSON.stringify(body));
    const found = body.detail.find((d: { loc: unknown[] }) =>
      JSON.stringify(d.loc) === JSON.stringify(broken.loc)
    );
    assert.ok(found, `no problem at ${JSON.stringify(broken.loc)}: ${JSON.stringify(body)}`);
    assert.equal(found.type, broken.type);
    assert.ok(found.msg.length > 3);
    assert.deepEqual(await countsOf(api, user.id), { sessions: 0, messages: 0 });
  });
}

Deno.test("422 for a body that is not JSON, nothing stored", async () => {
  const user = await api.user();
  const { status, body } = await json(send(api, user, "POST", "/api/imports", "[{"));
  assert.equal(status, 422);
  assert.deepEqual(body.detail[0].loc, ["body"]);
  assert.deepEqual(await countsOf(api, user.id), { sessions: 0, messages: 0 });
});

Deno.test("a file broken in many places lists the first 20 problems", async () => {
  const user = await api.user();
  const file = Array.from(
    { length: 30 },
    (_, i) => edited(gptLinear(`c${i}`, 1), (c: Json) => c.mapping[`c${i}-u0`].parent = "gone"),
  );
  const { status, body } = await importFile(api, user, file);
  assert.equal(status, 422);
  assert.equal(body.detail.length, 20);
  assert.deepEqual(body.detail[19].loc, ["body", 19, "mapping", "c19-u0", "parent"]);
});
