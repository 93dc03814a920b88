/**
 * Today's AI SDK client, unchanged: ai 7's `Chat` (the framework-free
 * `AbstractChat` with a plain state, as `useChat` holds it in React) and its
 * `DefaultChatTransport`, with only `api` and headers set, against the API on
 * a real socket. Sending, the stored ids and metadata, errors, and which
 * stream the request's shape picks. Re-attaching and stop:
 * tests/reply/resume_and_stop.test.ts.
 */
import assert from "node:assert/strict";
import type { ChatRequest, Script } from "../../local/stand_in_model.ts";
import { Chat } from "../support/ai7_chat.ts";
import { startTestApi } from "../support/api.ts";
import { eventually } from "../support/eventually.ts";
import { stored } from "../support/http.ts";

const api = await startTestApi({ env: { TITLE_GENERATION: "true", REPLY_POLL_MS: "100" } });
const server = api.listen();
addEventListener("unload", () => {
  server.close();
});

const hello = (request: ChatRequest): Script =>
  request.stream ? { chunks: ["Hello", " there", "!"], delayMs: 30 } : { chunks: ["Greeting"] };

Deno.test("ai 7 Chat with only api and headers set: the reply arrives under its stored id, with session, title, usage and ending as metadata", async () => {
  const user = await api.user();
  const session = crypto.randomUUID();
  // a title is announced when it is stored before the reply ends: the reply waits for it here
  const titled = eventually(
    () => api.db.admin`select title from public.chat_sessions where id = ${session}`,
    (rows) => rows[0]?.title === "Greeting",
    "the generated title",
  );
  api.model.script((request) =>
    request.stream ? { ...hello(request), endAfter: titled } : hello(request)
  );
  const chat = new Chat(session, server.url, user.token);
  await chat.sendMessage({ text: "Say hello" });
  await api.idle();

  assert.equal(chat.status, "ready", String(chat.error));
  assert.equal(chat.replyText, "Hello there!");
  const rows = await stored(api, session);
  assert.deepEqual(rows.map((r) => [r.role, r.content]), [
    ["user", "Say hello"],
    ["assistant", "Hello there!"],
  ]);
  assert.equal(chat.reply!.id, rows[1]!.id, "the client's message id is the stored one");
  const metadata = chat.reply!.metadata as Record<string, unknown>;
  assert.equal(metadata.sessionId, session);
  assert.equal(metadata.userMessageId, rows[0]!.id);
  assert.equal(metadata.model, "test-model");
  assert.equal(metadata.title, "Greeting");
  assert.equal(metadata.ending, "stop");
  const usage = metadata.usage as Record<string, number>;
  assert.equal(usage.outputTokens, 3, "the stand-in counts a token per chunk");
  assert.ok(usage.inputTokens! > 0);
  assert.equal(usage.totalTokens, usage.inputTokens! + usage.outputTokens);
  assert.deepEqual(chat.finished.map((f) => [f.finishReason, f.isError]), [["stop", false]]);
  // the history is the server's: the next send carries the whole client history, only the last counts
  api.model.script(hello);
  await chat.sendMessage({ text: "Again" });
  await api.idle();
  assert.deepEqual(
    api.model.requests.at(-1)!.messages.map((m) => [m.role, m.content]),
    [
      ["system", "You are a helpful assistant."],
      ["user", "Say hello"],
      ["assistant", "Hello there!"],
      ["user", "Again"],
    ],
  );
});

Deno.test("ai 7 Chat: a model failing midway is the client's error, and the partial reply is shown and stored", async () => {
  api.model.script(() => ({ chunks: ["Half ", "a ", "reply"], fault: { after: 2, kind: "die" } }));
  const user = await api.user();
  const session = crypto.randomUUID();
  const chat = new Chat(session, server.url, user.token);
  await chat.sendMessage({ text: "Break" });
  await api.idle();
  assert.equal(chat.status, "error");
  assert.match(chat.error!.message, /\S/);
  assert.equal(chat.errors.length, 1);
  assert.equal(chat.replyText, "Half a ");
  assert.equal((chat.reply!.metadata as { ending: string }).ending, "model_error");
  const [, reply] = await stored(api, session);
  assert.deepEqual([reply!.content, reply!.finish_reason], ["Half a ", "model_error"]);
});

Deno.test("ai 7 Chat: a refused request surfaces as the client's APICallError with the API's detail", async () => {
  const chat = new Chat(crypto.randomUUID(), server.url, "not-a-token");
  await chat.sendMessage({ text: "hi" });
  assert.equal(chat.status, "error");
  assert.equal(chat.error!.name, "AI_APICallError");
  assert.equal((chat.error as unknown as { statusCode: number }).statusCode, 401);
  assert.match(chat.error!.message, /detail/);
});

Deno.test("ai 7 Chat: regenerate streams a new reply beside the earlier one, which stays stored", async () => {
  // Until the tree (issue 17) this was a 422 that changed nothing; a regeneration is now a
  // sibling of the earlier reply, and the earlier one is kept (tests/clients/ai7_tree.test.ts)
  api.model.script(hello);
  const user = await api.user();
  const session = crypto.randomUUID();
  const chat = new Chat(session, server.url, user.token);
  await chat.sendMessage({ text: "Say hello" });
  await api.idle();
  const [question, first] = await stored(api, session);
  await chat.regenerate();
  await api.idle();
  assert.equal(chat.status, "ready", String(chat.error));
  const rows = await stored(api, session);
  assert.deepEqual(rows.map((r) => [r.role, r.content]), [
    ["user", "Say hello"],
    ["assistant", "Hello there!"],
    ["assistant", "Hello there!"],
  ]);
  assert.deepEqual(rows.slice(0, 2), [question, first]);
  assert.deepEqual(chat.messages.map((m) => m.id), [chat.messages[0]!.id, rows[2]!.id]);
});

Deno.test("the request's shape picks the stream: ai 4.x messages (content and parts) get the data stream, ai 5+ UI messages the UI message stream", async () => {
  api.model.script(hello);
  const user = await api.user();
  const post = (session: string, body: unknown) =>
    fetch(`${server.url}/api/sessions/${session}`, {
      method: "POST",
      headers: { ...user.auth, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  const ai4 = await post(crypto.randomUUID(), {
    messages: [{
      id: "m1",
      role: "user",
      content: "Say hello",
      parts: [{ type: "text", text: "Say hello" }],
    }],
  });
  assert.equal(ai4.headers.get("x-vercel-ai-data-stream"), "v1");
  assert.match(await ai4.text(), /^8:/);
  const ui = await post(crypto.randomUUID(), {
    id: "ignored-on-this-route",
    messages: [{ id: "m1", role: "user", parts: [{ type: "text", text: "Say hello" }] }],
    trigger: "submit-message",
  });
  assert.equal(ui.headers.get("x-vercel-ai-ui-message-stream"), "v1");
  assert.match(await ui.text(), /^data: \{"type":"start"/);
  await api.idle();
});

Deno.test("a UI message with a file part is a 422 naming the part, and stores nothing", async () => {
  const user = await api.user();
  const session = crypto.randomUUID();
  const response = await fetch(`${server.url}/api/chat`, {
    method: "POST",
    headers: { ...user.auth, "content-type": "application/json" },
    body: JSON.stringify({
      id: session,
      trigger: "submit-message",
      messages: [{
        id: "m1",
        role: "user",
        parts: [{ type: "text", text: "Look" }, {
          type: "file",
          mediaType: "image/png",
          url: "data:image/png;base64,AA==",
        }],
      }],
    }),
  });
  assert.equal(response.status, 422);
  const { detail } = await response.json();
  assert.deepEqual(detail[0].loc, ["body", "messages", 0, "parts", 1, "type"]);
  assert.match(detail[0].msg, /only text parts/);
  assert.deepEqual(await stored(api, session), []);
});
