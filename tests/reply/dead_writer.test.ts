/**
 * A reply whose worker dies without warning (an OOM kill, a crashed isolate:
 * no `beforeunload`, nothing saved) is known dead within seconds, because its
 * writer stops touching its row: a re-attached stream ends with a clear error,
 * a stop answers at once, a retry of the message asks the model again at once,
 * the user's concurrent-reply slot is free, and what the dead worker had
 * written is kept. Before the writer is known dead, a retry is told the true
 * wait. The worker is a real process of the function, killed with SIGKILL.
 */
import assert from "node:assert/strict";
import { jwksOf } from "../../local/signing_keys.ts";
import { startTestApi, TEST_CURSOR_SECRET, type TestApi } from "../support/api.ts";
import { recordFigure } from "../support/figures.ts";
import { startFunctionProcess } from "../support/function_process.ts";
import { readUntil, send, stored } from "../support/http.ts";

Deno.test("a reply whose worker is killed is known dead within seconds: re-attach ends, stop and retry answer at once, the slot is free, its text kept", async () => {
  // the instance that survives, with a one-reply quota: a held slot would refuse the retry
  const api = await startTestApi({ env: { QUOTA_CONCURRENT_STREAMS: "1" } });
  const user = await api.user();
  const words = Array.from({ length: 100 }, (_, i) => `w${i} `);
  api.model.script(() => ({ chunks: words, delayMs: 100 }));
  const doomed = await startDoomedInstance(api);
  const session = crypto.randomUUID();
  const message = { messages: [{ role: "user", content: "Count", id: "m1" }] };
  try {
    const sending = await fetch(new URL(`api/sessions/${session}?protocol=text`, doomed.url), {
      method: "POST",
      headers: { ...user.auth, "content-type": "application/json" },
      body: JSON.stringify(message),
    });
    assert.equal(sending.status, 200);
    await readUntil(sending.body!.getReader(), "w5 ");
    // a reader re-attached (on the instance that survives): from then on the writer writes the
    // reply's text (every REPLY_PERSIST_MS), and the reader has a few words of it
    const reattached = await send(api, user, "GET", `/api/sessions/${session}/stream?protocol=sse`);
    assert.equal(reattached.status, 200);
    const followed = reattached.body!.getReader();
    const before = await readUntil(followed, "w5 ");
    const modelCalls = api.model.requests.length;
    // an instance without the quota, which would answer 429 for the held slot first; started
    // before the kill: the writer renews its lease once less than half of it (2.5 s) is left,
    // so it may be known dead 2.5 s after the kill, sooner than a loaded machine starts an API
    const unlimited = await startTestApi({
      db: api.db,
      env: { SUPABASE_JWKS: JSON.stringify(jwksOf(api.key)) },
    });
    await doomed.stop("SIGKILL");
    const killedAt = performance.now();

    // not yet known dead: a retry is told to come back when it would be
    const early = await send(
      unlimited,
      user,
      "POST",
      `/api/sessions/${session}?protocol=text`,
      message,
    );
    await unlimited.model.close();
    assert.equal(early.status, 409);
    await early.body?.cancel();
    const wait = Number(early.headers.get("retry-after"));
    assert.ok(wait >= 1 && wait <= 5, `Retry-After ${wait}`);

    // the re-attached stream ends with an error once the writer is known dead (well before the
    // 300 s the row would take to lapse)
    const rest = async () => {
      const decoder = new TextDecoder();
      let text = before;
      for (let r = await followed.read(); !r.done; r = await followed.read()) {
        text += decoder.decode(r.value, { stream: true });
      }
      return text;
    };
    const events = await Promise.race([
      rest(),
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error("the re-attached stream did not end")), 15_000)
      ),
    ]);
    const detected = (performance.now() - killedAt) / 1000;
    const deltas = events.split("\n\n").filter((e) => e.startsWith("event: delta"))
      .map((e) => JSON.parse(e.split("data: ")[1]!).content).join("");
    assert.match(deltas, /^w0 w1 w2 w3 w4 w5 /);
    assert.match(events, /event: error\ndata: .*"finish_reason":"shutdown".*stopped before/);
    assert.ok(detected < 8, `known dead after ${detected.toFixed(1)} s`);
    recordFigure(
      "A reply whose worker is killed (SIGKILL, no beforeunload)",
      "known dead after",
      `${detected.toFixed(1)} s (lease 5 s)`,
    );

    // what the dead worker had written is the stored reply, marked as cut short: what the
    // follower was sent
    const [, kept] = await stored(api, session);
    assert.equal(kept!.finish_reason, "shutdown");
    assert.equal(kept!.content, deltas);

    // a stop answers at once: nothing streams any more
    const started = performance.now();
    const stop = await send(api, user, "DELETE", `/api/sessions/${session}/stream`);
    assert.equal(stop.status, 204);
    assert.ok(performance.now() - started < 1000);

    // a retry asks the model again, at once, within the one-reply quota
    api.model.script(() => ({ chunks: ["again"] }));
    const retry = await send(api, user, "POST", `/api/sessions/${session}?protocol=text`, message);
    assert.equal(retry.status, 200);
    assert.equal(await retry.text(), "again");
    await api.idle();
    assert.equal(api.model.requests.length, modelCalls + 1);
    const [, answer] = await stored(api, session);
    assert.deepEqual([answer!.content, answer!.finish_reason], ["again", "stop"]);
  } finally {
    await doomed.stop("SIGKILL");
    await api.idle();
    await api.model.close();
  }
});

Deno.test("a reply nobody followed, whose worker is killed, is stored empty as shutdown: its text was never written", async () => {
  const api = await startTestApi();
  const user = await api.user();
  api.model.script(() => ({
    chunks: Array.from({ length: 100 }, (_, i) => `w${i} `),
    delayMs: 50,
  }));
  const doomed = await startDoomedInstance(api);
  const session = crypto.randomUUID();
  try {
    const sending = await fetch(new URL(`api/sessions/${session}?protocol=text`, doomed.url), {
      method: "POST",
      headers: { ...user.auth, "content-type": "application/json" },
      body: JSON.stringify({ messages: [{ role: "user", content: "Count" }] }),
    });
    assert.equal(sending.status, 200);
    await readUntil(sending.body!.getReader(), "w5 ");
    await new Promise((resolve) => setTimeout(resolve, 600));
    await doomed.stop("SIGKILL");
    // a stop finds it streaming until it is known dead, then stored as it was in Postgres
    const stop = await send(api, user, "DELETE", `/api/sessions/${session}/stream`);
    assert.equal(stop.status, 200);
    const body = await stop.json();
    assert.deepEqual([body.content, body.finish_reason], ["", "shutdown"]);
    const [, kept] = await stored(api, session);
    assert.deepEqual([kept!.content, kept!.finish_reason], ["", "shutdown"]);
  } finally {
    await doomed.stop("SIGKILL");
    await api.idle();
    await api.model.close();
  }
});

/** A second instance of the function, in a process of its own (to be killed), on `api`'s database and model. */
function startDoomedInstance(api: TestApi) {
  return startFunctionProcess({
    SUPABASE_DB_URL: api.db.url,
    SUPABASE_JWKS: JSON.stringify(jwksOf(api.key)),
    OPENAI_API_KEY: "sk-test",
    OPENAI_BASE_URL: api.model.baseURL,
    OPENAI_MODEL: "test-model",
    CURSOR_SECRET: TEST_CURSOR_SECRET,
    TITLE_GENERATION: "false",
  });
}
