/** Per-user quotas, counted in Postgres: 429 with Retry-After before anything is stored, even under a burst. */
import assert from "node:assert/strict";
import { startTestApi } from "../support/api.ts";
import { chat, json, send, stored } from "../support/http.ts";

const countOf = async (api: Awaited<ReturnType<typeof startTestApi>>, userId: string) =>
  (await api.db.admin`
    select count(*)::int as n from public.messages m join public.chat_sessions s on s.id = m.chat_session_id
    where s.user_id = ${userId} and m.role = 'user'`)[0]!.n;

Deno.test("the daily message limit: 429 naming it, with Retry-After, and nothing stored", async () => {
  const api = await startTestApi({ env: { QUOTA_MESSAGES_PER_DAY: "3" } });
  const user = await api.user();
  const session = crypto.randomUUID();
  for (let i = 0; i < 3; i++) {
    assert.equal((await chat(api, user, session, `message ${i}`)).status, 200);
  }
  const calls = api.model.requests.length;
  const other = crypto.randomUUID();
  const response = await send(api, user, "POST", `/api/sessions/${other}`, {
    messages: [{ role: "user", content: "one too many" }],
  });
  assert.equal(response.status, 429);
  const retryAfter = Number(response.headers.get("retry-after"));
  assert.ok(retryAfter > 86_000 && retryAfter <= 86_400, String(retryAfter));
  assert.match(
    (await response.json()).detail,
    /Daily message limit reached: 3 messages per 24 hours/,
  );
  assert.deepEqual(await stored(api, other), []);
  const [row] = await api.db
    .admin`select count(*)::int as n from public.chat_sessions where id = ${other}`;
  assert.equal(row!.n, 0, "no session was created either");
  assert.equal(api.model.requests.length, calls);
  // another user is not affected
  assert.equal((await chat(api, await api.user(), crypto.randomUUID(), "hi")).status, 200);
});

Deno.test("a burst of sends cannot race past the daily limit", async () => {
  const api = await startTestApi({ env: { QUOTA_MESSAGES_PER_DAY: "3" } });
  const user = await api.user();
  const replies = await Promise.all(
    Array.from({ length: 12 }, (_, i) => chat(api, user, crypto.randomUUID(), `burst ${i}`)),
  );
  const statuses = replies.map((r) => r.status).sort();
  assert.deepEqual(statuses, [...Array(3).fill(200), ...Array(9).fill(429)]);
  assert.equal(await countOf(api, user.id), 3);
});

Deno.test("the concurrent reply limit: only so many stream at once, and a freed slot can be used again", async () => {
  const api = await startTestApi({
    env: { QUOTA_CONCURRENT_STREAMS: "2", QUOTA_REPLY_SLOT_SECONDS: "60", REPLY_MAX_SECONDS: "20" },
  });
  api.model.script(() => ({ chunks: Array.from({ length: 10 }, (_, i) => `w${i} `), delayMs: 30 }));
  const user = await api.user();
  const replies = await Promise.all(
    Array.from({ length: 6 }, (_, i) => chat(api, user, crypto.randomUUID(), `stream ${i}`)),
  );
  const refused = replies.filter((r) => r.status === 429);
  assert.equal(replies.filter((r) => r.status === 200).length, 2);
  assert.equal(refused.length, 4);
  for (const r of refused) {
    // until the first running reply's slot lapses at the latest (it was taken moments ago)
    const retryAfter = Number(r.headers.get("retry-after"));
    assert.ok(retryAfter >= 50 && retryAfter <= 60, String(retryAfter));
    assert.match(
      JSON.parse(r.body).detail,
      /Concurrent reply limit reached: 2 replies streaming at a time/,
    );
  }
  assert.equal(await countOf(api, user.id), 2, "refused sends stored nothing");
  // the two replies were stored, which freed their slots
  const [slots] = await api.db.admin`select count(*)::int as n from chat_private.replies`;
  assert.equal(slots!.n, 0);
  assert.equal((await chat(api, user, crypto.randomUUID(), "again")).status, 200);
});

Deno.test("0 switches a limit off", async () => {
  const api = await startTestApi({
    env: { QUOTA_MESSAGES_PER_DAY: "0", QUOTA_CONCURRENT_STREAMS: "0" },
  });
  const user = await api.user();
  const replies = await Promise.all(
    Array.from({ length: 8 }, () => chat(api, user, crypto.randomUUID(), "hi")),
  );
  assert.deepEqual(replies.map((r) => r.status), Array(8).fill(200));
  const { body } = await json(send(api, user, "GET", "/api/sessions"));
  assert.equal(body.length, 8);
});

Deno.test("deleting every session does not give the daily message count back", async () => {
  const api = await startTestApi({ env: { QUOTA_MESSAGES_PER_DAY: "3" } });
  const user = await api.user();
  for (let i = 0; i < 3; i++) {
    assert.equal((await chat(api, user, crypto.randomUUID(), `message ${i}`)).status, 200);
  }
  assert.equal((await send(api, user, "DELETE", "/api/empty-sessions")).status, 200);
  assert.equal(await countOf(api, user.id), 0, "the history is gone");
  const again = await chat(api, user, crypto.randomUUID(), "a fresh start?");
  assert.equal(again.status, 429);
  assert.match(JSON.parse(again.body).detail, /Daily message limit reached/);
});

Deno.test("Retry-After for the daily limit is when enough of the day's messages have left the window", async () => {
  const api = await startTestApi({ env: { QUOTA_MESSAGES_PER_DAY: "3" } });
  const user = await api.user();
  // five sends in the last 24 hours (the limit was higher then): the count falls below 3 when
  // the three oldest have left, the third of them 21 hours after it was sent, i.e. in 3 hours
  await api.db.admin`
    insert into chat_private.message_sends (user_id, sent_at)
    select ${user.id}, now() - make_interval(hours => h) from unnest(array[23, 22, 21, 20, 19]) h`;
  const response = await send(api, user, "POST", `/api/sessions/${crypto.randomUUID()}`, {
    messages: [{ role: "user", content: "now?" }],
  });
  assert.equal(response.status, 429);
  const retryAfter = Number(response.headers.get("retry-after"));
  assert.ok(Math.abs(retryAfter - 3 * 3600) <= 2, String(retryAfter));
  // and sends older than the window count for nothing
  await api.db.admin`
    update chat_private.message_sends set sent_at = now() - interval '25 hours'
    where user_id = ${user.id} and sent_at < now() - interval '20 hours 30 minutes'`;
  assert.equal((await chat(api, user, crypto.randomUUID(), "now")).status, 200);
});

Deno.test("a reply slot is freed when the reply cannot be saved", async () => {
  const api = await startTestApi({ env: { QUOTA_CONCURRENT_STREAMS: "1" } });
  // a fault in the database: this reply's insert fails, whatever the code does
  await api.db.admin`
    alter table public.messages add constraint test_refuses_doomed check (content <> 'doomed reply')`;
  api.model.script(() => ({ chunks: ["doomed", " reply"] }));
  const user = await api.user();
  const session = crypto.randomUUID();
  assert.equal((await chat(api, user, session, "first")).status, 200);
  assert.ok(api.logs.some((line) => line.includes("saving the reply failed")), api.logs.join("\n"));
  assert.deepEqual((await stored(api, session)).map((m) => m.role), ["user"]);
  const [slots] = await api.db.admin`select count(*)::int as n from chat_private.replies`;
  assert.equal(slots!.n, 0);
  api.model.script(() => ({ chunks: ["fine"] }));
  assert.equal((await chat(api, user, crypto.randomUUID(), "second")).status, 200);
});

Deno.test("a reply slot is freed when its session is deleted while the reply streams", async () => {
  const api = await startTestApi({ env: { QUOTA_CONCURRENT_STREAMS: "1" } });
  api.model.script(() => ({ chunks: Array.from({ length: 20 }, (_, i) => `w${i} `), delayMs: 20 }));
  const user = await api.user();
  const session = crypto.randomUUID();
  const response = await send(api, user, "POST", `/api/sessions/${session}`, {
    messages: [{ role: "user", content: "long one" }],
  });
  assert.equal(response.status, 200);
  assert.equal((await send(api, user, "DELETE", `/api/sessions/${session}`)).status, 200);
  await response.text();
  await api.idle();
  const [slots] = await api.db.admin`select count(*)::int as n from chat_private.replies`;
  assert.equal(slots!.n, 0);
  assert.deepEqual(api.logs, []);
  api.model.script(() => ({ chunks: ["next"] }));
  assert.equal((await chat(api, user, crypto.randomUUID(), "next")).status, 200);
});
