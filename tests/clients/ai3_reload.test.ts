/**
 * AI SDK 3/4's `reload()`, with the original frontend's own `useChat`
 * (ai@3.3.9, React 18's test renderer) on a real socket: it sends the last
 * user message again, which the API cannot tell from a retry. With message
 * ids (`sendExtraMessageFields`) that is the idempotent retry: the finished
 * reply comes back, no model call. Asked for explicitly
 * (`reload({ options: { body: { trigger: "regenerate-message" } } })`), it is
 * a new reply beside the first, streamed in the data stream the client reads.
 */
import assert from "node:assert/strict";
import { useChat } from "ai-sdk-react-0.0.45";
import React from "react-18";
import TestRenderer from "react-test-renderer-18";
import type { ChatRequest, Script } from "../../local/stand_in_model.ts";
import { startTestApi, type TestUser } from "../support/api.ts";
import { json, send } from "../support/http.ts";

// React warns unless it knows updates are driven through act()
(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

const api = await startTestApi();
const server = api.listen();
addEventListener("unload", () => server.close());

let calls = 0;
const numbered = (_: ChatRequest): Script => ({ chunks: ["Reply", ` #${++calls}`], delayMs: 10 });

type Chat = ReturnType<typeof useChat>;

async function mountChat(user: TestUser, sessionId: string) {
  const view = { chat: undefined as Chat | undefined };
  function ChatPage() {
    view.chat = useChat({
      api: `${server.url}/api/sessions/${sessionId}`,
      streamProtocol: "data",
      headers: { ...user.auth, "Content-Type": "application/json" },
      body: { sessionId },
      // ids sent with each message, so a resend is a retry
      sendExtraMessageFields: true,
    });
    return null;
  }
  await TestRenderer.act(() => {
    TestRenderer.create(React.createElement(ChatPage));
  });
  const act = async (work: () => Promise<unknown>) => {
    await TestRenderer.act(async () => {
      await work();
    });
    await api.idle();
  };
  return { view, act, shown: () => view.chat!.messages.map((m) => [m.role, m.content]) };
}

Deno.test("ai 3.3.9 reload() is a retry (its reply replayed, no model call); with trigger regenerate-message, a new reply beside the first", async () => {
  api.model.script(numbered);
  const user = await api.user();
  const session = crypto.randomUUID();
  const page = await mountChat(user, session);
  await page.act(() => page.view.chat!.append({ role: "user", content: "Hello" }));
  const first = page.shown()[1]![1];
  assert.match(first!, /^Reply #\d+$/);
  const called = api.model.requests.length;

  await page.act(() => page.view.chat!.reload());
  assert.equal(page.view.chat!.error, undefined);
  assert.deepEqual(page.shown(), [["user", "Hello"], ["assistant", first]]);
  assert.equal(api.model.requests.length, called, "the finished reply was replayed");

  await page.act(() =>
    page.view.chat!.reload({ options: { body: { trigger: "regenerate-message" } } })
  );
  assert.equal(page.view.chat!.error, undefined);
  const second = page.shown()[1]![1];
  assert.notEqual(second, first);
  assert.equal(api.model.requests.length, called + 1);
  // the API agrees: the new reply is current, the first kept beside it
  const { body } = await json(send(api, user, "GET", `/api/sessions/${session}`));
  assert.deepEqual(body.map((m: { content: string }) => m.content), ["Hello", second]);
  assert.equal(body[1].sibling_ids.length, 2);
});
