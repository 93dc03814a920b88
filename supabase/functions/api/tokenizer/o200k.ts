/**
 * Token counts in o200k_base, the encoding of the GPT-4o family: the same counts as tiktoken and
 * gpt-tokenizer (tests/turn/tokenizer.test.ts compares them on varied text), with bounded work per
 * request.
 *
 * Why hand-written (about 150 lines) instead of a tokenizer package:
 * - Size. The Edge Runtime packs every file of every npm package the function imports, and every
 *   tokenizer on npm ships all encodings in several builds (brotli q6: gpt-tokenizer 7.0 MB,
 *   ai-tokenizer 8.3 MB, js-tiktoken 4.3 MB, tiktoken/WASM 3.6 MB; the deploy limit is 5 MB for
 *   the whole function). The o200k ranks alone, vendored unchanged from js-tiktoken
 *   (local/vendor_o200k.ts), are 1.0 MB.
 * - Bounded work. Their byte-pair merge is quadratic in the length of a pre-token, so one long
 *   run without spaces (120 KB of one character: about 6 s) blocks the instance. Here long
 *   pre-tokens merge with a heap (O(n log n), the same merge order: lowest rank first, leftmost
 *   on ties), the text is counted in slices of at most SLICE characters that yield to the event
 *   loop, and the ranks load on first use, not at start-up.
 * Special tokens (`<|endoftext|>`...) are counted as the plain text they are in a message, which
 * is how the API tokenizes message content.
 */
import { LRUCache } from "lru-cache";

/** The longest token of o200k_base, in UTF-8 bytes (128 spaces); the tests check it. */
export const MAX_TOKEN_BYTES = 128;

/**
 * The fewest tokens a text can take, from its length alone and without reading it: no token is
 * longer than MAX_TOKEN_BYTES, and every UTF-16 code unit is at least one UTF-8 byte.
 */
export function fewestTokens(text: string): number {
  return Math.ceil(text.length / MAX_TOKEN_BYTES);
}

/**
 * Counting runs slice by slice, each at most this many UTF-16 code units; a slice ends where the
 * pre-tokenizer always splits (see safeEnd), so counts are exact. Only a run of more than SLICE
 * characters of whitespace, or of letters and punctuation with no space or digit among them (no
 * language writes that; an attack does), is cut blindly: that run is then counted as the sum of
 * its parts. That is not provably within a bound (byte-pair merges are not prefix-stable); on
 * the runs tests/turn/tokenizer.test.ts tries, it counts 0 to 2 tokens more per cut, never fewer.
 */
const SLICE = 2048;
/** Counting yields to the event loop after this much work, so other requests keep flowing. */
const YIELD_AFTER_MS = 4;
/** Below this many bytes the simple quadratic merge is faster than the heap. */
const SMALL_PIECE = 64;

interface Encoding {
  pattern: RegExp;
  ranks: Map<string, number>;
}

let encoding: Promise<Encoding> | undefined;

/**
 * The ranks load on first use, about 1/10 s of CPU that start-up does not pay, built in batches
 * that yield to the event loop like counting does.
 */
function loadEncoding(): Promise<Encoding> {
  encoding ??= import("./o200k_base.json", { with: { type: "json" } }).then(
    async ({ default: data }) => {
      const ranks = new Map<string, number>();
      // js-tiktoken's compact format: lines of "! <first rank> <base64 token> <base64 token> ...",
      // consecutive ranks (here one line of 200k tokens); atob gives a token's bytes, one char
      // per byte. Walked with indexOf rather than split, so no step is longer than a batch.
      const text: string = data.bpe_ranks;
      let lastYield = performance.now();
      let rank = 0;
      let newline = -1;
      for (let at = 0, count = 0; at < text.length; count++) {
        if (newline < at) newline = text.indexOf("\n", at) >>> 0; // none: 2^32 - 1, past the end
        let end = text.indexOf(" ", at);
        if (end < 0 || newline < end) end = Math.min(newline, text.length);
        const field = text.slice(at, end);
        if (field === "!") rank = -1; // the next field is the line's first rank
        else if (rank === -1) rank = Number(field);
        else if (field) ranks.set(byteKey(atob(field)), rank++);
        at = end + 1;
        if (count % 1024 === 0 && performance.now() - lastYield > YIELD_AFTER_MS) {
          await yieldToEventLoop();
          lastYield = performance.now();
        }
      }
      return { pattern: new RegExp(data.pat_str, "gu"), ranks };
    },
  );
  return encoding;
}

function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/** Long pieces are costly to merge and, in an attack, repeat: their counts are remembered. */
const pieceCounts = new LRUCache<string, number>({ max: 512 });

/**
 * The number of o200k_base tokens in `text`. Its work grows as n log n with the text at worst,
 * and it yields to the event loop every few milliseconds, so a huge text delays nothing else.
 */
export async function countTokens(text: string): Promise<number> {
  return (await countTokensUpTo(text, Infinity)).count;
}

/**
 * Counts as countTokens does, but stops soon after the count passes `limit` (at the end of that
 * slice): then `complete` is false and `count`, above `limit`, is only a lower bound. A text
 * that fits in one slice is always counted whole.
 */
export async function countTokensUpTo(
  text: string,
  limit: number,
): Promise<{ count: number; complete: boolean }> {
  const { pattern, ranks } = await loadEncoding();
  let count = 0;
  let lastYield = performance.now();
  for (let start = 0; start < text.length;) {
    if (count > limit) return { count, complete: false };
    const end = safeEnd(text, start);
    const slice = text.slice(start, end);
    for (const match of slice.matchAll(pattern)) count += pieceTokens(match[0], ranks);
    start = end;
    if (performance.now() - lastYield > YIELD_AFTER_MS) {
      await yieldToEventLoop();
      lastYield = performance.now();
    }
  }
  return { count, complete: true };
}

const SPACE = 1, HORIZONTAL_SPACE = 2, DIGIT = 4, LOW_SURROGATE = 8, KNOWN = 128;
/** Each UTF-16 unit's classes, looked up once: safeEnd asks about thousands of characters. */
const classes = new Uint8Array(0x10000);

function classOf(text: string, at: number): number {
  const code = text.charCodeAt(at);
  let found = classes[code]!;
  if (found === 0) {
    const char = text[at]!;
    found = KNOWN | (/^\s$/u.test(char) ? SPACE : 0) |
      (/^[^\S\r\n]$/u.test(char) ? HORIZONTAL_SPACE : 0) | (/^\p{N}$/u.test(char) ? DIGIT : 0) |
      (code >= 0xdc00 && code <= 0xdfff ? LOW_SURROGATE : 0);
    classes[code] = found;
  }
  return found;
}

/**
 * Where the slice starting at `start` ends: the last position within SLICE characters before
 * which the o200k pattern always ends a pre-token, so slices pre-tokenize as the whole text
 * does. From the pattern's alternatives: no pre-token contains a non-space followed by a space
 * other than a line break, nor a digit next to a non-digit; and a slice never ends in a space,
 * whose pre-token depends on what follows (`\s+(?!\S)`). Surrogate pairs are never parted.
 */
function safeEnd(text: string, start: number): number {
  const limit = start + SLICE;
  if (limit >= text.length) return text.length;
  for (let at = limit; at > start; at--) {
    const before = classOf(text, at - 1);
    const after = classOf(text, at);
    // a slice ending in a space would see "end of text" where the whole text has a next char
    if ((before | after) & LOW_SURROGATE || before & SPACE) continue;
    if (after & HORIZONTAL_SPACE || (before & DIGIT) !== (after & DIGIT)) return at;
  }
  // a run of digits pre-tokenizes in threes from its start: cut it where a three ends
  if (classOf(text, limit - 1) & classOf(text, limit) & DIGIT) {
    let run = limit - 1;
    while (run > start && classOf(text, run - 1) & DIGIT) run--;
    return run + 3 * Math.floor((limit - run) / 3);
  }
  // no safe place: cut blindly, but never inside a surrogate pair
  return classOf(text, limit) & LOW_SURROGATE ? limit - 1 : limit;
}

/** Tokens of one pre-token: byte-pair merges over its UTF-8 bytes. */
function pieceTokens(piece: string, ranks: Map<string, number>): number {
  const cached = piece.length > SMALL_PIECE ? pieceCounts.get(piece) : undefined;
  if (cached !== undefined) return cached;
  const bytes = utf8Key(piece);
  if (bytes.length <= 1) return bytes.length;
  if (ranks.has(bytes)) return 1;
  if (bytes.length <= SMALL_PIECE) return mergeSmall(bytes, ranks);
  const count = mergeWithHeap(bytes, ranks);
  pieceCounts.set(piece, count);
  return count;
}

const utf8 = new TextEncoder();
/**
 * Byte strings are keyed by decoding the bytes as windows-1252, natively and fast: that maps the
 * 256 byte values to 256 distinct characters, one per byte, so slicing the key slices the bytes.
 * It differs from latin1 only for bytes 0x80-0x9f, which byteKey maps the same way.
 */
const windows1252 = new TextDecoder("windows-1252");

/** A string's UTF-8 bytes as a key of the ranks map. */
function utf8Key(text: string): string {
  // deno-lint-ignore no-control-regex
  return /^[\x00-\x7f]*$/.test(text) ? text : windows1252.decode(utf8.encode(text));
}

/** A byte string (one char per byte, as atob returns) as a key of the ranks map. */
function byteKey(bytes: string): string {
  return /[\x80-\x9f]/.test(bytes)
    ? bytes.replace(/[\x80-\x9f]/g, (c) => windows1252.decode(new Uint8Array([c.charCodeAt(0)])))
    : bytes;
}

/** tiktoken's merge: repeatedly join the adjacent pair of lowest rank (leftmost on ties). */
function mergeSmall(bytes: string, ranks: Map<string, number>): number {
  const starts: number[] = [];
  for (let i = 0; i <= bytes.length; i++) starts.push(i);
  const pairRank = (i: number) =>
    i + 2 < starts.length ? ranks.get(bytes.slice(starts[i], starts[i + 2])) ?? Infinity : Infinity;
  const pairs: number[] = [];
  for (let i = 0; i < bytes.length - 1; i++) pairs.push(pairRank(i));
  while (pairs.length > 0) {
    let best = 0;
    for (let i = 1; i < pairs.length; i++) if (pairs[i]! < pairs[best]!) best = i;
    if (pairs[best] === Infinity) break;
    starts.splice(best + 1, 1);
    pairs.splice(best, 1);
    if (best < pairs.length) pairs[best] = pairRank(best);
    if (best > 0) pairs[best - 1] = pairRank(best - 1);
  }
  return starts.length - 1;
}

/**
 * The same merge in O(n log n): parts form a linked list keyed by their first byte, candidate
 * pairs wait in a min-heap ordered by (rank, position); a popped pair that no longer exists as
 * it was is skipped. Ordering by position is ordering left to right, so ties break as above.
 */
function mergeWithHeap(bytes: string, ranks: Map<string, number>): number {
  const n = bytes.length;
  const next = new Int32Array(n + 1);
  const prev = new Int32Array(n + 1);
  for (let i = 0; i <= n; i++) {
    next[i] = i + 1;
    prev[i] = i - 1;
  }
  const alive = new Uint8Array(n).fill(1);
  // the rank of the pair each part starts, as last offered: a popped pair is current if it matches
  const pairRank = new Int32Array(n).fill(-1);
  // rank and position in one number: rank < 2^18, position < 2^32
  const POSITION = 2 ** 32;
  const heap = new MinHeap();
  const offer = (start: number) => {
    const middle = next[start]!;
    const rank = middle < n ? ranks.get(bytes.slice(start, next[middle])) : undefined;
    pairRank[start] = rank ?? -1;
    if (rank !== undefined) heap.push(rank * POSITION + start);
  };
  for (let i = 0; i < n - 1; i++) offer(i);
  let parts = n;
  while (heap.size > 0) {
    const key = heap.pop();
    const start = key % POSITION;
    // a merge always lengthens the pair a part starts, so an equal rank is the same pair
    if (!alive[start] || pairRank[start] !== (key - start) / POSITION) continue;
    const middle = next[start]!;
    alive[middle] = 0;
    next[start] = next[middle]!;
    prev[next[middle]!] = start;
    parts--;
    offer(start);
    if (start > 0) offer(prev[start]!);
  }
  return parts;
}

/** A binary min-heap of numbers. */
class MinHeap {
  #items: number[] = [];
  get size() {
    return this.#items.length;
  }
  push(value: number) {
    const items = this.#items;
    let i = items.push(value) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (items[parent]! <= value) break;
      items[i] = items[parent]!;
      i = parent;
    }
    items[i] = value;
  }
  pop(): number {
    const items = this.#items;
    const top = items[0]!;
    const last = items.pop()!;
    if (items.length > 0) {
      let i = 0;
      for (;;) {
        let child = 2 * i + 1;
        if (child >= items.length) break;
        if (child + 1 < items.length && items[child + 1]! < items[child]!) child++;
        if (items[child]! >= last) break;
        items[i] = items[child]!;
        i = child;
      }
      items[i] = last;
    }
    return top;
  }
}
