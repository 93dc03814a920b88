/**
 * The model's streamed body is read as the SDK's stream read it (server-sent events: `data:`
 * lines joined, `[DONE]` ends it, an error event is the model failing, any line end), however the
 * network cuts it into reads, and into a buffer that stays small while the model is slow.
 */
import assert from "node:assert/strict";
import {
  type CompletionChunk,
  completionChunks,
  StreamedError,
} from "../../supabase/functions/api/model_stream.ts";

const chunk = (content: string) => ({
  id: "c",
  object: "chat.completion.chunk",
  created: 1,
  model: "m",
  choices: [{ index: 0, delta: { content }, finish_reason: null }],
});

/** A fetch-like byte stream that hands out `parts` one read at a time. */
function body(parts: (string | Uint8Array)[]): ReadableStream<Uint8Array> {
  const bytes = parts.map((p) => typeof p === "string" ? new TextEncoder().encode(p) : p);
  return new ReadableStream({
    type: "bytes",
    pull(controller) {
      const next = bytes.shift();
      if (next) return controller.enqueue(next);
      controller.close();
      controller.byobRequest?.respond(0); // a BYOB read waiting is answered with the end
    },
  });
}

async function read(parts: (string | Uint8Array)[], signal = new AbortController().signal) {
  const batches: CompletionChunk[][] = [];
  for await (const batch of completionChunks(body(parts), signal)) batches.push(batch);
  return batches;
}

const contents = (batches: CompletionChunk[][]) =>
  batches.flat().map((c) => c.choices[0]?.delta.content);

Deno.test("the events of one read come as one batch, and [DONE] ends the stream", async () => {
  const events = ["a", "b", "c"].map((t) => `data: ${JSON.stringify(chunk(t))}\n\n`).join("");
  const batches = await read([
    events + "data: [DONE]\n\n",
    `data: ${JSON.stringify(chunk("x"))}\n\n`,
  ]);
  assert.deepEqual(batches.map((b) => b.length), [3]);
  assert.deepEqual(contents(batches), ["a", "b", "c"]);
});

Deno.test("an event and a character cut across reads are read whole", async () => {
  const event = new TextEncoder().encode(`data: ${JSON.stringify(chunk("héllo 👋"))}\n\n`);
  const parts = Array.from({ length: event.length }, (_, i) => event.slice(i, i + 1));
  assert.deepEqual(contents(await read(parts)), ["héllo 👋"]);
});

Deno.test("CRLF and CR line ends, comments, other fields and multi-line data are read as SSE says", async () => {
  const json = JSON.stringify(chunk("crlf"));
  const batches = await read([
    `: a comment\r\nid: 1\r\ndata: ${json}\r\n\r\n`,
    `data:${JSON.stringify(chunk("no space"))}\r\r`,
    `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m",\n`,
    `data: "choices":[{"index":0,"delta":{"content":"two lines"},"finish_reason":null}]}\n\n`,
    `: keep-alive\n\n`,
  ]);
  assert.deepEqual(contents(batches), ["crlf", "no space", "two lines"]);
});

Deno.test("an error event, a chunk carrying an error or malformed JSON is the model failing", async () => {
  await assert.rejects(read([`event: error\ndata: {"message":"overloaded"}\n\n`]), StreamedError);
  await assert.rejects(read([`data: {"error":{"message":"overloaded"}}\n\n`]), StreamedError);
  await assert.rejects(read([`data: {"choices": [\n\n`]), StreamedError);
  // the chunks before a broken event, in the same read, are still handed on first
  const stream = completionChunks(
    body([`data: ${JSON.stringify(chunk("kept"))}\n\ndata: {"choices": [\n\n`]),
    new AbortController().signal,
  );
  assert.deepEqual(contents([(await stream.next()).value as CompletionChunk[]]), ["kept"]);
  await assert.rejects(stream.next(), StreamedError);
});

Deno.test("a stream aborted on purpose ends quietly; a broken one fails", async () => {
  const aborted = new AbortController();
  const failing = (signal: AbortSignal) => {
    const stream = new ReadableStream<Uint8Array>({
      type: "bytes",
      pull: (controller) => controller.error(new Error("connection reset")),
    });
    return completionChunks(stream, signal);
  };
  aborted.abort();
  assert.deepEqual(await failing(aborted.signal).next(), { done: true, value: undefined });
  await assert.rejects(failing(new AbortController().signal).next(), /connection reset/);
});

Deno.test("a slow stream is read into a small buffer; a burst into larger ones", async () => {
  const sizes: number[] = [];
  const event = `data: ${JSON.stringify(chunk("w"))}\n\n`;
  const burst = event.repeat(Math.ceil(200_000 / event.length));
  const parts = [event, event, burst, event, event, event, event, "data: [DONE]\n\n"];
  const stream = new ReadableStream({
    type: "bytes",
    // what a network read does: fills as much of the reader's buffer as it has
    pull(controller: ReadableByteStreamController) {
      const request = controller.byobRequest!;
      const view = request.view!;
      sizes.push(view.byteLength);
      const next = parts[0];
      if (next === undefined) {
        controller.close();
        return request.respond(0);
      }
      const bytes = new TextEncoder().encode(next);
      const n = Math.min(bytes.length, view.byteLength);
      new Uint8Array(view.buffer, view.byteOffset, n).set(bytes.subarray(0, n));
      parts[0] = new TextDecoder().decode(bytes.subarray(n));
      if (!parts[0]) parts.shift();
      request.respond(n);
    },
  });
  let count = 0;
  const signal = new AbortController().signal;
  for await (const batch of completionChunks(stream as ReadableStream<Uint8Array>, signal)) {
    count += batch.length;
  }
  assert.equal(count, 2 + Math.ceil(200_000 / event.length) + 4);
  assert.equal(sizes[0], 4096, "reads start at 4 KiB");
  assert.equal(Math.max(...sizes), 65536, "a burst grows the buffer to 64 KiB");
  assert.equal(sizes.at(-1), 4096, "slow reads take it back to 4 KiB");
});

Deno.test("an event that never ends is refused past 1 Mi characters, after the events before it", async () => {
  const good = `data: ${JSON.stringify(chunk("kept"))}\n\n`;
  const endless = Array.from({ length: 300 }, () => "x".repeat(4096)); // 1.2 Mi, no line end
  const batches: CompletionChunk[][] = [];
  await assert.rejects(
    async () => {
      for await (const batch of completionChunks(body([good, "data: ", ...endless]), signal())) {
        batches.push(batch);
      }
    },
    (error) =>
      error instanceof StreamedError && /longer than 1048576 characters/.test(error.message),
  );
  assert.deepEqual(contents(batches), ["kept"]);
});

Deno.test("an event cut into many reads is read whole once it ends", async () => {
  const long = "y".repeat(100_000);
  const event = `data: ${JSON.stringify(chunk(long))}\r\n\r\n`;
  const parts = event.match(/[^]{1,1000}/g)!; // cut everywhere, the end's CR LF CR LF across reads
  const batches = await read([...parts, "data: [DONE]\n\n"]);
  assert.deepEqual(contents(batches), [long]);
});

function signal() {
  return new AbortController().signal;
}
