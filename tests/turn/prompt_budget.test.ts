/** The prompt: the system prompt plus the newest turns within the model's token budget; a message alone over it is a 413. */
import assert from "node:assert/strict";
import { countTokens } from "gpt-tokenizer/encoding/o200k_base";
import { startTestApi } from "../support/api.ts";
import { addConversation, createSession } from "../support/fixtures.ts";
import { chat, json, send, stored } from "../support/http.ts";

const api = await startTestApi({
  env: { HISTORY_TOKEN_BUDGET: "300", HISTORY_TOKEN_BUDGETS: "other-model=120" },
});

const promptTokens = (messages: { content: string }[]) =>
  messages.reduce((n, m) => n + countTokens(m.content) + 4, 0);

/** Stores `count` turns the way the API does: each with its own token count. */
async function longSession(userId: string, count: number, counted = true): Promise<string> {
  const session = await createSession(api.db.admin, userId);
  await addConversation(
    api.db.admin,
    session,
    count,
    (i) => `turn ${i + 1} of a very long chat`,
    counted ? countTokens : undefined,
  );
  return session;
}

Deno.test("a long session's prompt is the system prompt plus the newest turns within the token budget", async () => {
  const user = await api.user();
  const session = await longSession(user.id, 3000);
  assert.equal((await chat(api, user, session, "And the newest question?")).status, 200);
  const { messages } = api.model.requests.at(-1)!;
  assert.equal(messages[0]!.role, "system");
  assert.deepEqual(messages.at(-1), { role: "user", content: "And the newest question?" });
  assert.equal(messages.at(-2)!.content, "turn 3000 of a very long chat");
  const tokens = promptTokens(messages);
  assert.ok(tokens <= 300, `${tokens} tokens`);
  assert.ok(tokens > 285, `the budget is used, not wasted: ${tokens} tokens`);
  // consecutive newest turns, none skipped
  const turns = messages.slice(1, -1).map((m) => Number(m.content.split(" ")[1]));
  assert.deepEqual(turns, turns.map((_, i) => 3000 - turns.length + 1 + i));
  // and the new message was stored with its own count, as the reply was
  const counts = await api.db.admin`
    select role, tokens from public.messages where chat_session_id = ${session} order by seq desc limit 2`;
  assert.deepEqual([...counts].map((r) => ({ ...r })), [
    { role: "assistant", tokens: countTokens("Hello there!") },
    { role: "user", tokens: countTokens("And the newest question?") },
  ]);
});

Deno.test("messages stored without a token count (by other clients) still never overflow the budget", async () => {
  const user = await api.user();
  const session = await longSession(user.id, 500, false);
  assert.equal((await chat(api, user, session, "Still fits?")).status, 200);
  const { messages } = api.model.requests.at(-1)!;
  assert.ok(promptTokens(messages) <= 300);
  assert.equal(messages.at(-2)!.content, "turn 500 of a very long chat");
});

Deno.test("the budget is per model", async () => {
  const user = await api.user();
  const session = await longSession(user.id, 500);
  await chat(api, user, session, "Short one", { model: "other-model" });
  const tokens = promptTokens(api.model.requests.at(-1)!.messages);
  assert.ok(tokens <= 120 && tokens > 100, `${tokens} tokens`);
});

Deno.test("a message that alone exceeds the budget gets 413 before anything is stored", async () => {
  const user = await api.user();
  const session = crypto.randomUUID();
  const calls = api.model.requests.length;
  const { status, body } = await json(send(api, user, "POST", `/api/sessions/${session}`, {
    messages: [{ role: "user", content: "word ".repeat(400) }],
  }));
  assert.equal(status, 413);
  assert.match(
    body.detail,
    /too long for test-model: \d+ tokens with the system prompt, the budget is 300/,
  );
  assert.deepEqual(await stored(api, session), []);
  assert.equal(api.model.requests.length, calls);
});
