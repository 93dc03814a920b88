/**
 * The default reply stream as every ai 3.x and 4.x client reads it, with the
 * real parsers from npm at the versions those releases ship: @ai-sdk/ui-utils
 * 0.0.33 (ai 3.3.x: the original frontend, ai@3.3.9), 0.0.50 (ai 3.4.33, the
 * last 3.x), 1.0.0 (ai 4.0) and 1.2.11 (ai 4.3, the last 4.x). Each runs
 * `callChatApi`, the function useChat calls to send a message and read the
 * reply, against the API on a real socket, with what the original frontend
 * sends: no protocol choice, its session id and its model name.
 */
import assert from "node:assert/strict";
import * as ai43 from "@ai-sdk/ui-utils";
import * as ai33 from "ui-utils-0.0.33";
import * as ai34 from "ui-utils-0.0.50";
import * as ai40 from "ui-utils-1.0.0";
import type { ChatRequest, Script } from "../../local/stand_in_model.ts";
import { startTestApi } from "../support/api.ts";
import { stored } from "../support/http.ts";

const api = await startTestApi({ env: { TITLE_GENERATION: "true" } });
const server = api.listen();
addEventListener("unload", () => server.close());

/** The reply takes a moment, so the title (asked for alongside it) is ready before it ends. */
const replyWithTitle = (reply: Script) => (request: ChatRequest): Script =>
  request.stream ? reply : { chunks: ["Trip to Rome"] };

/** What a client made of one reply: what it showed, what it finished with, or the error it kept. */
interface Seen {
  headers?: Headers;
  /** the assistant message as last shown */
  shown?: { id: string; content: string; annotations?: unknown[] };
  data: unknown[];
  finished?: {
    content: string;
    finishReason: string;
    usage: { promptTokens: number; completionTokens: number };
  };
  error?: string;
}

interface Send {
  url: string;
  body: Record<string, unknown>;
  headers: Record<string, string>;
}

type Shown = { id: string; role: string; content: string; annotations?: unknown[] | null };
const last = (messages: Shown[]) => messages.findLast((m) => m.role === "assistant");
const shown = (message: Shown | undefined) =>
  message && {
    id: message.id,
    content: message.content,
    annotations: message.annotations ?? undefined,
  };

/** The arguments every version's callChatApi takes alike, as useChat passes them. */
/** `onUpdate` of the clients before ai 4.3, which pass all messages and the data parts. */
const showLast = (seen: Seen) => (messages: Shown[], data?: unknown[]) => {
  seen.shown = shown(last(messages));
  seen.data = data ?? [];
};

function common(send: Send, seen: Seen) {
  return {
    api: send.url,
    body: send.body,
    streamProtocol: "data" as const,
    credentials: undefined,
    headers: send.headers,
    abortController: () => new AbortController(),
    restoreMessagesOnFailure: () => {},
    onResponse: (response: Response) => {
      seen.headers = response.headers;
    },
    onFinish: (
      message: { content: string },
      { finishReason, usage }: {
        finishReason: string;
        usage: { promptTokens: number; completionTokens: number };
      },
    ) => {
      seen.finished = {
        content: message.content,
        finishReason,
        usage: { promptTokens: usage.promptTokens, completionTokens: usage.completionTokens },
      };
    },
    onToolCall: undefined,
    generateId: () => `client-${crypto.randomUUID()}`,
    fetch: undefined,
  };
}

const clients: Record<string, (send: Send, seen: Seen) => Promise<unknown>> = {
  "ai 3.3 (ui-utils 0.0.33, the original frontend)": (send, seen) =>
    ai33.callChatApi({
      ...common(send, seen),
      onUpdate: showLast(seen),
    }),
  "ai 3.4 (ui-utils 0.0.50)": (send, seen) =>
    ai34.callChatApi({
      ...common(send, seen),
      onUpdate: showLast(seen),
    }),
  "ai 4.0 (ui-utils 1.0.0)": (send, seen) =>
    ai40.callChatApi({
      ...common(send, seen),
      onUpdate: showLast(seen),
    }),
  "ai 4.3 (ui-utils 1.2.11)": (send, seen) =>
    ai43.callChatApi({
      ...common(send, seen),
      onUpdate: ({ message, data }) => {
        seen.shown = shown(message);
        seen.data = data ?? [];
      },
      lastMessage: undefined,
      requestType: "generate",
    }),
};

/** Sends a first message as the original frontend does, through one client, and reads the reply. */
async function converse(client: keyof typeof clients) {
  const user = await api.user();
  const session = crypto.randomUUID();
  const seen: Seen = { data: [] };
  await clients[client]!({
    url: `${server.url}/api/sessions/${session}`,
    body: {
      messages: [{ role: "user", content: "Plan a weekend in Rome" }],
      sessionId: session,
      model: "gpt-3.5-turbo-0125",
    },
    headers: user.auth,
  }, seen).catch((error: Error) => seen.error = error.message);
  await api.idle();
  return { seen, session, messages: await stored(api, session) };
}

const usageOf = async (id: string) =>
  (await api.db.admin<{ prompt_tokens: number; completion_tokens: number }[]>`
    select prompt_tokens, completion_tokens from public.messages where id = ${id}`)[0]!;

for (const client of Object.keys(clients)) {
  Deno.test(`${client}: the default stream shows the reply, the title and the stored ids, and finishes with usage`, async () => {
    api.model.script(replyWithTitle({ chunks: ["Sure", ", here", " goes"], delayMs: 60 }));
    const { seen, session, messages } = await converse(client);
    assert.equal(seen.error, undefined);
    const [userMessage, reply] = messages;
    assert.equal(reply!.content, "Sure, here goes");
    assert.equal(reply!.model, "test-model", "the default model served the frontend's model name");
    const usage = await usageOf(reply!.id);
    assert.deepEqual(seen.finished, {
      content: "Sure, here goes",
      finishReason: "stop",
      usage: { promptTokens: usage.prompt_tokens, completionTokens: usage.completion_tokens },
    });
    assert.equal(seen.shown!.content, "Sure, here goes");
    // the stored ids: in the message's annotations and in the headers
    assert.deepEqual(seen.shown!.annotations, [{
      type: "reply",
      sessionId: session,
      userMessageId: userMessage!.id,
      assistantMessageId: reply!.id,
      model: "test-model",
    }]);
    assert.equal(seen.headers!.get("x-assistant-message-id"), reply!.id);
    assert.equal(seen.headers!.get("x-model"), "test-model");
    assert.deepEqual(seen.data, [{ type: "title", sessionId: session, title: "Trip to Rome" }]);
  });

  Deno.test(`${client}: a model failing mid-reply reaches the client as the stream's error, after the text it sent`, async () => {
    api.model.script(() => ({
      chunks: ["Half", " an", " answer"],
      fault: { after: 2, kind: "die" },
    }));
    const { seen, messages } = await converse(client);
    assert.equal(seen.error, "The model's reply broke off");
    assert.equal(seen.shown!.content, "Half an");
    assert.equal(seen.finished, undefined);
    assert.deepEqual(messages.map((m) => [m.content, m.finish_reason]), [
      ["Plan a weekend in Rome", null],
      ["Half an", "model_error"],
    ]);
  });

  Deno.test(`${client}: a reply with no text still finishes, with its reason`, async () => {
    api.model.script(() => ({ chunks: [], finishReason: "content_filter" }));
    const { seen, messages } = await converse(client);
    assert.equal(seen.error, undefined);
    assert.equal(seen.finished?.content, "");
    assert.equal(seen.finished?.finishReason, "content-filter");
    assert.deepEqual(messages.map((m) => m.finish_reason), [null, "content_filter"]);
  });
}
