/**
 * Replies inside the platform's limits: one running past REPLY_MAX_SECONDS is
 * stopped and saved as `max_duration`; when the worker is retired
 * (`beforeunload`) every reply still streaming is stopped and saved as
 * `shutdown`, each protocol telling its client where it can.
 */
import assert from "node:assert/strict";
import { saveRepliesOnRetirement } from "../../supabase/functions/api/reply/in_flight.ts";
import { parseConfig } from "../../supabase/functions/api/config.ts";
import { startTestApi, TEST_CURSOR_SECRET } from "../support/api.ts";
import { eventually } from "../support/eventually.ts";
import { send, stored } from "../support/http.ts";

const words = Array.from({ length: 200 }, (_, i) => `word${i} `);
const whole = words.join("");

Deno.test("a reply still streaming at REPLY_MAX_SECONDS is stopped and saved as max_duration", async () => {
  const api = await startTestApi({ env: { REPLY_MAX_SECONDS: "1" } });
  const user = await api.user();
  // a first message loads the tokenizer's ranks: not part of what the limit is tested on
  api.model.script(() => ({ chunks: ["warm"] }));
  await (await send(api, user, "POST", `/api/sessions/${crypto.randomUUID()}`, {
    messages: [{ role: "user", content: "Warm up" }],
  })).text();
  await api.idle();
  // 200 words 25 ms apart: about 5 s, far past the 1 s limit
  api.model.script(() => ({ chunks: words, delayMs: 25 }));
  for (const protocol of ["sse", "data", "text"]) {
    const session = crypto.randomUUID();
    const started = performance.now();
    const response = await send(
      api,
      user,
      "POST",
      `/api/sessions/${session}?protocol=${protocol}`,
      {
        messages: [{ role: "user", content: "Talk for a long time" }],
      },
    );
    assert.equal(response.status, 200);
    const body = await response.text();
    const took = performance.now() - started;
    await api.idle();
    assert.ok(took >= 1000, `${protocol}: the reply was cut after ${took} ms, before the limit`);
    if (protocol === "sse") {
      assert.match(body, /event: done\ndata: \{[^\n]*"finish_reason":"max_duration"/);
    }
    if (protocol === "data") assert.match(body, /d:\{"finishReason":"length"/);
    const [, reply] = await stored(api, session);
    assert.equal(reply!.finish_reason, "max_duration", protocol);
    assert.ok(reply!.content.startsWith("word0 word1 "), reply!.content);
    assert.ok(reply!.content.length < whole.length && whole.startsWith(reply!.content));
    await eventually(
      () => Promise.resolve(api.model.openStreams),
      (n) => n === 0,
      "upstream closed",
    );
  }
  assert.equal(api.app.replies.size, 0, "finished replies leave the registry");
});

Deno.test("a reply that finishes before REPLY_MAX_SECONDS is untouched", async () => {
  const api = await startTestApi({ env: { REPLY_MAX_SECONDS: "1" } });
  api.model.script(() => ({ chunks: ["Quick", " answer"], delayMs: 10 }));
  const session = crypto.randomUUID();
  const response = await send(
    api,
    await api.user(),
    "POST",
    `/api/sessions/${session}?protocol=text`,
    {
      messages: [{ role: "user", content: "Be brief" }],
    },
  );
  assert.equal(await response.text(), "Quick answer");
  await api.idle();
  // well past the deadline: the finished reply's timer must not fire into anything
  await new Promise((resolve) => setTimeout(resolve, 1200));
  assert.deepEqual((await stored(api, session)).map((m) => [m.content, m.finish_reason]), [
    ["Be brief", null],
    ["Quick answer", "stop"],
  ]);
});

Deno.test("beforeunload with replies in flight stops each and saves it as shutdown", async () => {
  const api = await startTestApi();
  api.model.script(() => ({ chunks: words, delayMs: 25 }));
  const user = await api.user();
  const kept: Promise<unknown>[] = [];
  const logs: string[] = [];
  // wired as index.ts wires it, on the global scope where the Edge Runtime dispatches the event
  const unhook = saveRepliesOnRetirement(api.app.replies, {
    waitUntil: (work) => kept.push(work),
    log: (message) => logs.push(message),
  });
  try {
    const protocols = ["text", "data", "sse"];
    const sessions = protocols.map(() => crypto.randomUUID());
    const readers = await Promise.all(protocols.map(async (protocol, i) => {
      const response = await send(
        api,
        user,
        "POST",
        `/api/sessions/${sessions[i]}?protocol=${protocol}`,
        { messages: [{ role: "user", content: "Keep going" }] },
      );
      assert.equal(response.status, 200);
      const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
      let received = "";
      while (!received.includes("word2")) received += (await reader.read()).value ?? "";
      return { reader, received };
    }));
    assert.equal(api.app.replies.size, 3);

    globalThis.dispatchEvent(
      new CustomEvent("beforeunload", { detail: { reason: "WallClockTime" } }),
    );
    assert.equal(kept.length, 1, "the saves are handed to waitUntil");
    await kept[0];
    assert.equal(api.app.replies.size, 0);
    assert.match(logs.join("\n"), /WallClockTime.*3 replies/);

    // every reply is stored by the time waitUntil's promise settles
    for (const [i, protocol] of protocols.entries()) {
      const [, reply] = await stored(api, sessions[i]!);
      assert.equal(reply?.finish_reason, "shutdown", protocol);
      assert.ok(reply!.content.startsWith("word0 word1 word2"), reply!.content);
      assert.ok(reply!.content.length < whole.length && whole.startsWith(reply!.content));
      let rest = readers[i]!.received;
      for (
        let next = await readers[i]!.reader.read();
        !next.done;
        next = await readers[i]!.reader.read()
      ) {
        rest += next.value;
      }
      if (protocol === "sse") {
        assert.match(
          rest,
          /event: error\ndata: \{[^\n]*"finish_reason":"shutdown","detail":"The server stopped/,
        );
      }
      if (protocol === "data") {
        assert.match(rest, /\n3:"The server stopped[^\n]*\nd:\{"finishReason":"error"/);
      }
    }
    await eventually(
      () => Promise.resolve(api.model.openStreams),
      (n) => n === 0,
      "upstream closed",
    );

    // with nothing in flight the event asks for nothing
    globalThis.dispatchEvent(new CustomEvent("beforeunload", { detail: { reason: "EarlyDrop" } }));
    assert.equal(kept.length, 1);
  } finally {
    unhook();
    await api.idle();
  }
});

Deno.test("a reply's handle must outlive the longest reply: QUOTA_REPLY_SLOT_SECONDS within REPLY_MAX_SECONDS + 30 fails the start", () => {
  const env = {
    SUPABASE_DB_URL: "postgres://postgres:postgres@127.0.0.1:5432/postgres",
    SUPABASE_URL: "https://abcdefghijklmnop.supabase.co",
    OPENAI_API_KEY: "sk-test",
    CURSOR_SECRET: TEST_CURSOR_SECRET,
  };
  assert.throws(
    () => parseConfig({ ...env, REPLY_MAX_SECONDS: "120", QUOTA_REPLY_SLOT_SECONDS: "150" }),
    /QUOTA_REPLY_SLOT_SECONDS: must be more than REPLY_MAX_SECONDS \+ 30/,
  );
  assert.equal(
    parseConfig({ ...env, REPLY_MAX_SECONDS: "120", QUOTA_REPLY_SLOT_SECONDS: "151" }).quotas
      .replySlotSeconds,
    151,
  );
});
