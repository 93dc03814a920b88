/**
 * A re-attached stream speaks the protocol its reply was started in, unless
 * the request names one (`?protocol=`, an explicit Accept, or the /chat routes
 * only AI SDK 5+ clients call), and carries the same headers as the send that
 * started the reply.
 */
import assert from "node:assert/strict";
import { AbstractChat, type ChatState, DefaultChatTransport, type UIMessage } from "ai-7";
import type { Script } from "../../local/stand_in_model.ts";
import { startTestApi, type TestUser } from "../support/api.ts";
import { eventually } from "../support/eventually.ts";
import { readUntil, send, stored } from "../support/http.ts";

const api = await startTestApi({ env: { REPLY_POLL_MS: "100" } });
const server = api.listen();
addEventListener("unload", () => server.close());

const words = Array.from({ length: 40 }, (_, i) => `word${i} `);
const whole = words.join("");
const slow = (): Script => ({ chunks: words, delayMs: 40 });

/** Starts a slow reply in `protocol` and reads it until its first words; the POST's response. */
async function startReply(user: TestUser, session: string, protocol: string) {
  const response = await send(api, user, "POST", `/api/sessions/${session}?protocol=${protocol}`, {
    messages: [{ role: "user", content: "Talk a lot" }],
  });
  assert.equal(response.status, 200);
  const reader = response.body!.getReader();
  await readUntil(reader, "word2");
  return { response, reader };
}

const reattach = (user: TestUser, path: string, headers: Record<string, string> = {}) =>
  send(api, user, "GET", path, undefined, headers);

/** The headers a reply's response is read by: its protocol's, and the reply's ids. */
const replyHeaders = [
  "content-type",
  "cache-control",
  "x-vercel-ai-data-stream",
  "x-vercel-ai-ui-message-stream",
  "x-accel-buffering",
  "x-chat-session-id",
  "x-user-message-id",
  "x-assistant-message-id",
  "x-model",
];
const headersOf = (response: Response) =>
  Object.fromEntries(replyHeaders.map((name) => [name, response.headers.get(name)]));

/** What a framework-free ai 7 `Chat` keeps in state. */
class PlainState implements ChatState<UIMessage> {
  status: ChatState<UIMessage>["status"] = "ready";
  error: Error | undefined = undefined;
  constructor(public messages: UIMessage[] = []) {}
  pushMessage = (m: UIMessage) => void (this.messages = this.messages.concat(m));
  popMessage = () => void (this.messages = this.messages.slice(0, -1));
  replaceMessage = (i: number, m: UIMessage) =>
    void (this.messages = [...this.messages.slice(0, i), m, ...this.messages.slice(i + 1)]);
  snapshot = <T>(t: T): T => structuredClone(t);
}

/** ai 7's Chat sending to /api/chat and re-attaching at /api/sessions/{id}/stream. */
class Chat extends AbstractChat<UIMessage> {
  constructor(id: string, token: string, messages: UIMessage[] = []) {
    super({
      id,
      state: new PlainState(messages),
      transport: new DefaultChatTransport({
        api: `${server.url}/api/chat`,
        headers: () => ({ Authorization: `Bearer ${token}` }),
        prepareReconnectToStreamRequest: ({ id, headers }) => ({
          api: `${server.url}/api/sessions/${id}/stream`,
          headers,
        }),
      }),
    });
  }
  get replyText() {
    return this.messages.findLast((m) => m.role === "assistant")?.parts
      .map((p) => p.type === "text" ? p.text : "").join("");
  }
}

Deno.test("ai 7 Chat re-attaching at GET /api/sessions/{id}/stream to a reply it started gets the UI message stream, and the whole reply", async () => {
  api.model.script(slow);
  const user = await api.user();
  const session = crypto.randomUUID();
  const first = new Chat(session, user.token);
  const sending = first.sendMessage({ text: "Talk a lot" });
  await eventually(
    () => Promise.resolve(first.replyText ?? ""),
    (text) => text.includes("word3"),
    "the first words",
  );
  await first.stop();
  await sending;

  const resumed = new Chat(session, user.token, [first.messages[0]!]);
  await resumed.resumeStream();
  assert.equal(resumed.status, "ready", String(resumed.error));
  assert.equal(resumed.replyText, whole, "the whole reply, read as the UI message stream");
  await api.idle();
  const [, reply] = await stored(api, session);
  assert.equal(reply!.content, whole);
});

Deno.test("a re-attach naming no protocol speaks the one its reply was started in", async () => {
  const user = await api.user();
  const expected: Record<string, RegExp> = {
    text: /^word0 word1 /,
    data: /^8:\[\{"type":"reply"/,
    sse: /^event: start\n/,
    ui: /^data: \{"type":"start"/,
  };
  for (const protocol of ["text", "data", "sse", "ui"]) {
    api.model.script(slow);
    const session = crypto.randomUUID();
    const post = await startReply(user, session, protocol);
    // fetch's own Accept (*/*) names nothing
    const again = await reattach(user, `/api/sessions/${session}/stream`, { accept: "*/*" });
    assert.equal(again.status, 200, protocol);
    assert.deepEqual(headersOf(again), headersOf(post.response), protocol);
    const body = await again.text();
    assert.match(body, expected[protocol]!, protocol);
    assert.ok(body.includes("word39"), `${protocol}: followed to its end`);
    await post.reader.cancel();
    await api.idle();
  }
});

Deno.test("a re-attach naming a protocol gets that one: ?protocol=, an explicit Accept, or the /chat route", async () => {
  const user = await api.user();
  api.model.script(slow);
  const session = crypto.randomUUID();
  const post = await startReply(user, session, "data");
  const [query, accept, chat] = await Promise.all([
    reattach(user, `/api/sessions/${session}/stream?protocol=text`),
    reattach(user, `/api/sessions/${session}/stream`, { accept: "text/event-stream" }),
    reattach(user, `/api/chat/${session}/stream`),
  ]);
  assert.equal(query.headers.get("content-type"), "text/plain; charset=utf-8");
  assert.equal(query.headers.get("x-vercel-ai-data-stream"), null);
  assert.equal(await query.text(), whole);
  assert.equal(accept.headers.get("content-type"), "text/event-stream; charset=utf-8");
  assert.match(await accept.text(), /^event: start\n[^]*event: done\n/);
  assert.equal(chat.headers.get("x-vercel-ai-ui-message-stream"), "v1");
  assert.match(await chat.text(), /^data: \{"type":"start"[^]*data: \[DONE\]\n\n$/);
  await post.reader.cancel();
  await api.idle();
});

Deno.test("a POST and a re-attach of the same reply carry the same headers; only the POST tells its Server-Timing", async () => {
  const user = await api.user();
  api.model.script(slow);
  const session = crypto.randomUUID();
  const post = await send(api, user, "POST", `/api/chat`, {
    id: session,
    trigger: "submit-message",
    messages: [{ id: "m1", role: "user", parts: [{ type: "text", text: "Talk a lot" }] }],
  });
  assert.equal(post.status, 200);
  const reader = post.body!.getReader();
  await readUntil(reader, "word2");
  const again = await reattach(user, `/api/chat/${session}/stream`);
  assert.equal(again.status, 200);
  assert.deepEqual(headersOf(again), headersOf(post));
  assert.match(post.headers.get("server-timing")!, /^db;desc="[^"]+";dur=[\d.]+, model;/);
  assert.equal(again.headers.get("server-timing"), null);
  await again.text();
  await reader.cancel();
  await api.idle();

  const [question, reply] = await stored(api, session);
  assert.equal(post.headers.get("x-chat-session-id"), session);
  assert.equal(post.headers.get("x-user-message-id"), question!.id);
  assert.equal(post.headers.get("x-assistant-message-id"), reply!.id);
  assert.equal(post.headers.get("x-model"), "test-model");
});
