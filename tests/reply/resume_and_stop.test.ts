/**
 * A reply in progress, re-attached to and stopped from any connection or instance, through
 * ai 7's `Chat` (the framework-free
 * `AbstractChat` with a plain state, as `useChat` holds it in React) and its
 * `DefaultChatTransport`, with only `api` and headers set, against the API on
 * a real socket, and through plain requests (text and sse): re-attaching
 * to a reply after a dropped connection from a second app instance over the
 * same database, 204 when nothing streams, and stop.
 */
import assert from "node:assert/strict";
import { signAccessToken } from "../../local/signing_keys.ts";
import type { Script } from "../../local/stand_in_model.ts";
import { Chat } from "../support/ai7_chat.ts";
import { startTestApi, type TestApi } from "../support/api.ts";
import { eventually } from "../support/eventually.ts";
import { stored } from "../support/http.ts";

const api = await startTestApi({ env: { TITLE_GENERATION: "true", REPLY_POLL_MS: "100" } });
// a second instance of the function over the same database (its own model stand-in and key)
const other = await startTestApi({ db: api.db, env: { REPLY_POLL_MS: "100" } });
const server = api.listen();
const otherServer = other.listen();
addEventListener("unload", () => {
  server.close();
  otherServer.close();
});

/** The same user, signed in on the other instance (its own signing key). */
const tokenOn = (instance: TestApi, user: { id: string }) =>
  signAccessToken(instance.key, { id: user.id });

const words = Array.from({ length: 40 }, (_, i) => `word${i} `);
const slow = (): Script => ({ chunks: words, delayMs: 40 });

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
