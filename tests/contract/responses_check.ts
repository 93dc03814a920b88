/**
 * The responses the whole suite produced, checked against the OpenAPI
 * document the app generates from its route declarations. Run after the
 * suite by `local/test_suite.ts` (`deno task test`), reading what
 * `tests/support/responses.ts` recorded in `API_RESPONSES_DIR`.
 */
import assert from "node:assert/strict";
import { Ajv2020 } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { json, send } from "../support/http.ts";
import { startTestApi } from "../support/api.ts";
import type { RecordedResponse } from "../support/responses.ts";

const dir = Deno.env.get("API_RESPONSES_DIR");
if (!dir) throw new Error("API_RESPONSES_DIR names no folder: run this through `deno task test`");

const recorded: RecordedResponse[] = [];
for await (const entry of Deno.readDir(dir)) {
  const text = await Deno.readTextFile(`${dir}/${entry.name}`);
  for (const line of text.split("\n")) if (line) recorded.push(JSON.parse(line));
}

const api = await startTestApi();
// deno-lint-ignore no-explicit-any -- the document is arbitrary JSON
const document: any = (await json(send(api, undefined, "GET", "/api/openapi.json"))).body;

const SAME_SEND = "the handler of POST /api/sessions/{session_id} (routes/messages.ts), whose " +
  "tests reach this status; POST /api/chat only reads the session id from the body instead";

/**
 * Documented (operation, status) pairs no test reaches, each with the reason.
 * Every other documented pair must be seen at least once.
 */
const notReachedInTests: Record<string, string> = {
  "POST /api/chat 404": SAME_SEND,
  "POST /api/chat 409": SAME_SEND,
  "POST /api/chat 413": SAME_SEND,
  "POST /api/chat 429": SAME_SEND,
  "POST /api/chat 502": SAME_SEND,
  "POST /api/chat 504": SAME_SEND,
  "DELETE /api/sessions/{session_id}/stream 202":
    "a stop not stored within 10 s: the streaming instance sees it within REPLY_POLL_MS",
  "DELETE /api/chat/{session_id}/stream 202":
    "a stop not stored within 10 s: the streaming instance sees it within REPLY_POLL_MS",
};

const ajv = new Ajv2020({ strict: false, validateSchema: false, allErrors: true });
addFormats.default(ajv);
ajv.addSchema(document, "openapi");
const pointer = (...parts: string[]) =>
  parts.map((p) => p.replaceAll("~", "~0").replaceAll("/", "~1")).join("/");

const templates = Object.keys(document.paths).map((template) => ({
  template,
  pattern: new RegExp(`^${template.replaceAll(/\{[^}]+\}/g, "[^/]+")}$`),
}));
const routeOf = (path: string) => templates.find((t) => t.pattern.test(path))?.template;

/** The documented (operation, status) pair a response answers, or why it has none. */
function classify(r: RecordedResponse): { key?: string; problem?: string; skip?: boolean } {
  // CORS preflights and the document itself are not API operations
  if (r.method === "OPTIONS" || r.path === "/api/openapi.json") return { skip: true };
  const template = routeOf(r.path);
  const method = (r.method === "HEAD" ? "GET" : r.method).toLowerCase();
  const operation = template ? document.paths[template][method] : undefined;
  if (!operation) {
    // answered by the app before any route: an unknown path (404), a known path's other method
    // (405), a body over the limit whatever the route (413); always `{"detail": ...}`
    if ((r.status === 404 && !template) || (r.status === 405 && template) || r.status === 413) {
      return { skip: true };
    }
    return { problem: `undocumented: ${r.method} ${r.path} answered ${r.status}` };
  }
  const key = `${method.toUpperCase()} ${template} ${r.status}`;
  // the body limit answers before any route, also for a route that takes no body (the fuzz
  // test draws such requests): app-wide, as above
  if (r.status === 413 && !operation.responses[413]) return { skip: true };
  if (!operation.responses[r.status]) return { key, problem: `undocumented status: ${key}` };
  return { key };
}

Deno.test("the suite recorded responses of every kind", () => {
  assert.ok(recorded.length > 1000, `only ${recorded.length} responses recorded`);
});

Deno.test("every response the suite produced has a documented route and status", () => {
  const problems = new Set<string>();
  for (const r of recorded) {
    const { problem } = classify(r);
    if (problem) problems.add(problem);
  }
  assert.deepEqual([...problems], []);
});

Deno.test("every response's content type is documented, and every JSON body matches its schema", () => {
  const problems = new Set<string>();
  for (const r of recorded) {
    const { key, problem, skip } = classify(r);
    if (skip) {
      // the app's own 404s and 405s still answer the error shape
      if (r.body !== undefined && r.method !== "OPTIONS" && r.path !== "/api/openapi.json") {
        if (!ajv.validate({ $ref: "openapi#/components/schemas/Error" }, r.body)) {
          problems.add(`${r.method} ${r.path} ${r.status}: ${ajv.errorsText()}`);
        }
      }
      continue;
    }
    if (problem || !key) continue;
    const template = routeOf(r.path)!;
    const method = (r.method === "HEAD" ? "GET" : r.method).toLowerCase();
    const content = document.paths[template][method].responses[r.status].content ?? {};
    const mediaType = r.type.split(";")[0]!.trim();
    // a 204 has no content, so no content type
    if (r.status === 204 && !mediaType && r.body === undefined) continue;
    if (!(mediaType in content)) {
      problems.add(`${key}: content type ${mediaType} is not documented`);
      continue;
    }
    if (r.notJson !== undefined) problems.add(`${key}: body is not JSON: ${r.notJson}`);
    if (r.body === undefined || mediaType !== "application/json") continue;
    const ref = pointer("paths", template, method, "responses", String(r.status), "content");
    const schema = { $ref: `openapi#/${ref}/${pointer(mediaType)}/schema` };
    if (!ajv.validate(schema, r.body)) {
      problems.add(`${key}: ${ajv.errorsText()}: ${JSON.stringify(r.body).slice(0, 300)}`);
    }
  }
  assert.deepEqual([...problems], []);
});

Deno.test("every documented route and status was produced by some test, or says why not", () => {
  const seen = new Set(recorded.map((r) => classify(r).key).filter(Boolean));
  const missing: string[] = [];
  for (const [template, item] of Object.entries(document.paths)) {
    // deno-lint-ignore no-explicit-any -- the document is arbitrary JSON
    for (const [method, operation] of Object.entries(item as Record<string, any>)) {
      for (const status of Object.keys(operation.responses)) {
        const key = `${method.toUpperCase()} ${template} ${status}`;
        if (!seen.has(key) && !(key in notReachedInTests)) missing.push(key);
      }
    }
  }
  assert.deepEqual(missing, []);
  // a pair listed as unreachable that a test does reach should leave the list
  const reached = Object.keys(notReachedInTests).filter((key) => seen.has(key));
  assert.deepEqual(reached, []);
});
