/** The OpenAPI document: valid OpenAPI 3.1, every route, body, error and the bearer auth; no docs page in the function. */
import assert from "node:assert/strict";
import { Validator } from "@seriousme/openapi-schema-validator";
import { startTestApi } from "../support/api.ts";
import { json, send } from "../support/http.ts";

const api = await startTestApi();

Deno.test("GET /api/openapi.json is a valid OpenAPI 3.1 document, without a token", async () => {
  const { status, body } = await json(send(api, undefined, "GET", "/api/openapi.json"));
  assert.equal(status, 200);
  assert.equal(body.openapi, "3.1.0");
  const result = await new Validator().validate(body);
  assert.equal(result.valid, true, JSON.stringify(result.errors, null, 2));
});

Deno.test("the document lists every route, body and error, and the bearer auth", async () => {
  const { body } = await json(send(api, undefined, "GET", "/api/openapi.json"));
  const operations = Object.entries(body.paths as Record<string, Record<string, unknown>>)
    .flatMap(([path, item]) =>
      Object.keys(item).filter((k) => k !== "parameters").map((m) => `${m.toUpperCase()} ${path}`)
    )
    .sort();
  assert.deepEqual(operations, [
    "DELETE /api/chat/{session_id}/stream",
    "DELETE /api/empty-sessions",
    "DELETE /api/sessions/{session_id}",
    "DELETE /api/sessions/{session_id}/messages/{message_id}",
    "DELETE /api/sessions/{session_id}/stream",
    "GET /api/chat/{session_id}/stream",
    "GET /api/health",
    "GET /api/sessions",
    "GET /api/sessions/{session_id}",
    "GET /api/sessions/{session_id}/export",
    "GET /api/sessions/{session_id}/stream",
    "GET /api/usage",
    "PATCH /api/sessions/{session_id}/title",
    "POST /api/chat",
    "POST /api/imports",
    "POST /api/sessions/{session_id}",
    "PUT /api/sessions/{session_id}/current",
  ]);
  assert.deepEqual(body.components.securitySchemes.bearerAuth, {
    type: "http",
    scheme: "bearer",
    bearerFormat: "JWT",
    description: "A Supabase access token",
  });
  const post = body.paths["/api/sessions/{session_id}"].post;
  assert.deepEqual(Object.keys(post.responses).sort(), [
    "200",
    "401",
    "404",
    "409",
    "413",
    "422",
    "429",
    "502",
    "503",
    "504",
  ]);
  // the request bodies come from the zod schemas that validate them
  assert.deepEqual(body.components.schemas.PostMessageBody.required, ["messages"]);
  assert.deepEqual(body.components.schemas.ChatBody.required.sort(), ["id", "messages"]);
  assert.deepEqual(body.components.schemas.TitleBody.required, ["title"]);
  // an import's body is the export file as its app wrote it, described, read by its format's rules
  assert.match(body.components.schemas.ExportFile.description, /conversations\.json/);
  assert.deepEqual(
    Object.keys(body.paths["/api/imports"].post.responses).sort(),
    ["200", "401", "413", "422", "429", "503"],
  );
  // every operation on a session declares its id, with the pattern that validates it
  for (const [path, item] of Object.entries(body.paths)) {
    if (!path.includes("{session_id}")) continue;
    for (
      const [method, operation] of Object.entries(
        item as Record<
          string,
          {
            parameters: {
              name: string;
              in: string;
              required: boolean;
              schema: { pattern: string };
            }[];
          }
        >,
      )
    ) {
      const id = operation.parameters.find((p) => p.name === "session_id");
      assert.equal(id?.in, "path", `${method} ${path}`);
      assert.equal(id.required, true);
      assert.match(id.schema.pattern, /\[0-9a-fA-F\]\{8\}/, `${method} ${path}`);
    }
  }
});

Deno.test("the function serves no HTML: /api/docs is a JSON 404 naming deno task docs", async () => {
  const docs = await send(api, undefined, "GET", "/api/docs");
  assert.equal(docs.status, 404);
  assert.match(docs.headers.get("content-type")!, /^application\/json/);
  assert.match((await docs.json()).detail, /deno task docs/);
  assert.equal((await send(api, undefined, "GET", "/api/docs/swagger-ui-bundle.js")).status, 404);
});

Deno.test("the function's import map no longer carries Swagger UI", async () => {
  const map = await Deno.readTextFile(
    new URL("../../supabase/functions/api/deno.json", import.meta.url),
  );
  assert.doesNotMatch(map, /swagger-ui/);
});
