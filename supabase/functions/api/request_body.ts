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
  try {
    return JSON.parse(text);
  } catch {
    throw new ApiError(422, [{ loc: ["body"], msg: "JSON decode error", type: "json_invalid" }]);
  }
}
