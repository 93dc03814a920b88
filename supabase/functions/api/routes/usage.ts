/** GET /api/usage?from=&to=: the caller's replies and tokens per day and model. */
import { z } from "@hono/zod-openapi";
import { createRoute, errors, json, Router } from "../contract.ts";
import { queryAsCaller } from "../database.ts";
import type { RouteDeps } from "../deps.ts";
import { ApiError } from "../errors.ts";
import { UsageRow } from "../schemas.ts";
import { usageByDay, usageRow } from "../store/usage.ts";

const FIRST_DAY = "0001-01-01";
// Postgres has no year 0 (ISO 8601's 0000 is 1 BC): from year 1 on, every day is one both agree on
const day = z.iso.date({ error: "must be a date, YYYY-MM-DD" })
  .refine((d) => d >= FIRST_DAY, `must be a date from ${FIRST_DAY} on`);
const UsageQuery = z.looseObject({
  from: day.optional().openapi({ description: "first day (default: 29 days before to)" }),
  to: day.optional().openapi({ description: "last day (default: today)" }),
});

export const usageRoute = createRoute({
  method: "get",
  path: "/usage",
  operationId: "usage",
  tags: ["usage"],
  summary: "Your replies and tokens per day and model",
  request: { query: UsageQuery },
  responses: { 200: json("Totals", z.array(UsageRow)), ...errors(401, 422, 503) },
});

const DAY = 24 * 3600 * 1000;
// ISO dates from year 1 on compare as strings ("-000001-..." and "0000-..." sort before them)
const latest = (a: string, b: string) => a > b ? a : b;
const isoDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);

export function usageRoutes({ sql, signedIn }: RouteDeps) {
  return new Router(signedIn).add(usageRoute, async (c) => {
    const query = c.req.valid("query");
    // by default the last 30 days, today included
    const to = query.to ?? isoDay(Date.now());
    const from = query.from ?? latest(FIRST_DAY, isoDay(Date.parse(to) - 29 * DAY));
    if (from > to) {
      throw new ApiError(422, [{
        loc: ["query", "from"],
        msg: "must not be after 'to'",
        type: "value_error",
      }]);
    }
    if (Date.parse(to) - Date.parse(from) > 366 * DAY) {
      throw new ApiError(422, [{
        loc: ["query", "from"],
        msg: "at most 366 days at a time",
        type: "value_error",
      }]);
    }
    const rows = await queryAsCaller(sql, c.var.claims, (tx) => usageByDay(tx, from, to));
    return c.json(rows.map(usageRow), 200);
  }).app;
}
