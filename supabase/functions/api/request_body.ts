/** Reads a JSON body strictly: valid UTF-8, valid JSON, whatever the Content-Type says. */
import type { Context } from "hono";
import { ApiError } from "./errors.ts";

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Bodies already read, by request: a body read twice (the route's validation, then a handler) is parsed once. */
const parsed = new WeakMap<Request, unknown>();

export async function readJson(c: Context): Promise<unknown> {
  if (parsed.has(c.req.raw)) return parsed.get(c.req.raw);
  const body = await readJsonOnce(c);
  parsed.set(c.req.raw, body);
  return body;
}

async function readJsonOnce(c: Context): Promise<unknown> {
  let text: string;
  try {
    text = utf8.decode(await c.req.arrayBuffer());
  } catch (error) {
    if (error instanceof TypeError) {
      throw new ApiError(422, [{
        loc: ["body"],
        msg: "body is not valid UTF-8",
        type: "utf8_invalid",
      }]);
    }
    throw error;
  }
  if (jsonValuesOver(text, MAX_JSON_VALUES)) {
    throw new ApiError(422, [{
      loc: ["body"],
      msg: `has more than ${MAX_JSON_VALUES} JSON values`,
      type: "json_too_complex",
    }]);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new ApiError(422, [{ loc: ["body"], msg: "JSON decode error", type: "json_invalid" }]);
  }
}

/**
 * The most JSON values a body may hold. Bytes alone do not bound what parsing
 * costs: 4 MB of `{},` is 1.3 million objects, about 90 MB of heap and most of
 * a second of CPU in JSON.parse, of a worker's 256 MB and 2 s, all for the
 * earlier `messages` entries the API ignores. A useChat history spends about
 * ten values per message, so this is thousands of messages.
 */
const MAX_JSON_VALUES = 100_000;

/**
 * Whether `text` holds more than `limit` JSON values, counted without parsing
 * it: every value but the first follows a `,` or opens a container, outside
 * strings. One pass over the characters, allocating nothing; hand-written
 * because no JSON library bounds the values it builds before building them.
 * Invalid JSON is left to JSON.parse (this only ever counts too many).
 */
function jsonValuesOver(text: string, limit: number): boolean {
  // Counting every `,` `[` `{` with indexOf (native, fast) bounds the values from above: most
  // bodies, long texts included, are under the limit without a character-by-character pass,
  // which over 4 MB would hold the instance for tens of milliseconds.
  if (!markersOver(text, limit)) return false;
  let values = 1;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // a backslash escapes the next character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x2c || c === 0x5b || c === 0x7b) { // , [ {
      if (++values > limit) return true;
    }
  }
  return false;
}

/** Whether `,` `[` and `{` occur more than `limit - 1` times in `text`, strings included. */
function markersOver(text: string, limit: number): boolean {
  let found = 1;
  for (const marker of [",", "[", "{"]) {
    for (let i = text.indexOf(marker); i !== -1; i = text.indexOf(marker, i + 1)) {
      if (++found > limit) return true;
    }
  }
  return false;
}
