/**
 * GET /api/openapi.json: the OpenAPI document, generated from the routes'
 * declarations, without a token. Interactive docs are not served here: hosted
 * Supabase rewrites `text/html` to `text/plain` without a custom domain, and
 * Swagger UI would weigh 2.5 MB of the bundle; `deno task docs <API URL>`
 * serves them from local tooling.
 */
import { Hono } from "hono";
import { ApiError } from "../errors.ts";

export function docsRoutes(document: () => unknown) {
  const app = new Hono();
  // built on first use, not at start-up: generating it is the costly part
  let built: unknown;
  app.get("/openapi.json", (c) => c.json(built ??= document()));
  // where the docs page used to be: say where it went
  app.get("/docs", () => {
    throw new ApiError(
      404,
      "Interactive docs are served by local tooling: run `deno task docs <API URL>`; the OpenAPI document is at openapi.json",
    );
  });
  return app;
}
