/**
 * The frame of the OpenAPI 3.1 document; its paths and schemas come from the
 * routes' declarations (`contract.ts`), registered as the routes are added.
 */
import type { OpenAPIHono } from "@hono/zod-openapi";

export function openApiDocument(
  app: Pick<OpenAPIHono, "openAPIRegistry" | "getOpenAPI31Document">,
) {
  app.openAPIRegistry.registerComponent("securitySchemes", "bearerAuth", {
    type: "http",
    scheme: "bearer",
    bearerFormat: "JWT",
    description: "A Supabase access token",
  });
  return app.getOpenAPI31Document({
    openapi: "3.1.0",
    info: {
      title: "Chat sessions API",
      version: "1.0.0",
      description:
        "Chat sessions on Supabase: every request runs as the caller under Row Level Security.",
    },
    servers: [{ url: "/" }],
    // every route needs a token unless it declares `security: []`
    security: [{ bearerAuth: [] }],
  });
}
