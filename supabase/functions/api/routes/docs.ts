/**
 * GET /api/openapi.json and interactive docs at GET /api/docs: Swagger UI,
 * its assets served from the npm package by the function itself, so the
 * page needs nothing from the internet. Both answer without a token.
 */
import { Hono } from "hono";
import { getAbsoluteFSPath } from "swagger-ui-dist";
import { ApiError } from "../errors.ts";
import { openApiDocument } from "../openapi.ts";

const assets: Record<string, string> = {
  "swagger-ui.css": "text/css; charset=utf-8",
  "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
};

// relative URLs: right wherever the function is mounted (/api/docs here, /functions/v1/api/docs on Supabase)
const page = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Chat sessions API</title>
  <link rel="stylesheet" href="docs/swagger-ui.css">
</head>
<body>
  <div id="docs"></div>
  <script src="docs/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({ url: "openapi.json", dom_id: "#docs", persistAuthorization: true });
  </script>
</body>
</html>
`;

export function docsRoutes() {
  const app = new Hono();
  const document = openApiDocument();
  // Deno.readFile's own type: Uint8Array<ArrayBuffer> under TS 5.7+, plain Uint8Array under the
  // Edge Runtime's TS 5.6 (which has no generic Uint8Array), so both accept it as a body
  const cache = new Map<string, Awaited<ReturnType<typeof Deno.readFile>>>();

  app.get("/openapi.json", (c) => c.json(document));
  app.get("/docs", (c) => c.html(page));
  app.get("/docs/:asset", async (c) => {
    const name = c.req.param("asset");
    const type = assets[name];
    if (!type) throw new ApiError(404, "Not found");
    let bytes = cache.get(name);
    if (!bytes) {
      try {
        bytes = await Deno.readFile(`${getAbsoluteFSPath()}/${name}`);
      } catch {
        throw new ApiError(503, "The docs' assets are not available here");
      }
      cache.set(name, bytes);
    }
    return c.body(bytes, 200, {
      "content-type": type,
      "cache-control": "public, max-age=86400",
    });
  });
  return app;
}
