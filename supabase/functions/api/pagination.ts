/**
 * Keyset pagination: `?limit=N&before=<cursor>`. The body stays a plain
 * array; the next page's cursor travels in `Link: <?limit=N&before=...>;
 * rel="next"` (relative, so it holds wherever the function is mounted) and
 * in `X-Next-Cursor`. Without either parameter a route answers as it
 * always has.
 */
import type { Context } from "hono";
import { z } from "zod";
import type { Cursors } from "./cursors.ts";
import { ApiError, parseOr422 } from "./errors.ts";

const DEFAULT_LIMIT = 50;

const PageQuery = z.looseObject({
  limit: z.string().regex(/^-?\d+$/, "must be a whole number").transform(Number).optional(),
  before: z.string().min(1).max(4096).optional(),
});

export interface PageRequest {
  limit: number;
  cursor: string | undefined;
}

/** The page asked for, or null when the request names no page (the route answers in full). */
export function pageRequest(query: Record<string, string>): PageRequest | null {
  const { limit, before } = parseOr422(PageQuery, query, "query");
  if (limit === undefined && before === undefined) return null;
  return { limit: Math.min(100, Math.max(1, limit ?? DEFAULT_LIMIT)), cursor: before };
}

/**
 * The position a cursor holds; 422 when it is forged, altered, foreign or
 * malformed. A well-signed cursor is still checked against `schema`: only we
 * can sign, but a position must never reach a query it could make fail.
 */
export async function positionOf<P>(
  cursors: Cursors,
  scope: string,
  cursor: string,
  schema: z.ZodType<P>,
): Promise<P> {
  const position = schema.safeParse(await cursors.decode(scope, cursor));
  if (!position.success) {
    throw new ApiError(422, [{
      loc: ["query", "before"],
      msg: "not a valid cursor",
      type: "cursor_invalid",
    }]);
  }
  return position.data;
}

export function linkNextPage(
  c: Context,
  limit: number,
  cursor: string,
  keep: Record<string, string> = {},
): void {
  const query = new URLSearchParams({ ...keep, limit: String(limit), before: cursor });
  c.header("link", `<?${query}>; rel="next"`);
  c.header("x-next-cursor", cursor);
}
