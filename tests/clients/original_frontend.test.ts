/**
 * The original frontend's chat, with default settings: the real `useChat` of
 * ai@3.3.9 (its `ai/react` re-exports @ai-sdk/react 0.0.45), mounted with
 * React 18's test renderer, configured as that frontend configures it, against
 * the API on a real socket. It names no protocol and sends its own model names.
 */
import assert from "node:assert/strict";
import { useChat } from "ai-sdk-react-0.0.45";
import React from "react-18";
import TestRenderer from "react-test-renderer-18";
import type { ChatRequest, Script } from "../../local/stand_in_model.ts";
import { startTestApi, type TestUser } from "../support/api.ts";
import { eventually } from "../support/eventually.ts";
import { json, send, stored } from "../support/http.ts";

// React warns unless it knows updates are driven through act()
(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

const api = await startTestApi({ env: { TITLE_GENERATION: "true" } });
const server = api.listen();
addEventListener("unload", () => server.close());

type Chat = ReturnType<typeof useChat>;

/** Mounts the frontend's chat for one session; `finished` lists what onFinish received (its cue to move to /chat/{id}). */
async function mountChat(user: TestUser, sessionId: string) {
  const view = { chat: undefined as Chat | undefined, finished: [] as string[] };
  function ChatPage() {
    view.chat = useChat({
      api: `${server.url}/api/sessions/${sessionId}`,
      streamProtocol: "data",
      headers: { ...user.auth, "Content-Type": "application/json" },
      body: { sessionId, model: "gpt-3.5-turbo-0125" },
      onFinish: (message) => view.finished.push(message.content),
    });
    return null;
  }
  let renderer: TestRenderer.ReactTestRenderer | undefined;
  await TestRenderer.act(() => {
    renderer = TestRenderer.create(React.createElement(ChatPage));
  });
  return {
    view,
    async say(content: string, body?: Record<string, unknown>) {
      await TestRenderer.act(async () => {
        await view.chat!.append({ role: "user", content }, body ? { body } : undefined);
      });
      await api.idle();
    },
    shown: () => view.chat!.messages.map((m) => [m.role, m.content]),
    unmount: () => TestRenderer.act(() => renderer!.unmount()),
  };
}

const slowReply = (chunks: string[]) => (request: ChatRequest): Script =>
  request.stream ? { chunks, delayMs: 40 } : { chunks: ["Weekend in Rome"] };

Deno.test("the original frontend's useChat shows each reply and finishes, with its model names, and the session is listed with its title", async () => {
  const user = await api.user();
  const session = crypto.randomUUID();
  const page = await mountChat(user, session);
  try {
    api.model.script(slowReply(["Start", " at", " the", " Colosseum."]));
    await page.say("Plan a weekend in Rome");
    assert.equal(page.view.chat!.error, undefined);
    assert.deepEqual(page.shown(), [
      ["user", "Plan a weekend in Rome"],
      ["assistant", "Start at the Colosseum."],
    ]);
    assert.deepEqual(page.view.finished, ["Start at the Colosseum."]);

    // what the sidebar shows after onFinish: the session, with the generated title
    const list = await json(send(api, user, "GET", "/api/sessions"));
    assert.deepEqual(
      list.body.map((s: { id: string; title: string }) => [s.id, s.title]),
      [[session, "Weekend in Rome"]],
    );

    // the next message, with the other name from its model picker; useChat resends the history
    api.model.script(slowReply(["Then", " Trastevere."]));
    await page.say("And on Sunday?", { model: "gpt-4o-mini" });
    assert.equal(page.view.chat!.error, undefined);
    assert.deepEqual(page.shown().slice(2), [
      ["user", "And on Sunday?"],
      ["assistant", "Then Trastevere."],
    ]);
    assert.deepEqual(page.view.finished, ["Start at the Colosseum.", "Then Trastevere."]);
    assert.deepEqual(
      (await stored(api, session)).map((m) => [m.role, m.content, m.model]),
      [
        ["user", "Plan a weekend in Rome", null],
        ["assistant", "Start at the Colosseum.", "test-model"],
        ["user", "And on Sunday?", null],
        ["assistant", "Then Trastevere.", "test-model"],
      ],
    );
  } finally {
    await page.unmount();
  }
});

Deno.test("the original frontend's useChat keeps a reply that broke off as its error: the text so far shows, onFinish does not run", async () => {
  const user = await api.user();
  const session = crypto.randomUUID();
  const page = await mountChat(user, session);
  try {
    api.model.script(() => ({
      chunks: ["Half", " an", " answer"],
      fault: { after: 2, kind: "die" },
    }));
    await page.say("Tell me");
    assert.equal(page.view.chat!.error?.message, "The model's reply broke off");
    assert.deepEqual(page.shown(), [["user", "Tell me"], ["assistant", "Half an"]]);
    assert.deepEqual(page.view.finished, []);
    assert.deepEqual((await stored(api, session)).map((m) => [m.content, m.finish_reason]), [
      ["Tell me", null],
      ["Half an", "model_error"],
    ]);
  } finally {
    await page.unmount();
  }
});

Deno.test("the original frontend's stop button stops the reply: the model's stream is closed within a second, and the stored reply is what the client had, marked stopped", async () => {
  const user = await api.user();
  const session = crypto.randomUUID();
  const page = await mountChat(user, session);
  const words = Array.from({ length: 60 }, (_, i) => `word${i} `);
  const abandonedBefore = api.model.abandonedAt.length;
  try {
    api.model.script(slowReply(words));
    let pressed = 0;
    await TestRenderer.act(async () => {
      const sending = page.view.chat!.append({ role: "user", content: "Talk a lot" });
      await eventually(
        () => Promise.resolve(page.view.chat!.messages.at(-1)),
        (m) => m?.role === "assistant" && m.content.includes("word3"),
        "the first words on screen",
      );
      // the button: useChat().stop() aborts its fetch, and that is all it does
      page.view.chat!.stop();
      pressed = performance.now();
      await sending;
    });
    const closed = await eventually(
      () => Promise.resolve(api.model.abandonedAt.slice(abandonedBefore)),
      (at) => at.length > 0,
      "the model's stream to be closed",
      5_000,
    );
    assert.ok(closed[0]! - pressed < 1000, `closed ${closed[0]! - pressed} ms after stop`);
    await api.idle();

    const shown = page.shown();
    assert.equal(shown.length, 2);
    const seen = shown[1]![1]!;
    assert.ok(seen.includes("word3") && seen.length < words.join("").length, seen);
    assert.deepEqual(page.view.finished, [], "a stopped reply does not finish on the client");
    // what a reload shows: the text the user saw, nothing more
    const history = await json(send(api, user, "GET", `/api/sessions/${session}`));
    assert.equal(history.status, 200);
    assert.deepEqual(
      history.body.map((m: { role: string; content: string }) => [m.role, m.content]),
      [["user", "Talk a lot"], ["assistant", seen]],
    );
    const [, reply] = await stored(api, session);
    assert.equal(reply!.finish_reason, "stopped");
  } finally {
    await page.unmount();
  }
});
