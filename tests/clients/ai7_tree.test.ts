/**
 * ai 7's `Chat`, unchanged, pressing the buttons beside a message: regenerate
 * (`regenerate()`, with and without `messageId`) and edit (`sendMessage({
 * text, messageId })`), then the conversation read back as a UI reads it: the
 * current branch, each message with its parent and siblings, the other
 * branches one request away. Also a Chat whose messages were loaded from the
 * API (stored ids) rather than sent by it (the client's own ids).
 */
import assert from "node:assert/strict";
import type { UIMessage } from "ai-7";
import type { ChatRequest, Script } from "../../local/stand_in_model.ts";
import { Chat } from "../support/ai7_chat.ts";
import { startTestApi, type TestUser } from "../support/api.ts";
import { json, send, stored } from "../support/http.ts";

const api = await startTestApi({ env: { REPLY_POLL_MS: "100" } });
const server = api.listen();
addEventListener("unload", () => {
  server.close();
});

/** Replies `re: <the last user message> #<n>`, n counting the model's calls. */
let calls = 0;
const echo = (request: ChatRequest): Script => ({
  chunks: ["re: ", `${request.messages.at(-1)!.content} #${++calls}`],
  delayMs: 5,
});

interface Read {
  id: string;
  role: string;
  content: string;
  parent_id: string | null;
  sibling_ids: string[];
}

const read = async (user: TestUser, session: string, query = "") => {
  const { status, body } = await json(send(api, user, "GET", `/api/sessions/${session}${query}`));
  assert.equal(status, 200);
  return body as Read[];
};

const text = (m: UIMessage) => m.parts.map((p) => p.type === "text" ? p.text : "").join("");

Deno.test("ai 7 Chat: regenerate() and regenerate({ messageId }) stream new replies beside the earlier one; the newest is current and every one is kept", async () => {
  api.model.script(echo);
  const user = await api.user();
  const session = crypto.randomUUID();
  const chat = new Chat(session, server.url, user.token);
  await chat.sendMessage({ text: "One" });
  await chat.sendMessage({ text: "Two" });
  await api.idle();
  const firstTwo = chat.reply!.id;
  const prompts = api.model.requests.length;

  await chat.regenerate();
  await api.idle();
  assert.equal(chat.status, "ready", String(chat.error));
  const second = chat.replyText!;
  assert.match(second, /^re: Two #\d+$/);
  // the model was asked the same branch again, without the earlier reply
  const [, reOne] = await stored(api, session);
  assert.deepEqual(
    api.model.requests[prompts]!.messages.map((m) => m.content).slice(1),
    ["One", reOne!.content, "Two"],
  );

  // regenerate an earlier reply by its id: the client drops what followed it, as the server does
  await chat.regenerate({ messageId: chat.messages[1]!.id });
  await api.idle();
  assert.equal(chat.status, "ready", String(chat.error));
  assert.deepEqual(chat.messages.map((m) => [m.role, text(m)]), [
    ["user", "One"],
    ["assistant", chat.replyText],
  ]);

  // the server agrees with the client: the current branch is what it shows
  const branch = await read(user, session);
  assert.deepEqual(branch.map((m) => [m.id, m.role, m.content]), [
    [branch[0]!.id, "user", "One"],
    [chat.reply!.id, "assistant", chat.replyText],
  ]);
  // "2 / 2" beside the reply; nothing was lost: all four replies are stored
  assert.equal(branch[1]!.sibling_ids.length, 2);
  assert.equal(branch[1]!.sibling_ids.indexOf(chat.reply!.id), 1);
  const rows = await stored(api, session);
  assert.deepEqual(rows.map((r) => r.content).filter((c) => c.startsWith("re: Two")).length, 2);
  assert.ok(rows.some((r) => r.id === firstTwo));
  // the earlier branch reads back whole through any of its messages
  const earlier = await read(user, session, `?leaf=${branch[1]!.sibling_ids[0]}`);
  assert.deepEqual(earlier.map((m) => m.content), [
    "One",
    earlier[1]!.content,
    "Two",
    second,
  ]);
});

Deno.test("ai 7 Chat: sendMessage({ text, messageId }) edits: the new text is stored beside the old one and answered, the new branch is current, the old one kept", async () => {
  api.model.script(echo);
  const user = await api.user();
  const session = crypto.randomUUID();
  const chat = new Chat(session, server.url, user.token);
  await chat.sendMessage({ text: "Plan a trip" });
  await chat.sendMessage({ text: "To Rome" });
  await api.idle();
  const [, , toRome] = await stored(api, session);

  await chat.sendMessage({ text: "To Lisbon", messageId: chat.messages[2]!.id });
  await api.idle();
  assert.equal(chat.status, "ready", String(chat.error));
  assert.match(chat.replyText!, /^re: To Lisbon #\d+$/);
  // the model saw the edited branch only: system, "Plan a trip", its reply, "To Lisbon"
  const seen = api.model.requests.at(-1)!.messages.map((m) => m.content);
  assert.deepEqual([seen.length, seen[1], seen[3]], [4, "Plan a trip", "To Lisbon"]);

  const branch = await read(user, session);
  assert.deepEqual(branch.map((m) => m.content), [
    "Plan a trip",
    branch[1]!.content,
    "To Lisbon",
    chat.replyText,
  ]);
  assert.equal(branch[2]!.parent_id, branch[1]!.id);
  assert.deepEqual(branch[2]!.sibling_ids, [toRome!.id, branch[2]!.id]);
  // edit it again, and regenerate the edit: the client's id names the message in its place
  await chat.sendMessage({ text: "To Porto", messageId: chat.messages[2]!.id });
  await api.idle();
  await chat.regenerate();
  await api.idle();
  assert.equal(chat.status, "ready", String(chat.error));
  const after = await read(user, session);
  assert.deepEqual(after.map((m) => m.content).slice(2), ["To Porto", chat.replyText]);
  assert.equal(after[2]!.sibling_ids.length, 3);
  assert.equal(after[3]!.sibling_ids.length, 2);
  // switching back to the first edit shows its branch again
  const { status, body } = await json(
    send(api, user, "PUT", `/api/sessions/${session}/current`, { message_id: toRome!.id }),
  );
  assert.equal(status, 200);
  const rome = await read(user, session);
  assert.equal(body.current_message_id, rome.at(-1)!.id);
  assert.deepEqual(rome.map((m) => m.content).slice(2, 3), ["To Rome"]);
});

Deno.test("ai 7 Chat with messages loaded from the API: regenerate and edit by stored ids", async () => {
  api.model.script(echo);
  const user = await api.user();
  const session = crypto.randomUUID();
  const first = new Chat(session, server.url, user.token);
  await first.sendMessage({ text: "Hello" });
  await api.idle();
  // another device opens the conversation: its messages carry the stored ids
  const loaded: UIMessage[] = (await read(user, session)).map((m) => ({
    id: m.id,
    role: m.role as "user" | "assistant",
    parts: [{ type: "text", text: m.content }],
  }));
  const other = new Chat(session, server.url, user.token, loaded);
  await other.regenerate({ messageId: loaded[1]!.id });
  await api.idle();
  assert.equal(other.status, "ready", String(other.error));
  await other.sendMessage({ text: "Hello again", messageId: loaded[0]!.id });
  await api.idle();
  assert.equal(other.status, "ready", String(other.error));
  const branch = await read(user, session);
  assert.deepEqual(branch.map((m) => [m.role, m.content]), [
    ["user", "Hello again"],
    ["assistant", other.replyText],
  ]);
  // the edit of a first message is another first message
  assert.deepEqual([branch[0]!.parent_id, branch[0]!.sibling_ids], [null, [
    loaded[0]!.id,
    branch[0]!.id,
  ]]);
  assert.equal((await stored(api, session)).length, 5);
});
