/**
 * The three ways a reply travels to the client. Each encoder turns the
 * reply's events into the bytes of its protocol:
 * - text: plain text chunks, as the original API streamed (no way to signal an error)
 * - data: the AI SDK data stream protocol v1, for `useChat({ streamProtocol: 'data' })`
 * - sse:  Server-Sent Events with structured events
 * Hand-written: each is a line format of a few lines, and no library encodes
 * all three from one event sequence without owning the response lifecycle.
 */
import type { Ending, Usage } from "./model.ts";

export type Protocol = "text" | "data" | "sse";

export interface ReplyIds {
  sessionId: string;
  userMessageId: string;
  assistantMessageId: string;
  model: string;
}

export interface ReplyOutcome {
  ending: Ending;
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
function aiSdkFinishReason(ending: Ending): string {
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
      return "error";
    case "client_closed":
      return "other";
  }
}

const data: Encoder = {
  headers: { "content-type": "text/plain; charset=utf-8", "x-vercel-ai-data-stream": "v1" },
  start: (ids) => `f:${JSON.stringify({ messageId: ids.assistantMessageId })}\n`,
  delta: (chunk) => `0:${JSON.stringify(chunk)}\n`,
  // a data part: useChat collects these in its `data`
  title: (ids, title) =>
    `2:${JSON.stringify([{ type: "title", sessionId: ids.sessionId, title }])}\n`,
  end: (_ids, outcome) => {
    const finishReason = aiSdkFinishReason(outcome.ending);
    const usage = outcome.usage && {
      promptTokens: outcome.usage.promptTokens,
      completionTokens: outcome.usage.completionTokens,
    };
    const error = outcome.error === undefined ? "" : `3:${JSON.stringify(outcome.error)}\n`;
    return error +
      `e:${JSON.stringify({ finishReason, usage, isContinued: false })}\n` +
      `d:${JSON.stringify({ finishReason, usage })}\n`;
  },
};

const event = (name: string, payload: unknown) =>
  `event: ${name}\ndata: ${JSON.stringify(payload)}\n\n`;

const ids = (i: ReplyIds) => ({
  session_id: i.sessionId,
  user_message_id: i.userMessageId,
  assistant_message_id: i.assistantMessageId,
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

export const encoders: Record<Protocol, Encoder> = { text, data, sse };
