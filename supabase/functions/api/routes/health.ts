/** Liveness plus a database check; no token needed, so probes and load balancers can call it. */
import { Hono } from "hono";
import type { RouteDeps } from "../app.ts";

export function healthRoutes({ sql }: RouteDeps) {
  return new Hono().get("/", async (c) => {
    try {
      await sql`select 1`;
      return c.json({ status: "ok", database: "ok" });
    } catch {
      return c.json(
        { detail: "The database is unavailable", status: "degraded", database: "unavailable" },
        503,
        {
          "retry-after": "5",
        },
      );
    }
  });
}
