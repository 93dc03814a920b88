/**
 * The four ways a reply travels to the client. Each encoder turns the
 * reply's events (start, text, title, end) into the bytes of its protocol;
 * clients of every AI SDK from 3.3 to 7 and the original frontend read these
 * bytes, so each one is kept as it is:
 * - text: plain text chunks, as the original API streamed (no way to signal an error)
 * - data: the AI SDK data stream protocol v1, for `useChat({ streamProtocol: 'data' })`
 *   of every ai 3.x and 4.x release (the default: the original frontend names no protocol)
 * - sse:  Server-Sent Events with structured events
 * - ui:   the AI SDK UI message stream v1 (SSE of JSON chunks), for `useChat`/`Chat` of ai 5, 6, 7
 * Hand-written: each is a line format of a few lines, and no library encodes
 * all four from one event sequence without owning the response lifecycle.
 */
import type { Ending, Usage } from "../model.ts";

export type Protocol = "text" | "data" | "sse" | "ui";

/**
 * Who the reply is, as the stream and the response headers tell the client: its own id (the
 * id it is stored under, the assistant message's; on the wire `assistantMessageId`,
 * `assistant_message_id`, `messageId`, `x-assistant-message-id`), the user message it
 * answers, its session and model.
 */
export interface ReplyIds {
  sessionId: string;
  userMessageId: string;
  replyId: string;
  model: string;
}

/** How a reply's stream ended: as it was stored, or its session deleted mid-reply (nothing stored). */
export type StreamEnding = Ending | "session_deleted";

export interface ReplyOutcome {
  ending: StreamEnding;
  /** tokens, when the model reported them */
  usage?: Usage;
  /** set when the reply ended badly (or was not saved): what to tell the client */
  error?: string;
}

export interface Encoder {
  headers: Record<string, string>;
  start(ids: ReplyIds): string;
  delta(text: string): string;
  /** the session's generated title, when it is ready before the reply ends */
  title(ids: ReplyIds, title: string): string;
  end(ids: ReplyIds, outcome: ReplyOutcome): string;
}

const text: Encoder = {
  headers: { "content-type": "text/plain; charset=utf-8" },
  start: () => "",
  delta: (chunk) => chunk,
  title: () => "",
  end: () => "",
};

/** AI SDK finish reasons use dashes, and know nothing of ours. */
function aiSdkFinishReason(ending: StreamEnding): string {
  switch (ending) {
    case "stop":
    case "length":
      return ending;
    // cut at a limit, as a model's own "length" is
    case "max_duration":
      return "length";
    case "content_filter":
      return "content-filter";
    case "tool_calls":
      return "tool-calls";
    case "model_error":
    case "timeout":
    case "shutdown":
    case "session_deleted":
      return "error";
    case "client_closed":
    case "stopped":
      return "other";
  }
}

/**
 * Only parts that every ai 3.x and 4.x client parses: `@ai-sdk/ui-utils`
 * 0.0.33 (ai 3.3, the original frontend) knows codes 0-9 and a-d, 0.0.50
 * (ai 3.4) adds `e:`, the 1.x line (ai 4) knows 0, 2, 3, 8, 9, a-e and only
 * from 1.1 on `f:`. An unknown code makes the client throw and drop the
 * whole reply, so: no `e:`/`f:`. What `f:` carried goes in a message
 * annotation (`8:`, known to all) and in the `x-assistant-message-id` header.
 */
const data: Encoder = {
  headers: { "content-type": "text/plain; charset=utf-8", "x-vercel-ai-data-stream": "v1" },
  // The empty text part makes every client create the assistant message at
  // once: ai 3.x calls onFinish only for a message that has a text part, and
  // a reply can end with no text (content filter), which the client must
  // still see finish.
  start: (ids) =>
    `8:${
      JSON.stringify([{
        type: "reply",
        sessionId: ids.sessionId,
        userMessageId: ids.userMessageId,
        assistantMessageId: ids.replyId,
        model: ids.model,
      }])
    }\n0:""\n`,
  delta: (chunk) => `0:${JSON.stringify(chunk)}\n`,
  // a data part: useChat collects these in its `data`
  title: (ids, title) =>
    `2:${JSON.stringify([{ type: "title", sessionId: ids.sessionId, title }])}\n`,
  end: (_ids, outcome) => {
    // ai 3.3 refuses a finish part without usage; 0 when the model reported none
    // (null would become NaN on the client and spoil any sum it keeps)
    const usage = {
      promptTokens: outcome.usage?.promptTokens ?? 0,
      completionTokens: outcome.usage?.completionTokens ?? 0,
    };
    const error = outcome.error === undefined ? "" : `3:${JSON.stringify(outcome.error)}\n`;
    return error +
      `d:${JSON.stringify({ finishReason: aiSdkFinishReason(outcome.ending), usage })}\n`;
  },
};

const event = (name: string, payload: unknown) =>
  `event: ${name}\ndata: ${JSON.stringify(payload)}\n\n`;

const ids = (i: ReplyIds) => ({
  session_id: i.sessionId,
  user_message_id: i.userMessageId,
  assistant_message_id: i.replyId,
  model: i.model,
});

const sse: Encoder = {
  headers: { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache" },
  start: (i) => event("start", ids(i)),
  delta: (chunk) => event("delta", { content: chunk }),
  title: (i, title) => event("title", { session_id: i.sessionId, title }),
  end: (i, outcome) => {
    const usage = outcome.usage && {
      prompt_tokens: outcome.usage.promptTokens,
      completion_tokens: outcome.usage.completionTokens,
    };
    return outcome.error === undefined
      ? event("done", { ...ids(i), finish_reason: outcome.ending, usage })
      : event("error", { ...ids(i), finish_reason: outcome.ending, usage, detail: outcome.error });
  },
};

/** One UI message stream chunk, as `JsonToSseTransformStream` frames it. */
const chunk = (payload: Record<string, unknown>) => `data: ${JSON.stringify(payload)}\n\n`;
/** The reply is one text part; its id only ties the text chunks together. */
const TEXT_PART = "text";

/**
 * The UI message stream (`x-vercel-ai-ui-message-stream: v1`), with only chunk
 * types and finish reasons that ai 5, 6 and 7 all accept (an unknown one fails
 * the client's whole request). `start` carries the stored assistant message's
 * id (a resumed reply replaces the message with that id) and metadata; the
 * title, usage and how the reply ended (`ending`, as stored) are metadata too.
 */
const ui: Encoder = {
  headers: {
    "content-type": "text/event-stream",
    "cache-control": "no-cache",
    "x-vercel-ai-ui-message-stream": "v1",
    "x-accel-buffering": "no",
  },
  start: (i) =>
    chunk({
      type: "start",
      messageId: i.replyId,
      messageMetadata: { sessionId: i.sessionId, userMessageId: i.userMessageId, model: i.model },
    }) + chunk({ type: "start-step" }) + chunk({ type: "text-start", id: TEXT_PART }),
  delta: (text) => chunk({ type: "text-delta", id: TEXT_PART, delta: text }),
  title: (_i, title) => chunk({ type: "message-metadata", messageMetadata: { title } }),
  end: (i, outcome) => {
    const usage = outcome.usage && {
      inputTokens: outcome.usage.promptTokens,
      outputTokens: outcome.usage.completionTokens,
      totalTokens: outcome.usage.promptTokens + outcome.usage.completionTokens,
    };
    const messageMetadata = { model: i.model, ending: outcome.ending, usage };
    // ai 5 closes its text parts at finish-step: the text ends first
    const closing = chunk({ type: "text-end", id: TEXT_PART }) + chunk({ type: "finish-step" });
    // the client raises an error chunk as an Error and reads no further: the metadata goes first
    const error = outcome.error === undefined
      ? ""
      : chunk({ type: "message-metadata", messageMetadata }) +
        chunk({ type: "error", errorText: outcome.error });
    return closing + error +
      chunk({ type: "finish", finishReason: aiSdkFinishReason(outcome.ending), messageMetadata }) +
      "data: [DONE]\n\n";
  },
};

export const encoders: Record<Protocol, Encoder> = { text, data, sse, ui };
