/** Per-user quotas, counted in Postgres: 429 with Retry-After before anything is stored, even under a burst. */
import assert from "node:assert/strict";
import { startTestApi } from "./support/api.ts";
import { chat, json, send, stored } from "./support/http.ts";

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
  const api = await startTestApi({ env: { QUOTA_CONCURRENT_STREAMS: "2" } });
  api.model.script(() => ({ chunks: Array.from({ length: 10 }, (_, i) => `w${i} `), delayMs: 30 }));
  const user = await api.user();
  const replies = await Promise.all(
    Array.from({ length: 6 }, (_, i) => chat(api, user, crypto.randomUUID(), `stream ${i}`)),
  );
  const refused = replies.filter((r) => r.status === 429);
  assert.equal(replies.filter((r) => r.status === 200).length, 2);
  assert.equal(refused.length, 4);
  for (const r of refused) {
    assert.equal(r.headers.get("retry-after"), "5");
    assert.match(
      JSON.parse(r.body).detail,
      /Concurrent reply limit reached: 2 replies streaming at a time/,
    );
  }
  assert.equal(await countOf(api, user.id), 2, "refused sends stored nothing");
  // the two replies were stored, which freed their slots
  const [slots] = await api.db.admin`select count(*)::int as n from public.reply_slots`;
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
