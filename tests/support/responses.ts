/**
 * An opt-in recorder of every response the test suite's API gives. With
 * `API_RESPONSES_DIR` set (`local/test_suite.ts` sets it for `deno task
 * test`), each response's method, path, status, content type and, for JSON
 * read to its end, its body go to a file of that folder, one JSON line each;
 * `tests/contract/responses_check.ts` then checks them all against the
 * OpenAPI document. Without it, nothing changes.
 */
import { Buffer } from "node:buffer";

export interface RecordedResponse {
  method: string;
  path: string;
  status: number;
  type: string;
  /** the parsed JSON body, in a second entry, once the client has read all of it (and it was not too large to keep) */
  body?: unknown;
  /** the start of a body that says it is JSON and is not */
  notJson?: string;
}

/** Bodies larger than this are checked by status and type only, so big-history tests stay small. */
const MAX_RECORDED_BYTES = 8 * 1024 * 1024;

type Fetch = (request: Request, ...rest: never[]) => Response | Promise<Response>;

export function recordResponses(app: { fetch: Fetch }): void {
  const dir = Deno.env.get("API_RESPONSES_DIR");
  if (!dir) return;
  const file = `${dir}/${crypto.randomUUID()}.jsonl`;
  const write = (entry: RecordedResponse) =>
    Deno.writeTextFileSync(file, JSON.stringify(entry) + "\n", { append: true });
  const original = app.fetch;
  app.fetch = async (request, ...rest) => {
    const response = await original(request, ...rest);
    const entry = {
      method: request.method,
      path: new URL(request.url).pathname,
      status: response.status,
      type: response.headers.get("content-type") ?? "",
    };
    // every response counts, read or not; a JSON body read to its end comes in a second entry
    write(entry);
    if (!/^application\/json/.test(entry.type) || !response.body) return response;
    // pass the body through as the client pulls it, no read-ahead (routes that read a page
    // only when the client has taken the last must behave as without the recorder)
    const reader = response.body.getReader();
    const chunks: Uint8Array[] = [];
    let size = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        const { done, value } = await reader.read();
        if (done) {
          controller.close();
          if (size <= MAX_RECORDED_BYTES) write({ ...entry, ...parse(chunks) });
          return;
        }
        size += value.byteLength;
        if (size <= MAX_RECORDED_BYTES) chunks.push(value);
        controller.enqueue(value);
      },
      cancel(reason) {
        return reader.cancel(reason);
      },
    }, { highWaterMark: 0 });
    return new Response(body, response);
  };
}

function parse(chunks: Uint8Array[]): { body: unknown } | { notJson: string } {
  const text = new TextDecoder().decode(Buffer.concat(chunks));
  try {
    return { body: JSON.parse(text) };
  } catch {
    return { notJson: text.slice(0, 200) };
  }
}
