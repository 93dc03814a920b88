/** The requests the figures time: a message sent through the API, and the model asked directly. */

export interface Posted {
  status: number;
  /** ms from sending to the first byte of the reply */
  firstByte: number;
  /** ms from sending to the end of the reply */
  total: number;
  bytes: number;
  /** the reply's Server-Timing durations by name, in ms */
  timing: Record<string, number>;
}

/** POSTs one user message to a session and reads the whole reply. */
export async function post(
  base: string,
  headers: Record<string, string>,
  session: string,
  content: string,
  model: string,
): Promise<Posted> {
  const started = performance.now();
  // plain text, as the figures were first measured (the default is the AI SDK data stream)
  const response = await fetch(`${base}/api/sessions/${session}?protocol=text`, {
    method: "POST",
    headers: { ...headers, "content-type": "application/json" },
    body: JSON.stringify({ messages: [{ role: "user", content }], model }),
  });
  let firstByte = NaN;
  const bytes = await drain(response.body!, () => firstByte = performance.now() - started);
  return {
    status: response.status,
    firstByte,
    total: performance.now() - started,
    bytes,
    timing: serverTiming(response.headers.get("server-timing")),
  };
}

/** Streams a reply from the model server without the API: the baseline **direct**. */
export async function direct(
  modelUrl: string,
  model: string,
): Promise<{ firstByte: number; total: number }> {
  const started = performance.now();
  const response = await fetch(`${modelUrl}/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: "Bearer bench" },
    body: JSON.stringify({ model, stream: true, messages: [{ role: "user", content: "hi" }] }),
  });
  let firstByte = NaN;
  await drain(response.body!, () => firstByte = performance.now() - started);
  return { firstByte, total: performance.now() - started };
}

/**
 * Reads a response body to its end into one reused buffer, calling `first` on its first bytes;
 * the bytes read. Deno's default reader of a fetch body allocates 64 KiB for every read, which
 * for a stream of small chunks (the stand-in's 10,000) costs more than the reading itself and
 * would slow the baseline more than the API's reads of fewer, larger writes.
 */
async function drain(body: ReadableStream<Uint8Array>, first: () => void): Promise<number> {
  const reader = body.getReader({ mode: "byob" });
  let buffer = new Uint8Array(64 * 1024);
  let bytes = 0;
  for (let r = await reader.read(buffer); !r.done; r = await reader.read(buffer)) {
    if (bytes === 0) first();
    bytes += r.value.byteLength;
    buffer = new Uint8Array(r.value.buffer);
  }
  return bytes;
}

/** Server-Timing durations by name, in ms. */
function serverTiming(header: string | null): Record<string, number> {
  return Object.fromEntries(
    (header ?? "").split(",").map((entry) => {
      const [name, ...params] = entry.trim().split(";");
      const dur = params.find((p) => p.startsWith("dur="));
      return [name, Number(dur?.slice(4))];
    }),
  );
}
