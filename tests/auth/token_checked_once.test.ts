/** Each request passes each middleware once: the sign-in check is attached to the routes themselves. */
import assert from "node:assert/strict";
import { startTestApi } from "../support/api.ts";
import { json, send } from "../support/http.ts";
import { gptLinear } from "../support/imports.ts";

let verifications = 0;
const api = await startTestApi({ onVerify: () => verifications++ });

Deno.test("every documented route checks a token exactly once per request (none for public routes)", async () => {
  const user = await api.user();
  const { body: document } = await json(send(api, undefined, "GET", "/api/openapi.json"));
  const bodies: Record<string, unknown> = {
    post: { messages: [{ role: "user", content: "hello" }] },
    patch: { title: "Renamed" },
  };
  let checked = 0;
  for (const [template, item] of Object.entries(document.paths)) {
    for (const [method, operation] of Object.entries(item as Record<string, { security?: [] }>)) {
      const session = crypto.randomUUID();
      // a session of the caller's own, so every route does its whole work
      const created = await send(api, user, "POST", `/api/sessions/${session}?protocol=text`, {
        messages: [{ role: "user", content: "first" }],
      });
      const message = created.headers.get("x-user-message-id")!;
      await created.text();
      await api.idle();
      const path = template.replace("{session_id}", session).replace("{message_id}", message);
      verifications = 0;
      // POST /chat names its session in the body, as the AI SDK sends its chat id; PUT .../current
      // a message of the session; an import takes an export file
      const body = template === "/api/chat"
        ? { ...bodies.post!, id: session }
        : template === "/api/imports"
        ? [gptLinear(session, 1)]
        : method === "put"
        ? { message_id: message }
        : bodies[method];
      const response = await send(api, user, method.toUpperCase(), path, body);
      await response.text();
      await api.idle();
      // a reply in progress: none here (the first reply is stored), so its routes answer 204
      const expected = template.endsWith("/stream") ? 204 : 200;
      assert.equal(response.status, expected, `${method} ${path}`);
      const isPublic = operation.security?.length === 0;
      assert.equal(verifications, isPublic ? 0 : 1, `${method.toUpperCase()} ${template}`);
      checked++;
    }
  }
  assert.equal(checked, 17);
});

Deno.test("GET /api/sessions, the path the old mounting checked twice, checks the token once", async () => {
  const user = await api.user();
  verifications = 0;
  const response = await send(api, user, "GET", "/api/sessions");
  assert.equal(response.status, 200);
  await response.body?.cancel();
  assert.equal(verifications, 1);
});
