/**
 * Keyset pagination: `?limit=N&before=<cursor>`. The body stays a plain
 * array; the next page's cursor travels in `Link: <?limit=N&before=...>;
 * rel="next"` (relative, so it holds wherever the function is mounted) and
 * in `X-Next-Cursor`. Without either parameter a route answers as it
 * always has.
 */
import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { Cursors } from "./cursors.ts";
import { ApiError } from "./errors.ts";

const DEFAULT_LIMIT = 50;

/** The page parameters, part of the query a paged route declares. */
export const PageQuery = z.looseObject({
  limit: z.string().regex(/^-?\d+$/, "must be a whole number").transform(Number)
    .optional().openapi({ description: "page size (clamped to 1..100)" }),
  before: z.string().min(1).max(4096).optional()
    .openapi({ description: "the X-Next-Cursor of the previous page" }),
});

/** The headers of a page that another page follows. */
export const pageHeaders = {
  Link: {
    description: '`<?limit=N&before=...>; rel="next"` when another page follows',
    schema: { type: "string" as const },
  },
  "X-Next-Cursor": {
    description: "the cursor of the next page",
    schema: { type: "string" as const },
  },
};

export interface PageRequest {
  limit: number;
  cursor: string | undefined;
}

/** The page asked for, or null when the request names no page (the route answers in full). */
export function pageRequest({ limit, before }: z.output<typeof PageQuery>): PageRequest | null {
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
