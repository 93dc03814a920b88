/** Which model serves a request that names one: listed names, aliases, the default for the rest, or a strict list. */
import assert from "node:assert/strict";
import { startTestApi } from "../support/api.ts";
import { chat, json, send, stored } from "../support/http.ts";

// test-model is OPENAI_MODEL, other-model is in OPENAI_MODELS (see support/api.ts)
const api = await startTestApi();

/** What served a request: what the model server was asked for, what was stored, and what the API reported. */
async function servedBy(target: typeof api, model: string | undefined) {
  const user = await target.user();
  const session = crypto.randomUUID();
  const calls = target.model.requests.length;
  const reply = await chat(target, user, session, "Hi", {
    protocol: "sse",
    ...(model === undefined ? {} : { model }),
  });
  assert.equal(reply.status, 200, reply.body);
  assert.equal(target.model.requests.length, calls + 1);
  const [, assistant] = await stored(target, session);
  return {
    asked: target.model.requests.at(-1)!.model,
    stored: assistant!.model,
    header: reply.headers.get("x-model"),
    streamed: reply.body.match(/"model":"([^"]+)"/)?.[1],
  };
}

const all = (model: string) => ({ asked: model, stored: model, header: model, streamed: model });

Deno.test("the names the original frontend sends are served by the default model, and that model is what is recorded and reported", async () => {
  for (const name of ["gpt-3.5-turbo-0125", "gpt-4o-mini"]) {
    assert.deepEqual(await servedBy(api, name), all("test-model"), name);
  }
  // the data stream, as that frontend reads it, names the model too
  const user = await api.user();
  const reply = await chat(api, user, crypto.randomUUID(), "Hi", { model: "gpt-3.5-turbo-0125" });
  assert.match(reply.body, /^8:\[\{"type":"reply",.*"model":"test-model"\}\]\n/);
});

Deno.test("a listed model is served as named; no name means the default", async () => {
  assert.deepEqual(await servedBy(api, "other-model"), all("other-model"));
  assert.deepEqual(await servedBy(api, undefined), all("test-model"));
});

Deno.test("OPENAI_MODEL_ALIASES: a name a client sends is served by the listed model it points at", async () => {
  const aliased = await startTestApi({
    env: { OPENAI_MODEL_ALIASES: "gpt-3.5-turbo-0125=other-model, legacy=test-model" },
  });
  assert.deepEqual(await servedBy(aliased, "gpt-3.5-turbo-0125"), all("other-model"));
  assert.deepEqual(await servedBy(aliased, "legacy"), all("test-model"));
  // per-model history budgets follow the model that serves the request, not the name asked for
  const budgeted = await startTestApi({
    env: {
      OPENAI_MODEL_ALIASES: "gpt-3.5-turbo-0125=other-model",
      HISTORY_TOKEN_BUDGETS: "other-model=120",
    },
  });
  const user = await budgeted.user();
  const tooLong = await json(send(budgeted, user, "POST", `/api/sessions/${crypto.randomUUID()}`, {
    messages: [{ role: "user", content: "word ".repeat(200) }],
    model: "gpt-3.5-turbo-0125",
  }));
  assert.equal(tooLong.status, 413);
  assert.match(tooLong.body.detail, /too long for other-model: \d+ tokens .* the budget is 120/);
});

Deno.test("OPENAI_MODELS_STRICT=true: an unlisted name gets 422 listing the accepted names, stores nothing and calls no model", async () => {
  const strict = await startTestApi({
    env: { OPENAI_MODELS_STRICT: "true", OPENAI_MODEL_ALIASES: "gpt-3.5-turbo-0125=test-model" },
  });
  assert.deepEqual(await servedBy(strict, "gpt-3.5-turbo-0125"), all("test-model"));
  assert.deepEqual(await servedBy(strict, "other-model"), all("other-model"));
  const user = await strict.user();
  const session = crypto.randomUUID();
  const calls = strict.model.requests.length;
  for (const name of ["gpt-9-ultra", "gpt-4o-mini"]) {
    const refused = await json(send(strict, user, "POST", `/api/sessions/${session}`, {
      messages: [{ role: "user", content: "Hi" }],
      model: name,
    }));
    assert.equal(refused.status, 422, name);
    assert.deepEqual(refused.body.detail[0].loc, ["body", "model"]);
    assert.equal(
      refused.body.detail[0].msg,
      "model not available; choose one of: test-model, other-model, gpt-3.5-turbo-0125",
    );
  }
  assert.equal(strict.model.requests.length, calls);
  const [row] = await strict.db
    .admin`select count(*)::int as n from public.chat_sessions where id = ${session}`;
  assert.equal(row!.n, 0);
});
