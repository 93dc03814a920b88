/**
 * GET /api/sessions/:id without `limit` streams the history a page at a time
 * (pages bounded in messages and in bytes), and the body is byte for byte
 * the JSON the paged route and `JSON.stringify` write; the export reads the
 * same pages.
 */
import assert from "node:assert/strict";
import { startTestApi } from "../support/api.ts";
import { addConversation, createSession } from "../support/fixtures.ts";
import { send } from "../support/http.ts";

const api = await startTestApi();

/** Every character class JSON escapes differently: controls, quotes, backslashes, separators, astral. */
const awkward =
  'q"uote\\ back/slash \b\f\n\r\t \u0001\u001f\u007f \u2028\u2029 é 中文 😀 </script> \\u0041';

Deno.test("GET /api/sessions/:id streams what JSON.stringify writes, across pages, for any text", async () => {
  const user = await api.user();
  const session = await createSession(api.db.admin, user.id);
  // more messages than a page holds, and messages larger than a page's bytes
  await addConversation(
    api.db.admin,
    session,
    1203,
    (i) =>
      i === 7 || i === 600
        ? `${i} ${awkward.repeat(40_000)}`
        : `${i} ${awkward.slice(0, i % awkward.length)}`,
  );

  const whole = await send(api, user, "GET", `/api/sessions/${session}`);
  assert.equal(whole.status, 200);
  assert.equal(whole.headers.get("content-type"), "application/json");
  const body = await whole.text();

  // the same history through the paged route, which writes each page with JSON.stringify
  const pages: unknown[][] = [];
  let cursor = "";
  for (;;) {
    const page = await send(api, user, "GET", `/api/sessions/${session}?limit=100${cursor}`);
    pages.unshift(await page.json());
    const next = page.headers.get("x-next-cursor");
    if (!next) break;
    cursor = `&before=${encodeURIComponent(next)}`;
  }
  const expected = JSON.stringify(pages.flat());
  assert.equal(body.length, expected.length);
  assert.ok(body === expected, "the streamed body differs from JSON.stringify's");
  assert.equal(JSON.parse(body).length, 1203);

  // the export reads the same byte-bounded pages: all of them, in order, none twice
  const exported = await send(api, user, "GET", `/api/sessions/${session}/export`);
  assert.equal(exported.status, 200);
  const { messages } = await exported.json();
  assert.deepEqual(messages, JSON.parse(body));
});

Deno.test("GET /api/sessions/:id answers [] for an empty session, 404 for another user's", async () => {
  const owner = await api.user();
  const session = await createSession(api.db.admin, owner.id);
  const empty = await send(api, owner, "GET", `/api/sessions/${session}`);
  assert.equal(empty.status, 200);
  assert.equal(await empty.text(), "[]");
  const stranger = await send(api, await api.user(), "GET", `/api/sessions/${session}`);
  assert.equal(stranger.status, 404);
  assert.deepEqual(await stranger.json(), { detail: "Chat session not found" });
});
