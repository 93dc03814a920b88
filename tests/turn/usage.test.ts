/**
 * Usage: each reply records its tokens and model and the streams report them;
 * GET /api/usage totals them per day and model, never answers 500 (any date
 * gets 422 or the right answer, property-based with fast-check), and totals
 * past Postgres `int` are exact.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { startTestApi } from "../support/api.ts";
import { fullScale, recordFigure } from "../support/figures.ts";
import { createSession } from "../support/fixtures.ts";
import { chat, json, send } from "../support/http.ts";

const api = await startTestApi();

Deno.test("GET /api/usage sums tokens past 2^31 exactly, as JSON numbers", async () => {
  const user = await api.user();
  const session = await createSession(api.db.admin, user.id);
  // three replies at the largest count a reply can record: 3 × (2^31 - 1) overflows int
  await api.db.admin`
    insert into public.messages (chat_session_id, role, content, model, finish_reason,
                                 prompt_tokens, completion_tokens, created_at)
    select ${session}, 'assistant', 'big', 'test-model', 'stop', 2147483647, 2147483647,
           '2026-03-04 12:00:00+00'
    from generate_series(1, 3)`;
  const { status, body } = await json(
    send(api, user, "GET", "/api/usage?from=2026-03-01&to=2026-03-31"),
  );
  assert.equal(status, 200);
  assert.deepEqual(body, [{
    day: "2026-03-04",
    model: "test-model",
    replies: 3,
    prompt_tokens: 6442450941,
    completion_tokens: 6442450941,
  }]);
});

Deno.test("GET /api/usage: dates Postgres and the calendar disagree on are a 422, not a 500", async () => {
  const user = await api.user();
  for (
    const query of [
      "from=0000-01-01",
      "from=0000-12-31&to=0001-01-05",
      "to=0000-06-01",
      "from=-0001-01-01",
      "from=2026-02-30",
      "from=2026-13-01",
      "from=99999-01-01",
    ]
  ) {
    const answer = await json(send(api, user, "GET", `/api/usage?${query}`));
    assert.equal(answer.status, 422, `${query}: ${JSON.stringify(answer.body)}`);
    assert.equal(answer.body.detail[0].loc[0], "query");
  }
  // the first and last days both calendars share answer, even where the default range would start before year 1
  for (
    const query of [
      "to=0001-01-05",
      "from=0001-01-01&to=0001-12-31",
      "from=9999-01-01&to=9999-12-31",
    ]
  ) {
    const answer = await json(send(api, user, "GET", `/api/usage?${query}`));
    assert.deepEqual(answer, { status: 200, body: [] }, query);
  }
});

Deno.test("property: any from and to answer 200 with a list, or 422 with a detail; never a 5xx", async () => {
  const user = await api.user();
  const digits = (n: number) => fc.stringMatching(new RegExp(`^[0-9]{${n}}$`));
  const dateLike = fc.oneof(
    // years at the edges (0000, the first centuries, 9999) as often as anywhere else
    fc.tuple(
      fc.oneof(digits(4), fc.integer({ min: 0, max: 120 }), fc.constant(9999))
        .map((y) => String(y).padStart(4, "0")),
      digits(2),
      digits(2),
    ).map(([y, m, d]) => `${y}-${m}-${d}`),
    fc.date({
      min: new Date("0001-01-01T00:00:00Z"),
      max: new Date("9999-12-31T00:00:00Z"),
      noInvalidDate: true,
    })
      .map((d) => d.toISOString().slice(0, 10)),
    fc.string({ maxLength: 12 }),
  );
  const statuses = new Map<number, number>();
  await fc.assert(
    fc.asyncProperty(
      fc.option(dateLike, { nil: undefined }),
      fc.option(dateLike, { nil: undefined }),
      async (from, to) => {
        const query = new URLSearchParams({
          ...(from === undefined ? {} : { from }),
          ...(to === undefined ? {} : { to }),
        });
        const response = await send(api, user, "GET", `/api/usage?${query}`);
        const body = await response.json();
        statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
        if (response.status === 200) assert.ok(Array.isArray(body), JSON.stringify(body));
        else {
          assert.equal(response.status, 422, `${query}: ${JSON.stringify(body)}`);
          assert.ok(body.detail !== undefined);
        }
      },
    ),
    { numRuns: fullScale ? 2000 : 200 },
  );
  assert.ok(statuses.get(200), "some ranges were valid");
  recordFigure(
    "Bad input (property-based)",
    "usage date ranges tried (status×count)",
    [...statuses].sort(([a], [b]) => a - b).map(([s, n]) => `${s}×${n}`).join(", "),
  );
});

Deno.test("each reply stores its prompt and completion tokens and model; the streams report them", async () => {
  const user = await api.user();
  const session = crypto.randomUUID();
  const reply = await chat(api, user, session, "Count my words please", { protocol: "sse" });
  assert.match(reply.body, /"usage":\{"prompt_tokens":\d+,"completion_tokens":3\}/);
  const [row] = await api.db.admin`
    select prompt_tokens, completion_tokens, model from public.messages
    where chat_session_id = ${session} and role = 'assistant'`;
  // the stand-in counts words: 5 in the system prompt + 4 in the question; 3 chunks
  assert.deepEqual({ ...row }, { prompt_tokens: 9, completion_tokens: 3, model: "test-model" });
  const data = await chat(api, user, session, "Again", { protocol: "data" });
  assert.match(
    data.body,
    /d:\{"finishReason":"stop","usage":\{"promptTokens":\d+,"completionTokens":3\}\}\n$/,
  );
});

Deno.test("GET /api/usage totals the caller's replies and tokens per day and model, and nobody else's", async () => {
  const [me, other] = [await api.user(), await api.user()];
  for (
    const [who, model] of [[me, "test-model"], [me, "test-model"], [me, "other-model"], [
      other,
      "test-model",
    ]] as const
  ) {
    await chat(api, who, crypto.randomUUID(), "Hi there", { model });
  }
  const today = new Date().toISOString().slice(0, 10);
  const { status, body } = await json(send(api, me, "GET", `/api/usage?from=${today}&to=${today}`));
  assert.equal(status, 200);
  assert.deepEqual(
    body.map((r: { day: string; model: string; replies: number }) => [r.day, r.model, r.replies]),
    [
      [today, "other-model", 1],
      [today, "test-model", 2],
    ],
  );
  assert.ok(
    body.every((r: { prompt_tokens: number; completion_tokens: number; replies: number }) =>
      r.prompt_tokens > 0 && r.completion_tokens === 3 * r.replies
    ),
  );
  assert.deepEqual(
    (await json(send(api, me, "GET", "/api/usage?from=2020-01-01&to=2020-01-31"))).body,
    [],
  );
  assert.equal(
    (await json(send(api, me, "GET", "/api/usage"))).body.length,
    2,
    "the last 30 days by default",
  );
  for (
    const bad of ["from=yesterday", `from=${today}&to=2020-01-01`, "from=2020-01-01&to=2026-01-01"]
  ) {
    const answer = await json(send(api, me, "GET", `/api/usage?${bad}`));
    assert.equal(answer.status, 422, bad);
  }
});
