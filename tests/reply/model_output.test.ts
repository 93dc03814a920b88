/**
 * Anything the model sends can be stored: text Postgres cannot hold (U+0000,
 * unpaired surrogates) is replaced by U+FFFD as it streams, so the client
 * sees what is stored; usage no column can hold is recorded as unknown. The
 * reply is never lost, and its slot is freed.
 */
import assert from "node:assert/strict";
import { startTestApi } from "../support/api.ts";
import { chat, stored } from "../support/http.ts";

const api = await startTestApi({ env: { QUOTA_CONCURRENT_STREAMS: "1" } });

const slotsHeld = async () =>
  (await api.db.admin`select count(*)::int as n from chat_private.replies`)[0]!.n;

Deno.test("a reply with U+0000 is stored with U+FFFD in its place, streamed the same, and frees its slot", async () => {
  api.model.script(() => ({ chunks: ["nul\u0000here", " and\u0000\u0000there"] }));
  const user = await api.user();
  const session = crypto.randomUUID();
  const reply = await chat(api, user, session, "send me a NUL", { protocol: "text" });
  assert.equal(reply.status, 200);
  const expected = "nul\uFFFDhere and\uFFFD\uFFFDthere";
  assert.equal(reply.body, expected);
  const messages = await stored(api, session);
  assert.deepEqual(messages.map((m) => [m.role, m.content, m.finish_reason]), [
    ["user", "send me a NUL", null],
    ["assistant", expected, "stop"],
  ]);
  assert.deepEqual(api.logs, []);
  assert.equal(await slotsHeld(), 0);
  api.model.script(() => ({ chunks: ["next"] }));
  assert.equal((await chat(api, user, session, "and now?")).status, 200);
});

Deno.test("unpaired surrogates become U+FFFD; a pair split across two chunks stays one character", async () => {
  api.model.script(() => ({
    chunks: ["lone \uD800 high, ", "lone \uDC00 low, ", "split \uD83D", "\uDE00 joined"],
  }));
  const user = await api.user();
  const session = crypto.randomUUID();
  const reply = await chat(api, user, session, "surrogates", { protocol: "text" });
  const expected = "lone \uFFFD high, lone \uFFFD low, split \u{1F600} joined";
  assert.equal(reply.body, expected);
  assert.equal((await stored(api, session))[1]!.content, expected);
  assert.equal(await slotsHeld(), 0);
});

Deno.test("usage no column can hold is recorded as unknown, and the reply is kept", async () => {
  const user = await api.user();
  const cases: [
    { prompt_tokens: number; completion_tokens: number },
    [number | null, number | null],
  ][] = [
    [{ prompt_tokens: 3_000_000_000, completion_tokens: 5 }, [null, 5]],
    [{ prompt_tokens: 7, completion_tokens: -1 }, [7, null]],
    [{ prompt_tokens: 1.5, completion_tokens: 2 }, [null, 2]],
  ];
  for (const [usage, [prompt, completion]] of cases) {
    api.model.script(() => ({ chunks: ["counted oddly"], usage }));
    const session = crypto.randomUUID();
    assert.equal((await chat(api, user, session, "how much?")).status, 200);
    const [row] = await api.db.admin`
      select content, prompt_tokens, completion_tokens from public.messages
      where chat_session_id = ${session} and role = 'assistant'`;
    assert.deepEqual({ ...row }, {
      content: "counted oddly",
      prompt_tokens: prompt,
      completion_tokens: completion,
    });
  }
  assert.deepEqual(api.logs, []);
  assert.equal(await slotsHeld(), 0);
});
