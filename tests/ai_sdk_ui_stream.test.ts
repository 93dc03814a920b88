/**
 * Today's AI SDK client, unchanged: ai 7's `Chat` (the framework-free
 * `AbstractChat` with a plain state, as `useChat` holds it in React) and its
 * `DefaultChatTransport`, with only `api` and headers set, against the API on
 * a real socket. Sending, the stored ids and metadata, errors, re-attaching
 * to a reply after a dropped connection from a second app instance over the
 * same database, 204 when nothing streams, and stop.
 */
import assert from "node:assert/strict";
import {
  AbstractChat,
  type ChatState,
  type ChatStatus,
  DefaultChatTransport,
  type UIMessage,
} from "ai-7";
import { signAccessToken } from "../local/signing_keys.ts";
import type { ChatRequest, Script } from "../local/stand_in_model.ts";
import { startTestApi, type TestApi } from "./support/api.ts";
import { eventually } from "./support/eventually.ts";
import { stored } from "./support/http.ts";

const api = await startTestApi({ env: { TITLE_GENERATION: "true", REPLY_POLL_MS: "100" } });
// a second instance of the function over the same database (its own model stand-in and key)
const other = await startTestApi({ db: api.db, env: { REPLY_POLL_MS: "100" } });
const server = api.listen();
const otherServer = other.listen();
addEventListener("unload", () => {
  server.close();
  otherServer.close();
});

/** What `useChat` keeps in React state, kept in a plain object (ai exports no concrete Chat). */
class PlainState implements ChatState<UIMessage> {
  status: ChatStatus = "ready";
  error: Error | undefined = undefined;
  constructor(public messages: UIMessage[] = []) {}
  pushMessage = (m: UIMessage) => {
    this.messages = this.messages.concat(m);
  };
  popMessage = () => {
    this.messages = this.messages.slice(0, -1);
  };
  replaceMessage = (i: number, m: UIMessage) => {
    this.messages = [...this.messages.slice(0, i), m, ...this.messages.slice(i + 1)];
  };
  snapshot = <T>(t: T): T => structuredClone(t);
}

interface Finished {
  finishReason?: string;
  isError: boolean;
  isAbort: boolean;
}

class Chat extends AbstractChat<UIMessage> {
  finished: Finished[] = [];
  errors: Error[] = [];
  constructor(id: string, base: string, token: string, messages: UIMessage[] = []) {
    const finished: Finished[] = [];
    const errors: Error[] = [];
    super({
      id,
      state: new PlainState(messages),
      // all a client sets: where the API is, and the user's token
      transport: new DefaultChatTransport({
        api: `${base}/api/chat`,
        headers: () => ({ Authorization: `Bearer ${token}` }),
      }),
      onFinish: (e) => finished.push(e),
      onError: (e) => errors.push(e),
    });
    this.finished = finished;
    this.errors = errors;
  }
  get reply() {
    return this.messages.findLast((m) => m.role === "assistant");
  }
  get replyText() {
    return this.reply?.parts.map((p) => p.type === "text" ? p.text : "").join("");
  }
}

/** The same user, signed in on the other instance (its own signing key). */
const tokenOn = (instance: TestApi, user: { id: string }) =>
  signAccessToken(instance.key, { id: user.id });

const words = Array.from({ length: 40 }, (_, i) => `word${i} `);
const slow = (): Script => ({ chunks: words, delayMs: 40 });
const hello = (request: ChatRequest): Script =>
  request.stream ? { chunks: ["Hello", " there", "!"], delayMs: 30 } : { chunks: ["Greeting"] };

Deno.test("ai 7 Chat with only api and headers set: the reply arrives under its stored id, with session, title, usage and ending as metadata", async () => {
  api.model.script(hello);
  const user = await api.user();
  const session = crypto.randomUUID();
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

Deno.test("ai 7 Chat: regenerate is answered 422 and changes nothing", async () => {
  api.model.script(hello);
  const user = await api.user();
  const session = crypto.randomUUID();
  const chat = new Chat(session, server.url, user.token);
  await chat.sendMessage({ text: "Say hello" });
  await api.idle();
  const before = await stored(api, session);
  await chat.regenerate();
  assert.equal(chat.status, "error");
  assert.equal((chat.error as unknown as { statusCode: number }).statusCode, 422);
  assert.match(chat.error!.message, /submit-message/);
  assert.deepEqual(await stored(api, session), before);
});

Deno.test("ai 7 Chat: after a dropped connection the reply goes on, and a fresh client on another instance re-attaches to the whole of it", async () => {
  api.model.script(slow);
  const user = await api.user();
  const session = crypto.randomUUID();
  const requestsBefore = api.model.requests.length;
  const first = new Chat(session, server.url, user.token);
  const sending = first.sendMessage({ text: "Talk a lot" });
  await eventually(
    () => Promise.resolve(first.replyText ?? ""),
    (text) => text.includes("word3"),
    "the first words",
  );
  // what chat.stop() does: the client aborts its fetch; nothing is sent to the server
  await first.stop();
  await sending;
  const seenBeforeDrop = first.replyText!;
  assert.ok(seenBeforeDrop.length < words.join("").length);

  // another device, another instance: it starts from the history as the API lists it
  const resumed = new Chat(session, otherServer.url, await tokenOn(other, user), [
    first.messages[0]!,
  ]);
  await resumed.resumeStream();
  assert.equal(resumed.status, "ready", String(resumed.error));
  assert.equal(resumed.messages.length, 2);
  assert.equal(resumed.replyText, words.join(""), "the whole reply, nothing lost or doubled");
  assert.equal(resumed.reply!.id, first.reply!.id);
  const resumedMetadata = resumed.reply!.metadata as Record<string, unknown>;
  assert.equal(resumedMetadata.ending, "stop");
  assert.equal(resumedMetadata.model, "test-model");
  assert.equal(resumedMetadata.sessionId, session);

  await api.idle();
  const [, reply] = await stored(api, session);
  assert.deepEqual([reply!.id, reply!.content, reply!.finish_reason], [
    first.reply!.id,
    words.join(""),
    "stop",
  ]);
  const replies = api.model.requests.slice(requestsBefore).filter((r) => r.stream);
  assert.equal(replies.length, 1, "one model call for the reply");

  // the same client re-attaching replaces its partial message by id (a full replay)
  const again = new Chat(session, server.url, user.token, structuredClone(first.messages));
  await again.resumeStream();
  assert.equal(again.messages.length, 2, "nothing streams now: 204, nothing changes");
  assert.equal(again.replyText, seenBeforeDrop);
});

Deno.test("GET …/stream is 204 when nothing streams, and re-attaches in the text and sse protocols too", async () => {
  const user = await api.user();
  const session = crypto.randomUUID();
  const idle = await fetch(`${server.url}/api/chat/${session}/stream`, { headers: user.auth });
  assert.equal(idle.status, 204);
  await idle.body?.cancel();

  api.model.script(slow);
  const post = await fetch(`${server.url}/api/sessions/${session}?protocol=text`, {
    method: "POST",
    headers: { ...user.auth, "content-type": "application/json" },
    body: JSON.stringify({ messages: [{ role: "user", content: "Talk" }] }),
  });
  const [text, sse] = await Promise.all(["text", "sse"].map(async (protocol) => {
    await new Promise((resolve) => setTimeout(resolve, 300));
    const response = await fetch(
      `${otherServer.url}/api/sessions/${session}/stream?protocol=${protocol}`,
      { headers: { authorization: `Bearer ${await tokenOn(other, user)}` } },
    );
    assert.equal(response.status, 200);
    return await response.text();
  }));
  assert.equal(await post.text(), words.join(""));
  await api.idle();
  assert.equal(text, words.join(""));
  const events = sse!.split("\n\n").filter(Boolean);
  assert.match(events[0]!, /^event: start/);
  const deltas = events.filter((e) => e.startsWith("event: delta")).map((e) =>
    JSON.parse(e.split("data: ")[1]!).content
  ).join("");
  assert.equal(deltas, words.join(""));
  assert.match(events.at(-1)!, /^event: done\ndata: .*"finish_reason":"stop"/);
});

Deno.test("a stop from another instance ends the model call, stores the reply as stopped and frees its slot", async () => {
  api.model.script(slow);
  const user = await api.user();
  const session = crypto.randomUUID();
  const abandonedBefore = api.model.abandonedStreams;
  const chat = new Chat(session, server.url, user.token);
  const sending = chat.sendMessage({ text: "Talk a lot" });
  await eventually(
    () => Promise.resolve(chat.replyText ?? ""),
    (t) => t.includes("word3"),
    "the first words",
  );
  const stop = await fetch(`${otherServer.url}/api/chat/${session}/stream`, {
    method: "DELETE",
    headers: { authorization: `Bearer ${await tokenOn(other, user)}` },
  });
  assert.equal(stop.status, 200);
  const stopped = await stop.json();
  assert.equal(stopped.finish_reason, "stopped");
  await sending;
  await api.idle();

  assert.equal(chat.status, "ready");
  assert.equal((chat.reply!.metadata as { ending: string }).ending, "stopped");
  assert.deepEqual(chat.finished.map((f) => f.finishReason), ["other"]);
  const [, reply] = await stored(api, session);
  assert.equal(reply!.id, stopped.id);
  assert.equal(reply!.finish_reason, "stopped");
  assert.equal(reply!.content, stopped.content);
  assert.equal(chat.replyText, reply!.content, "the client saw what was stored");
  assert.ok(reply!.content.length < words.join("").length, "stopped before the end");
  await eventually(
    () => Promise.resolve(api.model.openStreams),
    (n) => n === 0,
    "the model stream to close",
  );
  assert.equal(api.model.abandonedStreams, abandonedBefore + 1);
  const [slots] = await api.db.admin<{ n: number }[]>`
    select count(*)::int as n from chat_private.replies where session_id = ${session}`;
  assert.equal(slots!.n, 0);

  // a stopped reply is finished as the user chose: sending its message again replays it
  const requestsBefore = api.model.requests.length;
  const again = await fetch(`${server.url}/api/sessions/${session}?protocol=text`, {
    method: "POST",
    headers: { ...user.auth, "content-type": "application/json" },
    body: JSON.stringify({
      messages: [{ role: "user", content: "Talk a lot", id: chat.messages[0]!.id }],
    }),
  });
  assert.equal(await again.text(), reply!.content);
  assert.equal(api.model.requests.length, requestsBefore);

  const none = await fetch(`${server.url}/api/chat/${session}/stream`, {
    method: "DELETE",
    headers: user.auth,
  });
  assert.equal(none.status, 204, "nothing left to stop");
  await none.body?.cancel();
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

Deno.test("DELETE /api/sessions/{id}/stream stops a plain-text reply: its stream ends with what was stored as stopped", async () => {
  api.model.script(slow);
  const user = await api.user();
  const session = crypto.randomUUID();
  const post = await fetch(`${server.url}/api/sessions/${session}?protocol=text`, {
    method: "POST",
    headers: { ...user.auth, "content-type": "application/json" },
    body: JSON.stringify({ messages: [{ role: "user", content: "Talk" }] }),
  });
  const reader = post.body!.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("word2")) text += (await reader.read()).value;
  const stop = await fetch(`${server.url}/api/sessions/${session}/stream`, {
    method: "DELETE",
    headers: user.auth,
  });
  assert.equal(stop.status, 200);
  const stopped = await stop.json();
  for (let r = await reader.read(); !r.done; r = await reader.read()) text += r.value;
  await api.idle();
  const [, reply] = await stored(api, session);
  assert.deepEqual([reply!.finish_reason, reply!.content], ["stopped", text]);
  assert.deepEqual([stopped.finish_reason, stopped.content], ["stopped", text]);
  assert.ok(text.length < words.join("").length);
});
