/**
 * A stand-in for the OpenAI Chat Completions API, for tests and offline dev:
 * it speaks the real streaming wire format (SSE `data:` lines, a final
 * `data: [DONE]`), so the real `openai` SDK path runs. What it answers is
 * scripted per request; by default a deterministic reply, word by word.
 * Local tooling only: the edge function never imports this.
 */

export interface ChatRequest {
  model: string;
  messages: { role: string; content: string }[];
  stream?: boolean;
  stream_options?: { include_usage?: boolean };
}

/** What the stand-in does with one request. */
export interface Script {
  /** the reply, as the chunks it streams */
  chunks?: string[];
  delayMs?: number;
  finishReason?: string;
  /** report this usage instead of counting words */
  usage?: { prompt_tokens: number; completion_tokens: number };
  /** answer with this HTTP error instead of a stream */
  status?: number;
  /** the stream's end waits for this (a test's gate on something the server does meanwhile) */
  endAfter?: Promise<unknown>;
  /** after this many chunks: "die" drops the connection, "malformed" sends garbage, "hang" goes silent */
  fault?: { after: number; kind: "die" | "malformed" | "hang" };
}

export interface StandInModel {
  /** base URL for the SDK, ending in /v1 */
  baseURL: string;
  /** every request body received, in order */
  requests: ChatRequest[];
  /** streams currently open, and streams the client abandoned before they ended */
  openStreams: number;
  abandonedStreams: number;
  /** when (`performance.now()`) each abandoned stream was closed by its caller, oldest first */
  abandonedAt: readonly number[];
  /** replaces the script for the requests that follow */
  script(next: (request: ChatRequest) => Script): void;
  close(): Promise<void>;
}

export const OFFLINE_MODEL = "offline-stand-in";

/** A deterministic reply that quotes the question, so a reader can tell it is not a real model. */
export function defaultReply(request: ChatRequest): Script {
  const question = request.messages.findLast((m) => m.role === "user")?.content ?? "";
  // asked for a title (not streamed): the question's first words
  if (!request.stream) return { chunks: [question.split(/\s+/).slice(0, 5).join(" ")] };
  const quoted = question.length > 60 ? `${question.slice(0, 57)}...` : question;
  const text = `This is the offline stand-in model (no OPENAI_API_KEY is set). ` +
    `You said: "${quoted}". It answers every message the same way, word by word.`;
  return { chunks: text.split(/(?<= )/), delayMs: 15 };
}

export function startStandInModel(
  opts: { port?: number; script?: (request: ChatRequest) => Script } = {},
): Promise<StandInModel> {
  let scriptFor = opts.script ?? defaultReply;
  const requests: ChatRequest[] = [];
  const state: StreamState = { openStreams: 0, abandonedStreams: 0, abandonedAt: [] };
  const ready = Promise.withResolvers<Deno.NetAddr>();

  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: opts.port ?? 0,
    onListen: (addr) => ready.resolve(addr as Deno.NetAddr),
  }, async (req) => {
    const url = new URL(req.url);
    if (req.method === "GET" && url.pathname.endsWith("/models")) {
      return Response.json({
        object: "list",
        data: [{ id: OFFLINE_MODEL, object: "model", owned_by: "local" }],
      });
    }
    if (req.method !== "POST" || !url.pathname.endsWith("/chat/completions")) {
      return Response.json({ error: { message: "not found" } }, { status: 404 });
    }
    const request = await req.json() as ChatRequest;
    requests.push(request);
    const script = scriptFor(request);
    if (script.status) {
      return Response.json(
        { error: { message: `stand-in error ${script.status}`, type: "stand_in", code: null } },
        { status: script.status },
      );
    }
    if (!request.stream) return await completeReply(request, script);
    return new Response(streamReply(request, script, state), {
      headers: { "content-type": "text/event-stream", "cache-control": "no-cache" },
    });
  });

  return ready.promise.then((addr) => ({
    baseURL: `http://127.0.0.1:${addr.port}/v1`,
    requests,
    get openStreams() {
      return state.openStreams;
    },
    get abandonedStreams() {
      return state.abandonedStreams;
    },
    abandonedAt: state.abandonedAt,
    script(next) {
      scriptFor = next;
    },
    close: () => server.shutdown(),
  }));
}

/** A whole (non-streamed) completion, as the titles are asked for. */
async function completeReply(request: ChatRequest, script: Script): Promise<Response> {
  if (script.delayMs) await new Promise((resolve) => setTimeout(resolve, script.delayMs));
  const chunks = script.chunks ?? [];
  return Response.json({
    id: `chatcmpl-${crypto.randomUUID()}`,
    object: "chat.completion",
    created: Math.floor(Date.now() / 1000),
    model: request.model,
    choices: [{
      index: 0,
      message: { role: "assistant", content: chunks.join("") },
      finish_reason: script.finishReason ?? "stop",
    }],
    usage: usageOf(request, chunks),
  });
}

/** Token counts in the shape OpenAI reports them: words stand in for tokens. */
function usageOf(request: ChatRequest, chunks: string[]) {
  const prompt = request.messages.reduce(
    (n, m) => n + m.content.split(/\s+/).filter(Boolean).length,
    0,
  );
  return {
    prompt_tokens: prompt,
    completion_tokens: chunks.length,
    total_tokens: prompt + chunks.length,
  };
}

/** The streams' counts, shared by every request. */
interface StreamState {
  openStreams: number;
  abandonedStreams: number;
  abandonedAt: number[];
}

function streamReply(
  request: ChatRequest,
  script: Script,
  state: StreamState,
): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder();
  const id = `chatcmpl-${crypto.randomUUID()}`;
  const created = Math.floor(Date.now() / 1000);
  const data = (value: unknown) => bytes.encode(`data: ${JSON.stringify(value)}\n\n`);
  const event = (choices: unknown[], extra: Record<string, unknown> = {}) =>
    data({ id, object: "chat.completion.chunk", created, model: request.model, choices, ...extra });
  const chunk = (delta: Record<string, unknown>, finishReason: string | null = null) =>
    event([{ index: 0, delta, finish_reason: finishReason }]);
  const chunks = script.chunks ?? [];

  // Pull-based: each step is written only once the previous one was taken,
  // so a fault happens after exactly `fault.after` chunks reached the wire.
  let step = -1; // -1: the opening role chunk; 0..n-1: content; n: the end
  let ended = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const end = () => {
    if (!ended) state.openStreams--;
    ended = true;
  };
  state.openStreams++;

  return new ReadableStream({
    async pull(controller) {
      if (step === -1) {
        step++;
        return controller.enqueue(chunk({ role: "assistant", content: "" }));
      }
      if (script.fault && step === script.fault.after) {
        const kind = script.fault.kind;
        if (kind === "hang") return await new Promise<void>(() => {}); // never another byte
        if (kind === "die") {
          // let what was sent reach the client first: some servers (Deno 2.1's) pull ahead of
          // the socket, and an error before the headers are out drops the whole response
          await new Promise((resolve) => timer = setTimeout(resolve, 20));
          end();
          return controller.error(new Error("stand-in model died mid-stream"));
        }
        script = { ...script, fault: undefined };
        return controller.enqueue(bytes.encode("data: {this is not json\n\n"));
      }
      if (step < chunks.length) {
        if (script.delayMs) {
          await new Promise((resolve) => timer = setTimeout(resolve, script.delayMs));
        }
        if (ended) return;
        return controller.enqueue(chunk({ content: chunks[step++] }));
      }
      if (script.endAfter) await script.endAfter;
      if (ended) return;
      controller.enqueue(chunk({}, script.finishReason ?? "stop"));
      if (request.stream_options?.include_usage) {
        controller.enqueue(event([], { usage: script.usage ?? usageOf(request, chunks) }));
      }
      controller.enqueue(bytes.encode("data: [DONE]\n\n"));
      end();
      controller.close();
    },
    cancel() {
      clearTimeout(timer);
      if (ended) return;
      state.abandonedStreams++;
      state.abandonedAt.push(performance.now());
      end();
    },
  }, { highWaterMark: 0 });
}

/**
 * Scripts chosen by the requested model's name, for a stand-in running in a
 * process of its own (benchmarks): `chunks-N` streams N one-word chunks at
 * once, `slow-N-MS` streams N chunks MS milliseconds apart, `slow-N-MS-W` N
 * chunks of W words each (words `w0 w1 ...` throughout), `words-N-MS`
 * streams N chunks of five characters (four pseudo-random letters and a
 * space: text that compresses about as little as prose, so what Postgres
 * stores is the text's own size) MS milliseconds apart; any other name gets
 * the default reply.
 */
export function scriptByModelName(request: ChatRequest): Script {
  const fast = request.model.match(/^chunks-(\d+)$/);
  if (fast) return { chunks: Array.from({ length: Number(fast[1]) }, (_, i) => `w${i} `) };
  const grouped = request.model.match(/^slow-(\d+)-(\d+)-(\d+)$/);
  if (grouped) {
    const words = Number(grouped[3]);
    return {
      chunks: Array.from(
        { length: Number(grouped[1]) },
        (_, i) => Array.from({ length: words }, (_, w) => `w${i * words + w} `).join(""),
      ),
      delayMs: Number(grouped[2]),
    };
  }
  const slow = request.model.match(/^slow-(\d+)-(\d+)$/);
  if (slow) {
    return {
      chunks: Array.from({ length: Number(slow[1]) }, (_, i) => `w${i} `),
      delayMs: Number(slow[2]),
    };
  }
  const words = request.model.match(/^words-(\d+)-(\d+)$/);
  if (words) return { chunks: randomWords(Number(words[1])), delayMs: Number(words[2]) };
  return defaultReply(request);
}

/** `count` words of four letters and a space, the same ones every time (a fixed seed). */
function randomWords(count: number): string[] {
  let seed = 0x2545f491;
  const letter = () => {
    // xorshift32: reproducible, and enough entropy that the text does not compress much
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return String.fromCharCode(97 + ((seed >>> 0) % 26));
  };
  return Array.from({ length: count }, () => `${letter()}${letter()}${letter()}${letter()} `);
}

if (import.meta.main) {
  const port = Number(Deno.args[0] ?? 0);
  const model = await startStandInModel({ port, script: scriptByModelName });
  console.log(model.baseURL);
}
