/**
 * The API (the function's own `index.ts`) with a second listener that reports the memory it
 * holds once garbage is collected: `GET http://127.0.0.1:$HEAP_PROBE_PORT/` answers
 * `{ heapUsed, external, rss }` in bytes, measured right after a full collection. Run with
 * `--v8-flags=--expose-gc` (bench figure "streams").
 *
 * Why: the process's resident memory also counts garbage V8 has not yet collected, which a
 * process with Deno's default heap limit lets grow far past what it keeps alive; the Edge
 * Runtime's 256 MB isolate collects it before it would count, so what a live reply costs
 * there is what stays after a collection: heap and external (ArrayBuffer) memory.
 */
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("run with --v8-flags=--expose-gc");

Deno.serve({ port: Number(Deno.env.get("HEAP_PROBE_PORT")), onListen: () => {} }, () => {
  gc();
  const { heapUsed, external, rss } = Deno.memoryUsage();
  return Response.json({ heapUsed, external, rss });
});

await import("../supabase/functions/api/index.ts");
