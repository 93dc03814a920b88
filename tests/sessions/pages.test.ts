/** Conversations that scale: keyset pages, generated titles, a token-budgeted prompt, recorded usage. */
import assert from "node:assert/strict";
import { countTokens } from "gpt-tokenizer/encoding/o200k_base";
import { createCursors } from "../../supabase/functions/api/cursors.ts";
import { startTestApi, TEST_CURSOR_SECRET, type TestApi, type TestUser } from "../support/api.ts";
import { addConversation, createSession } from "../support/fixtures.ts";
import { chat, json, send, stored } from "../support/http.ts";

const api = await startTestApi({
  env: { HISTORY_TOKEN_BUDGET: "300", HISTORY_TOKEN_BUDGETS: "other-model=120" },
});

/** Follows `Link: rel="next"` from `path` to the end; every page's body and headers. */
async function walk(api: TestApi, user: TestUser, path: string) {
  const pages: {
    body: { id: string; content?: string }[];
    link: string | null;
    next: string | null;
  }[] = [];
  let url: string | null = path;
  while (url) {
    const response = await send(api, user, "GET", url);
    assert.equal(response.status, 200, await response.clone().text());
    const link = response.headers.get("link");
    const next = response.headers.get("x-next-cursor");
    pages.push({ body: await response.json(), link, next });
    const target = link?.match(/^<([^>]+)>; rel="next"$/)?.[1];
    url = target
      ? new URL(target, `http://x${url}`).pathname + new URL(target, `http://x${url}`).search
      : null;
    if (pages.length > 50) assert.fail("too many pages");
  }
  return pages;
}

Deno.test("GET /api/sessions?limit pages through the caller's sessions in list order, the cursor in Link and X-Next-Cursor", async () => {
  const user = await api.user();
  for (let i = 0; i < 7; i++) await createSession(api.db.admin, user.id, `s${i}`);
  // two ties on updated_at: the order falls back to id
  await api.db.admin`update public.chat_sessions set updated_at = '2026-01-01T00:00:00Z'
                     where user_id = ${user.id} and title in ('s2', 's3')`;
  const full = (await json(send(api, user, "GET", "/api/sessions"))).body.map((s: { id: string }) =>
    s.id
  );
  const pages = await walk(api, user, "/api/sessions?limit=3");
  assert.deepEqual(pages.map((p) => p.body.length), [3, 3, 1]);
  assert.deepEqual(pages.flatMap((p) => p.body.map((s) => s.id)), full);
  for (const page of pages.slice(0, -1)) {
    assert.match(page.link!, /^<\?limit=3&before=[\w.-]+>; rel="next"$/);
    assert.ok(page.link!.includes(page.next!));
  }
  assert.equal(pages.at(-1)!.link, null);
  assert.equal(pages.at(-1)!.next, null);
  // and a browser may read them
  const exposed = (await send(api, user, "GET", "/api/sessions?limit=3", undefined, {
    origin: "https://app.example.com",
  }))
    .headers.get("access-control-expose-headers") ?? "";
  assert.match(exposed, /\blink\b/);
  assert.match(exposed, /\bx-next-cursor\b/);
});

Deno.test("GET /api/sessions/:id?limit pages from the newest messages back, each page in conversation order", async () => {
  const user = await api.user();
  const session = await createSession(api.db.admin, user.id);
  for (let i = 1; i <= 7; i++) {
    await api.db.admin`insert into public.messages (chat_session_id, role, content)
                       values (${session}, ${i % 2 ? "user" : "assistant"}, ${`m${i}`})`;
  }
  const pages = await walk(api, user, `/api/sessions/${session}?limit=3`);
  assert.deepEqual(pages.map((p) => p.body.map((m) => m.content)), [["m5", "m6", "m7"], [
    "m2",
    "m3",
    "m4",
  ], ["m1"]]);
  assert.deepEqual(Object.keys(pages[0]!.body[0]!), [
    "id",
    "chat_session_id",
    "role",
    "content",
    "created_at",
  ]);
});

Deno.test("without limit or before, the routes answer in full and send no Link", async () => {
  const user = await api.user();
  const session = await createSession(api.db.admin, user.id);
  for (const path of ["/api/sessions", `/api/sessions/${session}`]) {
    const response = await send(api, user, "GET", path);
    assert.equal(response.headers.get("link"), null);
    assert.equal(response.headers.get("x-next-cursor"), null);
    await response.body?.cancel();
  }
});

Deno.test("limit is clamped to 1..100, and must be a whole number", async () => {
  const user = await api.user();
  await api.db
    .admin`insert into public.chat_sessions (user_id) select ${user.id} from generate_series(1, 101)`;
  assert.equal((await json(send(api, user, "GET", "/api/sessions?limit=0"))).body.length, 1);
  const big = await send(api, user, "GET", "/api/sessions?limit=1000");
  assert.equal((await big.json()).length, 100);
  assert.match(big.headers.get("link") ?? "", /^<\?limit=100&before=/);
  const bad = await json(send(api, user, "GET", "/api/sessions?limit=ten"));
  assert.equal(bad.status, 422);
  assert.deepEqual(bad.body.detail[0].loc, ["query", "limit"]);
});

Deno.test("a forged, altered, foreign or misplaced cursor is a 422, never someone else's data", async () => {
  const [alice, bob] = [await api.user(), await api.user()];
  for (const who of [alice, bob]) {
    for (let i = 0; i < 3; i++) await createSession(api.db.admin, who.id, "secret of " + who.id);
  }
  const bobsCursor = (await send(api, bob, "GET", "/api/sessions?limit=1")).headers.get(
    "x-next-cursor",
  )!;
  const alicesCursor = (await send(api, alice, "GET", "/api/sessions?limit=1")).headers.get(
    "x-next-cursor",
  )!;
  const aliceSession = (await json(send(api, alice, "GET", "/api/sessions"))).body[0].id;
  const altered = alicesCursor.slice(0, -3) + (alicesCursor.endsWith("AAA") ? "BBB" : "AAA");
  for (
    const [path, why] of [
      [`/api/sessions?before=${bobsCursor}`, "another user's cursor"],
      [`/api/sessions?before=${altered}`, "an altered cursor"],
      ["/api/sessions?before=not-a-cursor", "a forged cursor"],
      [
        `/api/sessions/${aliceSession}?before=${alicesCursor}`,
        "a sessions cursor used for messages",
      ],
    ]
  ) {
    const { status, body } = await json(send(api, alice, "GET", path!));
    assert.equal(status, 422, why);
    assert.deepEqual(body.detail[0], {
      loc: ["query", "before"],
      msg: "not a valid cursor",
      type: "cursor_invalid",
    }, why);
  }
});

Deno.test("a well-signed cursor holding a malformed position is a 422, never a 500", async () => {
  const user = await api.user();
  const session = await createSession(api.db.admin, user.id, "Paged");
  // signed with the app's own secret: only the position is wrong
  const cursors = createCursors(TEST_CURSOR_SECRET);
  const cases: [path: string, scope: string, position: unknown][] = [
    ["/api/sessions", "sessions", ["not a time", session]],
    ["/api/sessions", "sessions", ["2026-02-30T10:00:00+00:00", session]],
    ["/api/sessions", "sessions", ["0000-01-01T00:00:00+00:00", session]],
    ["/api/sessions", "sessions", ["2026-11-25T10:00:00.123456+00:00", "not-a-uuid"]],
    ["/api/sessions", "sessions", ["2026-11-25T10:00:00+00:00"]],
    ["/api/sessions", "sessions", "2026-11-25T10:00:00+00:00"],
    ["/api/sessions?q=paged", "search:paged", -1],
    ["/api/sessions?q=paged", "search:paged", 0.5],
    ["/api/sessions?q=paged", "search:paged", "10"],
    [`/api/sessions/${session}`, `messages:${session}`, 2 ** 64],
    [`/api/sessions/${session}`, `messages:${session}`, "12"],
    [`/api/sessions/${session}`, `messages:${session}`, null],
  ];
  for (const [path, scope, position] of cases) {
    const cursor = await cursors.encode(`${user.id}:${scope}`, position);
    const separator = path.includes("?") ? "&" : "?";
    const why = `${path} ${JSON.stringify(position)}`;
    const { status, body } = await json(
      send(api, user, "GET", `${path}${separator}before=${cursor}`),
    );
    assert.equal(status, 422, why);
    assert.equal(body.detail[0].type, "cursor_invalid", why);
  }
  // the same signing with a good position is accepted: the cases above fail on their position alone
  const good = await cursors.encode(`${user.id}:sessions`, ["2999-01-01T00:00:00+00:00", session]);
  const { status, body } = await json(send(api, user, "GET", `/api/sessions?before=${good}`));
  assert.equal(status, 200);
  assert.deepEqual(body.map((s: { id: string }) => s.id), [session]);
});

// ---- generated titles --------------------------------------------------------

async function titled(
  env: Record<string, string>,
  titleScript: Parameters<TestApi["model"]["script"]>[0],
) {
  const withTitles = await startTestApi({ env: { TITLE_GENERATION: "true", ...env } });
  withTitles.model.script((request) =>
    request.stream ? { chunks: ["Sure", ", ", "here", " goes"], delayMs: 40 } : titleScript(request)
  );
  return withTitles;
}

const sessionRow = async (api: TestApi, id: string) =>
  (await api.db.admin<{ title: string; title_set_by: string }[]>`
    select title, title_set_by from public.chat_sessions where id = ${id}`)[0]!;

Deno.test("after a session's first message the model names it, in the background, and SSE and data streams announce it", async () => {
  const withTitles = await titled(
    { TITLE_MODEL: "other-model" },
    () => ({ chunks: ['"Voyage à Rome."'] }),
  );
  const user = await withTitles.user();
  for (const protocol of ["sse", "data"]) {
    const session = crypto.randomUUID();
    const reply = await chat(withTitles, user, session, "Je prépare un voyage à Rome", {
      protocol,
    });
    assert.equal(reply.status, 200);
    assert.deepEqual(await sessionRow(withTitles, session), {
      title: "Voyage à Rome",
      title_set_by: "model",
    });
    const announced = protocol === "sse"
      ? `event: title\ndata: {"session_id":"${session}","title":"Voyage à Rome"}\n\n`
      : `2:[{"type":"title","sessionId":"${session}","title":"Voyage à Rome"}]\n`;
    assert.ok(reply.body.includes(announced), reply.body);
  }
  const titleRequest = withTitles.model.requests.find((r) => !r.stream)!;
  assert.equal(titleRequest.model, "other-model");
  assert.equal(titleRequest.messages.at(-1)!.content, "Je prépare un voyage à Rome");
});

Deno.test("only the first exchange is named, and a rename by the user is never overwritten, even mid-generation", async () => {
  const withTitles = await titled({}, () => ({ chunks: ["Generated title"], delayMs: 400 }));
  const user = await withTitles.user();
  const session = crypto.randomUUID();
  const response = await send(withTitles, user, "POST", `/api/sessions/${session}`, {
    messages: [{ role: "user", content: "Hello" }],
  });
  // the user renames while the title is still being written
  const renamed = await json(
    send(withTitles, user, "PATCH", `/api/sessions/${session}/title`, { title: "Mine" }),
  );
  assert.equal(renamed.status, 200);
  await response.text();
  await withTitles.idle();
  assert.deepEqual(await sessionRow(withTitles, session), { title: "Mine", title_set_by: "user" });
  await chat(withTitles, user, session, "Second message");
  assert.equal(
    withTitles.model.requests.filter((r) => !r.stream).length,
    1,
    "asked for one title only",
  );
});

Deno.test("a failed title leaves 'New Chat - ...' in place and is logged; titles can be switched off", async () => {
  const failing = await titled({}, () => ({ status: 500 }));
  const user = await failing.user();
  const session = crypto.randomUUID();
  assert.equal((await chat(failing, user, session, "Hello")).status, 200);
  assert.match((await sessionRow(failing, session)).title, /^New Chat - /);
  assert.ok(
    failing.logs.some((line) => line.includes("title generation failed")),
    failing.logs.join("\n"),
  );

  const off = await titled({ TITLE_GENERATION: "false" }, () => ({ chunks: ["Never"] }));
  const other = await off.user();
  const quiet = crypto.randomUUID();
  await chat(off, other, quiet, "Hello");
  assert.match((await sessionRow(off, quiet)).title, /^New Chat - /);
  assert.equal(off.model.requests.filter((r) => !r.stream).length, 0);
});

// ---- token budget ------------------------------------------------------------

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

// ---- usage -------------------------------------------------------------------

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
