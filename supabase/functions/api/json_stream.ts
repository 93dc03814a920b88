/**
 * A JSON array streamed a page at a time, pull-based: the next page is read
 * only once the client has taken the last one, so however long the array,
 * the process holds about one page of it.
 */

/** A page of an array: its elements as JSON, comma-joined bytes (null: the array has ended). */
export interface JsonPage<P> {
  elements: Uint8Array | null;
  /** where the next page starts */
  next: P;
  /** whether anything may follow this page (false: the array ends with it, no further read) */
  more: boolean;
}

export function streamJsonArray<P>(
  first: JsonPage<P>,
  readAfter: (position: P) => Promise<JsonPage<P>>,
): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder();
  let page: JsonPage<P> | undefined;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const opening = page === undefined;
      page = opening ? first : await readAfter(page!.next);
      if (page.elements === null) {
        controller.enqueue(bytes.encode(opening ? "[]" : "]"));
        controller.close();
        return;
      }
      controller.enqueue(bytes.encode(opening ? "[" : ","));
      controller.enqueue(page.elements);
      if (!page.more) {
        controller.enqueue(bytes.encode("]"));
        controller.close();
      }
    },
  }, { highWaterMark: 0 });
}

/** An array of one page's elements (comma-joined JSON, null: none), whole: `[` + elements + `]`. */
export function jsonArray(elements: Uint8Array | null) {
  if (elements === null) return new Uint8Array([0x5b, 0x5d]);
  const array = new Uint8Array(elements.length + 2);
  array[0] = 0x5b;
  array.set(elements, 1);
  array[elements.length + 1] = 0x5d;
  return array;
}
