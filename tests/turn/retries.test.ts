/**
 * One model call per message id: a retry after an unfinished reply asks the
 * model again and its reply takes the unfinished one's place; concurrent
 * sends of one id make one model call; retries count against the daily
 * quota.
 */
import assert from "node:assert/strict";
import { asCaller, type Tx } from "../../supabase/functions/api/database.ts";
import { startTestApi, type TestUser } from "../support/api.ts";
import { sqlState, userClaims } from "../support/fixtures.ts";
import { eventually } from "../support/eventually.ts";
import { fullScale, recordFigure } from "../support/figures.ts";
import { chat, readUntil, send, stored } from "../support/http.ts";

const api = await startTestApi();
const hello = () => ({ chunks: ["Hello", " there", "!"] });
const RETRIES = "Abuse: retries and concurrent duplicates of one message id";
/** concurrent sends of one message id */
const duplicates = fullScale ? 16 : 4;

for (const ending of ["client_closed", "model_error", "timeout", "max_duration", "shutdown"]) {
  Deno.test(`a retry after a reply that ended ${ending} asks the model again with a prompt ending in the user's message, and its reply takes the unfinished one's place`, async () => {
    const user = await api.user();
    const session = crypto.randomUUID();
    api.model.script(hello);
    assert.equal((await chat(api, user, session, "First question", { id: "m-1" })).status, 200);
    // the model breaks off after some words: stored as model_error, then marked as the ending under test
    api.model.script(() => ({ chunks: ["Half", " an"], fault: { after: 2, kind: "die" } }));
    assert.equal((await chat(api, user, session, "Second question", { id: "m-2" })).status, 200);
    await api.db.admin`
      update public.messages set finish_reason = ${ending}
      where chat_session_id = ${session} and content = 'Half an'`;
    const calls = api.model.requests.length;

    api.model.script(hello);
    const retry = await chat(api, user, session, "Second question", {
      id: "m-2",
      protocol: "text",
    });
    assert.equal(retry.status, 200);
    assert.equal(retry.body, "Hello there!");
    assert.equal(api.model.requests.length, calls + 1, "the model was asked again, once");
    // the prompt: the history up to the retried message, never the unfinished reply
    assert.deepEqual(
      api.model.requests.at(-1)!.messages.map((m) => [m.role, m.content]).slice(1),
      [
        ["user", "First question"],
        ["assistant", "Hello there!"],
        ["user", "Second question"],
      ],
    );
    // one answer per user message
    assert.deepEqual(
      (await stored(api, session)).map((m) => [m.role, m.content, m.finish_reason]),
      [
        ["user", "First question", null],
        ["assistant", "Hello there!", "stop"],
        ["user", "Second question", null],
        ["assistant", "Hello there!", "stop"],
      ],
    );
    recordFigure(RETRIES, `retry after ${ending}: model calls, answers to the message`, "1, 1");
    // and a further retry replays the completed reply without calling the model
    const again = await chat(api, user, session, "Second question", {
      id: "m-2",
      protocol: "text",
    });
    assert.equal(again.body, "Hello there!");
    assert.equal(api.model.requests.length, calls + 1);
  });
}

/**
 * `duplicates` sends of one message at once: one gets 200 and the rest 409, the model is called
 * once and the session holds the message and one finished reply; records that as `figure`.
 */
async function sendAtOnce(
  user: TestUser,
  session: string,
  message: { content: string; id: string },
  figure: string,
) {
  const calls = api.model.requests.length;
  const responses = await Promise.all(
    Array.from(
      { length: duplicates },
      () =>
        send(api, user, "POST", `/api/sessions/${session}?protocol=text`, {
          messages: [{ role: "user", ...message }],
        }),
    ),
  );
  const answers = await Promise.all(responses.map(async (r) => ({
    status: r.status,
    retryAfter: r.headers.get("retry-after"),
    body: await r.text(),
  })));
  await api.idle();
  assert.deepEqual(answers.map((a) => a.status).sort(), [
    200,
    ...Array(duplicates - 1).fill(409),
  ]);
  assert.equal(api.model.requests.length, calls + 1, "one model call");
  const rows = await stored(api, session);
  assert.deepEqual(rows.map((m) => [m.role, m.finish_reason]), [
    ["user", null],
    ["assistant", "stop"],
  ]);
  recordFigure(RETRIES, figure, `${api.model.requests.length - calls}, ${rows.length - 1}`);
  return answers;
}

Deno.test("concurrent sends of one message id make one model call and store one reply; the others get 409 with Retry-After", async () => {
  const user = await api.user();
  const session = crypto.randomUUID();
  api.model.script(() => ({ chunks: Array.from({ length: 10 }, (_, i) => `w${i} `), delayMs: 40 }));
  const answers = await sendAtOnce(
    user,
    session,
    { content: "Once only", id: "same-id" },
    `${duplicates} concurrent sends of one new message id: model calls, stored replies`,
  );
  for (const { status, retryAfter, body } of answers) {
    if (status !== 409) continue;
    assert.equal(JSON.parse(body).detail, "a reply to this message is already being written");
    // the true wait: until the writer, alive now, would be known dead if it stopped reporting
    assert.ok(Number(retryAfter) >= 1 && Number(retryAfter) <= 5, `Retry-After ${retryAfter}`);
  }
  api.model.script(hello);
});

Deno.test("concurrent retries of an unfinished reply make one model call and leave one answer", async () => {
  const user = await api.user();
  const session = crypto.randomUUID();
  api.model.script(() => ({ status: 500 }));
  assert.equal((await chat(api, user, session, "Again", { id: "r-1" })).status, 502);
  api.model.script(() => ({ chunks: Array.from({ length: 10 }, (_, i) => `w${i} `), delayMs: 40 }));
  await sendAtOnce(
    user,
    session,
    { content: "Again", id: "r-1" },
    `${duplicates} concurrent retries of an unfinished reply: model calls, stored replies`,
  );
  api.model.script(hello);
});

Deno.test("a retry that asks the model again counts against the daily quota", async () => {
  const limited = await startTestApi({ db: api.db, env: { QUOTA_MESSAGES_PER_DAY: "2" } });
  limited.model.script(() => ({ status: 500 }));
  const user = await limited.user();
  const session = crypto.randomUUID();
  assert.equal((await chat(limited, user, session, "Costly", { id: "q-1" })).status, 502);
  assert.equal((await chat(limited, user, session, "Costly", { id: "q-1" })).status, 502);
  const calls = limited.model.requests.length;
  const third = await chat(limited, user, session, "Costly", { id: "q-1" });
  assert.equal(third.status, 429, third.body);
  assert.equal(limited.model.requests.length, calls, "no model call past the quota");
  recordFigure(
    RETRIES,
    "retries of an unfinished reply past the daily quota that reached the model",
    0,
  );
  const [row] = await api.db.admin`
    select count(*)::int as n from chat_private.message_sends where user_id = ${user.id}`;
  assert.equal(row!.n, 2);
  await limited.model.close();
});

Deno.test("a retry of a message that later messages followed gets 409 and calls no model", async () => {
  const user = await api.user();
  const session = crypto.randomUUID();
  api.model.script(() => ({ status: 500 }));
  assert.equal((await chat(api, user, session, "Early", { id: "e-1" })).status, 502);
  api.model.script(hello);
  assert.equal((await chat(api, user, session, "Later", { id: "e-2" })).status, 200);
  const calls = api.model.requests.length;
  const retry = await chat(api, user, session, "Early", { id: "e-1" });
  assert.equal(retry.status, 409);
  assert.match(JSON.parse(retry.body).detail, /Later messages followed this one/);
  assert.equal(api.model.requests.length, calls);
});

Deno.test("a retry that replays a completed reply is answered at the daily limit and not counted", async () => {
  const limited = await startTestApi({ db: api.db, env: { QUOTA_MESSAGES_PER_DAY: "1" } });
  const user = await limited.user();
  const session = crypto.randomUUID();
  const first = await chat(limited, user, session, "Just one", { id: "p-1", protocol: "text" });
  assert.equal(first.status, 200);
  const calls = limited.model.requests.length;
  const replay = await chat(limited, user, session, "Just one", { id: "p-1", protocol: "text" });
  assert.equal(replay.status, 200, replay.body);
  assert.equal(replay.body, first.body);
  assert.equal(limited.model.requests.length, calls);
  const [row] = await api.db.admin`
    select count(*)::int as n from chat_private.message_sends where user_id = ${user.id}`;
  assert.equal(row!.n, 1);
  // a new message is still refused, and stores nothing
  assert.equal((await chat(limited, user, session, "One more", { id: "p-2" })).status, 429);
  assert.equal((await stored(api, session)).length, 2);
  await limited.model.close();
});

const slowWords = Array.from({ length: 60 }, (_, i) => `word${i} `);

Deno.test("after the client really disconnected, a reply asked to go on does: a retry meanwhile is told to wait, a retry after it gets the stored reply", async () => {
  const server = api.listen();
  const user = await api.user();
  const session = crypto.randomUUID();
  try {
    api.model.script(() => ({ chunks: slowWords, delayMs: 30 }));
    const client = new AbortController();
    // a plain-text client's leaving stops its reply unless it asks for the reply to go on
    const query = "?protocol=text&on_disconnect=continue";
    const response = await fetch(`${server.url}/api/sessions/${session}${query}`, {
      method: "POST",
      headers: { ...user.auth, "content-type": "application/json" },
      body: JSON.stringify({ messages: [{ role: "user", content: "Talk a lot", id: "c-1" }] }),
      signal: client.signal,
    });
    const reader = response.body!.getReader();
    await readUntil(reader, "word3");
    client.abort();
    await reader.cancel().catch(() => {});
    const requestsBefore = api.model.requests.length;
    api.model.script(hello);
    const meanwhile = await chat(api, user, session, "Talk a lot", { id: "c-1", protocol: "text" });
    assert.equal(meanwhile.status, 409);
    assert.ok(meanwhile.headers.get("retry-after"));
    await eventually(
      () => stored(api, session),
      (rows) => rows[1]?.finish_reason === "stop",
      "the whole reply",
    );
    const retry = await chat(api, user, session, "Talk a lot", { id: "c-1", protocol: "text" });
    assert.equal(retry.body, slowWords.join(""));
    assert.equal(api.model.requests.length, requestsBefore, "the model was not asked again");
    assert.deepEqual(
      (await stored(api, session)).map((m) => [m.role, m.content, m.finish_reason]),
      [["user", "Talk a lot", null], ["assistant", slowWords.join(""), "stop"]],
    );
  } finally {
    await api.idle();
    await server.close();
    api.model.script(hello);
  }
});

Deno.test("after a reply cut at REPLY_MAX_SECONDS, a retry asks the model again and its reply replaces the cut one", async () => {
  const short = await startTestApi({ db: api.db, env: { REPLY_MAX_SECONDS: "1" } });
  short.model.script(() => ({ chunks: slowWords, delayMs: 30 }));
  const user = await short.user();
  const session = crypto.randomUUID();
  await chat(short, user, session, "Go on", { id: "d-1" });
  assert.equal((await stored(api, session))[1]!.finish_reason, "max_duration");
  short.model.script(hello);
  const retry = await chat(short, user, session, "Go on", { id: "d-1", protocol: "text" });
  assert.equal(retry.body, "Hello there!");
  assert.deepEqual(short.model.requests.at(-1)!.messages.map((m) => m.role), ["system", "user"]);
  assert.deepEqual(
    (await stored(api, session)).map((m) => [m.role, m.finish_reason]),
    [["user", null], ["assistant", "stop"]],
  );
  await short.model.close();
});

Deno.test("a reply cannot be created or read through the Data API, nor for another user's message", async () => {
  const [me, other] = [await api.user(), await api.user()];
  const session = crypto.randomUUID();
  api.model.script(() => ({ status: 500 }));
  await chat(api, me, session, "Mine", { id: "h-1" });
  api.model.script(hello);
  // a retry of my unfinished message: it would create the reply again
  const retry = (tx: Tx) =>
    tx<{ outcome: string }[]>`
      select outcome from chat_private.send_message(${session}, 'Mine', 'h-1', 1, 1000, 0, 0, 60,
                                                    'test-model', 'text')`;
  const viaPostgrest = await sqlState(() =>
    asCaller(api.db.admin, userClaims(me.id), async (tx) => {
      await tx`select set_config('request.method', 'POST', true)`;
      await retry(tx);
    })
  );
  assert.equal(viaPostgrest, "42501");
  // another user learns nothing of my session: to them it does not exist
  const [theirs] = await asCaller(api.db.admin, userClaims(other.id), retry);
  assert.equal(theirs!.outcome, "not_found");
  const [seen] = await asCaller(
    api.db.admin,
    userClaims(other.id),
    (tx) => tx`select chat_private.write_partial(gen_random_uuid(), ${session}, 'x', 0) as state`,
  );
  assert.equal(seen!.state, "session_deleted");
  const [replies] = await api.db.admin`
    select count(*)::int as n from chat_private.replies where user_id in (${me.id}, ${other.id})`;
  assert.equal(replies!.n, 0, "no reply was created");
});
