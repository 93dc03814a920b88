/** Liveness plus a database check; no token needed, so probes and load balancers can call it. */
import { z } from "@hono/zod-openapi";
import { createRoute, json, Router } from "../contract.ts";
import { queryAsCaller } from "../database.ts";
import type { RouteDeps } from "../deps.ts";

export const healthRoute = createRoute({
  method: "get",
  path: "/health",
  operationId: "health",
  tags: ["health"],
  summary: "Liveness and a database check",
  security: [],
  responses: {
    200: json("Up", z.object({ status: z.literal("ok"), database: z.literal("ok") })),
    503: json(
      "The database is unavailable (`Retry-After`)",
      z.object({
        detail: z.string(),
        status: z.literal("degraded"),
        database: z.literal("unavailable"),
      }),
    ),
  },
});

export function healthRoutes({ sql, signedIn }: RouteDeps) {
  return new Router(signedIn).add(healthRoute, async (c) => {
    try {
      // through a connection as any request gets one: the check says whether requests can work
      await queryAsCaller(sql, { role: "anon" }, (tx) => tx`select 1`);
      return c.json({ status: "ok" as const, database: "ok" as const }, 200);
    } catch {
      return c.json(
        {
          detail: "The database is unavailable",
          status: "degraded" as const,
          database: "unavailable" as const,
        },
        503,
        { "retry-after": "5" },
      );
    }
  }).app;
}
