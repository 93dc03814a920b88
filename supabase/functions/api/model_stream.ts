/**
 * The chunks of a streamed chat completion, read from its server-sent events.
 *
 * Why not the SDK's own stream: it passes each chunk through five async
 * generators (bytes, lines, events, JSON, chunks), several promises per chunk,
 * and a 10,000-chunk reply spent more time there than in reading it (bench
 * figure "relay"). Here the events of one network read are parsed in one
 * synchronous pass and handed on together. The SDK still makes the request
 * (its headers, retries, errors of a non-2xx answer); this reads only its
 * successful body, as the SDK's stream does: `data:` lines joined, `[DONE]`
 * ends it, an `error` event or a chunk carrying `error` is the model failing,
 * and a stream aborted on purpose ends quietly.
 *
 * The body is read into a buffer of its own, sized to what arrives. Deno's
 * fetch body is a byte stream whose default reader allocates 64 KiB for each
 * read, and a streamed reply has a read pending for its whole life while the
 * model sends a few bytes at a time: 64 KiB held per open reply, more than
 * everything else a reply keeps (bench figure "streams"), and 64 KiB allocated
 * for every small read of a fast one. A BYOB reader fills one 4 KiB buffer,
 * read into again and again, doubled while reads fill it (a burst is still
 * read in few large reads) and halved when they do not.
 */
import type OpenAI from "openai";

export type CompletionChunk = OpenAI.ChatCompletionChunk;

/** A server-sent event's data carried an error, as the SDK's stream reports it. */
export class StreamedError extends Error {}

/** The completion's chunks, one batch per network read; stops at `[DONE]` or the body's end. */
export async function* completionChunks(
  body: ReadableStream<Uint8Array>,
  signal: AbortSignal,
): AsyncGenerator<CompletionChunk[]> {
  const text = new TextDecoder();
  const read = reads(body);
  // the text after the last event end, kept as the pieces read (joined only once an event ends:
  // appending to one string and searching it would copy a long event at every read)
  let unended: string[] = [];
  let unendedLength = 0;
  let tail = ""; // its last 3 characters: an event end can straddle two reads
  try {
    for (;;) {
      let bytes: Uint8Array | undefined;
      try {
        bytes = await read.next();
      } catch (error) {
        if (signal.aborted) return; // stopped on purpose: the caller tells why
        throw error;
      }
      if (!bytes) return;
      const piece = text.decode(bytes, { stream: true });
      const probe = tail + piece;
      tail = probe.slice(-3);
      if (!EVENT_END.test(probe)) {
        unended.push(piece);
        unendedLength += piece.length;
        // a model's event is a few hundred bytes: one without end is a broken or hostile server,
        // not kept until the idle timeout
        if (unendedLength > MAX_EVENT_CHARS) {
          throw new StreamedError(
            `the model sent an event longer than ${MAX_EVENT_CHARS} characters`,
          );
        }
        continue;
      }
      unended.push(piece);
      const events = unended.join("").split(EVENT_END);
      const rest = events.pop()!;
      unended = [rest];
      unendedLength = rest.length;
      tail = rest.slice(-3);
      const batch: CompletionChunk[] = [];
      for (const event of events) {
        let data: ReturnType<typeof dataOf>;
        try {
          data = dataOf(event);
        } catch (error) {
          if (batch.length) yield batch; // what came before the broken event is the reply's
          throw error;
        }
        if (data === undefined) continue;
        if (data.done) {
          if (batch.length) yield batch;
          return;
        }
        batch.push(data.chunk);
      }
      if (batch.length) yield batch;
    }
  } finally {
    read.release();
  }
}

/** Bytes a body is read into at a time: from the least, doubled while reads fill it. */
const READ_BYTES = { least: 4096, most: 65536 };

/** The body's bytes, read by read (each valid until the next); undefined at its end. */
function reads(body: ReadableStream<Uint8Array>) {
  let byob: ReadableStreamBYOBReader | undefined;
  try {
    byob = body.getReader({ mode: "byob" });
  } catch {
    // not a byte stream: read as it comes
    const reader = body.getReader();
    return {
      next: async () => (await reader.read()).value,
      release: () => reader.releaseLock(),
    };
  }
  const reader = byob;
  let size = READ_BYTES.least;
  let buffer = new Uint8Array(size);
  return {
    async next(): Promise<Uint8Array | undefined> {
      const { done, value } = await reader.read(buffer);
      if (done || !value) return undefined;
      const full = value.byteLength === size;
      if (full && size < READ_BYTES.most) size *= 2;
      else if (value.byteLength < size / 4 && size > READ_BYTES.least) size /= 2;
      // the buffer comes back with the read: read into it again, or a new one of the new size
      buffer = size === value.buffer.byteLength
        ? new Uint8Array(value.buffer)
        : new Uint8Array(size);
      return value;
    },
    release: () => reader.releaseLock(),
  };
}

/** An event ends with a blank line; SSE allows CRLF, LF or CR line ends. */
const EVENT_END = /\r\n\r\n|\n\n|\r\r/;

/** The longest event kept while waiting for its end (1 Mi characters). */
const MAX_EVENT_CHARS = 2 ** 20;
const LINE_END = /\r\n|\r|\n/;

function dataOf(
  event: string,
): { done: true } | { done: false; chunk: CompletionChunk } | undefined {
  let data: string | undefined;
  let name: string | undefined;
  // the usual event is one `data: {...}` line: no split
  const lines = event.startsWith("data: ") && !LINE_END.test(event)
    ? [event]
    : event.split(LINE_END);
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue; // a comment (`: ...`), or a line without a field
    const field = line.slice(0, colon);
    const value = line.slice(line[colon + 1] === " " ? colon + 2 : colon + 1);
    if (field === "data") data = data === undefined ? value : `${data}\n${value}`;
    else if (field === "event") name = value;
  }
  if (data === undefined) return undefined;
  if (data === "[DONE]") return { done: true };
  let parsed: CompletionChunk & { error?: unknown };
  try {
    parsed = JSON.parse(data);
  } catch {
    throw new StreamedError("malformed server-sent event JSON");
  }
  if (name === "error" || parsed?.error) throw new StreamedError("the model streamed an error");
  return { done: false, chunk: parsed };
}
