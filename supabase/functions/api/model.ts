/**
 * The model, reached with the official `openai` SDK, so any
 * OpenAI-compatible server works (`OPENAI_BASE_URL`); a streamed reply's
 * body is read by `model_stream.ts`.
 */
import type OpenAI from "openai";
import type { Config } from "./config.ts";
import { completionChunks } from "./model_stream.ts";
import { storable } from "./storable_text.ts";

/**
 * The SDK and a client of it, loaded on first use rather than at start-up:
 * importing the SDK is about 70 ms of CPU, nearly half of what importing the
 * function costs, which the Edge Runtime counts against a new worker's first
 * request, and a worker that only lists and reads never needs it. The
 * specifier is a literal, so the bundler still packs the SDK.
 */
export interface ModelClient {
  openai(): Promise<{ client: OpenAI; sdk: typeof OpenAI }>;
}

export function createModelClient(config: Config["model"]): ModelClient {
  let loaded: Promise<{ client: OpenAI; sdk: typeof OpenAI }> | undefined;
  return {
    openai: () =>
      loaded ??= import("openai").then(({ default: sdk }) => ({
        sdk,
        client: new sdk({
          apiKey: config.apiKey,
          baseURL: config.baseURL,
          timeout: config.timeoutMs,
          maxRetries: config.maxRetries,
        }),
      })),
  };
}

export interface PromptMessage {
  role: "system" | "user" | "assistant";
  content: string;
}

/** How a reply ended: the model's own finish reasons, or ours. Mirrors `messages.finish_reason`. */
export type Ending =
  | "stop"
  | "length"
  | "content_filter"
  | "tool_calls"
  | "client_closed"
  | "model_error"
  | "timeout"
  /** cut at REPLY_MAX_SECONDS */
  | "max_duration"
  /** cut because the worker serving it was retired */
  | "shutdown"
  /** stopped by the user (a stop request, from any connection) */
  | "stopped";

export interface Usage {
  promptTokens: number;
  completionTokens: number;
}

export interface ReplyChunk {
  text: string;
  finishReason?: Ending;
  /** what the reply cost, as the model reports it at the end */
  usage?: Usage;
}

/** The model failed; `ending` says how, `status` what the API answers when nothing was streamed yet. */
export class ModelError extends Error {
  constructor(
    readonly ending: "model_error" | "timeout",
    readonly status: 502 | 504,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Opens a streamed reply. Resolves once the model has sent its first chunk,
 * so a model that cannot be reached fails here, before the API answers; the
 * returned iterator then yields the rest. `signal` stops the upstream call.
 * Silence longer than `idleTimeoutMs` at any point ends it as a timeout.
 */
export async function openReply(
  client: ModelClient,
  request: { model: string; messages: PromptMessage[]; signal: AbortSignal; idleTimeoutMs: number },
): Promise<AsyncIterator<ReplyChunk>> {
  const upstream = new AbortController();
  let timedOut = false;
  // One timer that looks at when the model last spoke, rather than a new
  // timer per chunk: replies can run to thousands of chunks.
  let lastHeard = performance.now();
  let idle: ReturnType<typeof setTimeout> | undefined;
  const watch = (ms: number) => {
    idle = setTimeout(() => {
      const silentFor = performance.now() - lastHeard;
      if (silentFor < request.idleTimeoutMs) return watch(request.idleTimeoutMs - silentFor);
      timedOut = true;
      upstream.abort();
    }, ms);
  };
  const stop = () => upstream.abort();
  request.signal.addEventListener("abort", stop, { once: true });
  watch(request.idleTimeoutMs);

  let sdk: typeof OpenAI | undefined;
  async function* chunks(): AsyncGenerator<ReplyChunk> {
    try {
      const openai = await client.openai();
      sdk = openai.sdk;
      const response = await openai.client.chat.completions.create(
        {
          model: request.model,
          messages: request.messages,
          stream: true,
          stream_options: { include_usage: true },
        },
        { signal: upstream.signal },
      ).asResponse();
      let finished = false;
      // the first half of a surrogate pair split across chunks waits for its second half
      let held = "";
      for await (const batch of completionChunks(response.body!, upstream.signal)) {
        lastHeard = performance.now();
        for (const chunk of batch) {
          if (chunk.usage) {
            const usage = {
              promptTokens: chunk.usage.prompt_tokens,
              completionTokens: chunk.usage.completion_tokens,
            };
            yield { text: "", usage };
          }
          const choice = chunk.choices?.[0];
          if (!choice) continue;
          const raw = held + (choice.delta?.content ?? "");
          const split = !choice.finish_reason && /[\uD800-\uDBFF]$/.test(raw);
          held = split ? raw.slice(-1) : "";
          // what Postgres cannot store is replaced here, so the client sees the reply as it is stored
          const text = storable(split ? raw.slice(0, -1) : raw);
          const finishReason = choice.finish_reason ? toEnding(choice.finish_reason) : undefined;
          finished ||= finishReason !== undefined;
          if (text || finishReason) yield { text, finishReason };
        }
      }
      if (held) yield { text: storable(held) };
      // an aborted stream ends quietly (model_stream.ts): tell a timeout from a stop
      if (request.signal.aborted) return;
      if (timedOut) throw new ModelError("timeout", 504, "The model did not answer in time");
      if (!finished) throw new ModelError("model_error", 502, "The model's reply broke off");
    } catch (error) {
      if (error instanceof ModelError) throw error;
      if (request.signal.aborted) throw error; // the caller stopped it: not the model's fault
      throw describe(error, timedOut, sdk);
    } finally {
      clearTimeout(idle);
      request.signal.removeEventListener("abort", stop);
      upstream.abort(); // closes the upstream connection however we got here
    }
  }

  const iterator = chunks();
  const first = await iterator.next();
  let replayed = false;
  return {
    next: () => {
      if (replayed) return iterator.next();
      replayed = true;
      return Promise.resolve(first);
    },
    return: (value?: unknown) => iterator.return(value as undefined),
  };
}

function toEnding(reason: string): Ending {
  return reason === "length" || reason === "content_filter" || reason === "tool_calls"
    ? reason
    : "stop";
}

function describe(error: unknown, timedOut: boolean, sdk?: typeof OpenAI): ModelError {
  if (timedOut || (sdk && error instanceof sdk.APIConnectionTimeoutError)) {
    return new ModelError("timeout", 504, "The model did not answer in time");
  }
  if (sdk && error instanceof sdk.APIError && error.status) {
    return new ModelError("model_error", 502, `The model answered with HTTP ${error.status}`);
  }
  if (sdk && error instanceof sdk.APIConnectionError) {
    return new ModelError("model_error", 502, "The model could not be reached");
  }
  return new ModelError("model_error", 502, "The model's reply broke off");
}

const TITLE_PROMPT =
  "Write a title for the conversation that starts with the user's message below: " +
  "2 to 6 words, in the language of that message, no quotes, no final punctuation. " +
  "Answer with the title only.";

/** A short title for a conversation, from its first message; throws when the model gives none. */
export async function generateTitle(
  client: ModelClient,
  request: { model: string; firstMessage: string; timeoutMs: number },
): Promise<string> {
  const { client: openai } = await client.openai();
  const completion = await openai.chat.completions.create(
    {
      model: request.model,
      messages: [
        { role: "system", content: TITLE_PROMPT },
        { role: "user", content: request.firstMessage.slice(0, 4000) },
      ],
      max_tokens: 30,
    },
    { timeout: request.timeoutMs, maxRetries: 0 },
  );
  const title = cleanTitle(completion.choices[0]?.message?.content ?? "");
  if (!title) throw new Error("the title model answered with no title");
  return title;
}

/** One line, no wrapping quotes or final period, at most 200 characters (what a title may hold). */
function cleanTitle(text: string): string {
  const line = text.replace(/\s+/g, " ").trim()
    .replace(/^(title:\s*)/i, "")
    .replace(/^["'«“”„`]+|["'»“”`]+$/g, "")
    .replace(/[.。!！]+$/, "")
    .replaceAll("\u0000", "")
    .trim();
  return [...line].slice(0, 200).join("").trim();
}
