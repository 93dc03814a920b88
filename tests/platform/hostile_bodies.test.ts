/**
 * Bodies within MAX_BODY_BYTES that would still cost a worker most of its
 * memory and CPU budget: millions of tiny JSON values. The earlier entries of
 * `messages` are ignored, but JSON.parse builds every one of them first (4 MB
 * of `{},` is 1.3 million objects: about 90 MB of heap and half a second of
 * CPU or more, against 256 MB and 2 s per worker, shared by every reply it
 * serves). Such a body is refused before it is parsed; a long real history
 * still goes through.
 */
import assert from "node:assert/strict";
import { startTestApi } from "../support/api.ts";
import { send, stored } from "../support/http.ts";

const api = await startTestApi();

const manyValues = (value: string, count: number) =>
  `{"messages":[${Array(count).fill(value).join(",")},{"role":"user","content":"hi"}]}`;

for (
  const [what, body] of [
    ["1.3 million empty objects", manyValues("{}", 1_300_000)],
    ["2 million numbers", manyValues("1", 2_000_000)],
    [
      "a million empty arrays in one message",
      `{"messages":[{"role":"user","content":"hi","x":[${
        Array(1_000_000).fill("[]").join(",")
      }]}]}`,
    ],
  ] as const
) {
  Deno.test(`a body of ${what} is a 422 before it is parsed, and nothing is stored`, async () => {
    const user = await api.user();
    const session = crypto.randomUUID();
    const response = await send(api, user, "POST", `/api/sessions/${session}?protocol=text`, body);
    assert.equal(response.status, 422);
    const { detail } = await response.json();
    assert.equal(detail[0].type, "json_too_complex");
    assert.deepEqual(detail[0].loc, ["body"]);
    assert.deepEqual(await stored(api, session), []);
  });
}

Deno.test("a long real history as useChat sends it, with braces and commas in its text, still goes through", async () => {
  const user = await api.user();
  const session = crypto.randomUUID();
  const text = "function f(a, b) { return [a, b, {c: 1}]; } ".repeat(20);
  const history = Array.from({ length: 2000 }, (_, i) => ({
    id: `m${i}`,
    role: i % 2 ? "assistant" : "user",
    content: text,
    createdAt: new Date(0).toISOString(),
    parts: [{ type: "text", text }],
  }));
  const response = await send(api, user, "POST", `/api/sessions/${session}?protocol=text`, {
    messages: [...history, { role: "user", content: "and now?" }],
  });
  assert.equal(response.status, 200, await response.clone().text());
  assert.equal(await response.text(), "Hello there!");
  await api.idle();
  assert.deepEqual((await stored(api, session)).map((m) => m.role), ["user", "assistant"]);
});
