/**
 * Over a real socket: what a client leaving mid-stream does to its reply. A
 * reply outlives its connection only when its client can come back for it:
 * a client of the UI message stream (AI SDK 5+, which re-attaches) leaves and
 * the reply goes on, is stored whole and can be re-attached to; a client of
 * the data stream (ai 3.x/4.x, the original frontend, which cannot), of plain
 * text or of SSE (curl's Ctrl-C) stops it: the model call ends within a second
 * and the stored reply is what was streamed, marked `stopped`. A request
 * chooses otherwise with `?on_disconnect=stop|continue`.
 */
import assert from "node:assert/strict";
import { startTestApi } from "../support/api.ts";
import { eventually } from "../support/eventually.ts";
import { json, readUntil, send, stored } from "../support/http.ts";

const api = await startTestApi({ env: { REPLY_POLL_MS: "100" } });
const words = Array.from({ length: 60 }, (_, i) => `word${i} `);
const whole = words.join("");

/** The reply's text in what a client of each protocol received. */
function textOf(protocol: string, received: string): string {
  switch (protocol) {
    case "text":
      return received;
    case "data":
      return received.split("\n").filter((l) => l.startsWith("0:"))
        .map((l) => JSON.parse(l.slice(2)) as string).join("");
    case "sse":
      return received.split("\n\n").filter((e) => e.startsWith("event: delta\n"))
        .map((e) => JSON.parse(e.split("data: ")[1]!).content as string).join("");
    default:
      return received.split("\n\n").map((e) =>
        e.startsWith("data: {") ? JSON.parse(e.slice(6)) : {}
      )
        .filter((c) => c.type === "text-delta").map((c) => c.delta as string).join("");
  }
}

/** Starts a reply over a real socket, reads it until its fourth word, then drops the connection. */
async function leaveMidReply(url: string, protocol: string, onDisconnect?: string) {
  const user = await api.user();
  const session = crypto.randomUUID();
  const query = `?protocol=${protocol}` + (onDisconnect ? `&on_disconnect=${onDisconnect}` : "");
  const client = new AbortController();
  const response = await fetch(`${url}/api/sessions/${session}${query}`, {
    method: "POST",
    headers: { ...user.auth, "content-type": "application/json" },
    body: JSON.stringify({ messages: [{ role: "user", content: "Talk a lot" }] }),
    signal: client.signal,
  });
  assert.equal(response.status, 200);
  const reader = response.body!.getReader();
  const received = await readUntil(reader, "word3");
  client.abort();
  const leftAt = performance.now();
  await reader.cancel().catch(() => {});
  return { user, session, received: textOf(protocol, received), leftAt };
}

async function expectStopped(protocol: string, onDisconnect?: string) {
  api.model.script(() => ({ chunks: words, delayMs: 30 }));
  const server = api.listen();
  const abandonedBefore = api.model.abandonedAt.length;
  try {
    const left = await leaveMidReply(server.url, protocol, onDisconnect);
    const closed = await eventually(
      () => Promise.resolve(api.model.abandonedAt.slice(abandonedBefore)),
      (at) => at.length > 0,
      "the model's stream to be closed",
      5_000,
    );
    assert.ok(closed[0]! - left.leftAt < 1000, `closed ${closed[0]! - left.leftAt} ms after`);
    const [, reply] = await eventually(
      () => stored(api, left.session),
      (rows) => rows.length === 2,
      "the stored reply",
    );
    assert.equal(reply!.finish_reason, "stopped");
    assert.ok(left.received.includes("word3"), left.received);
    assert.equal(reply!.content, left.received, "stored: what the client had received");
    assert.equal(api.model.openStreams, 0);
    const [slots] = await api.db.admin`
      select count(*)::int as n from chat_private.replies where user_id = ${left.user.id}`;
    assert.equal(slots!.n, 0, "the reply's slot is freed");
  } finally {
    await api.idle();
    await server.close();
  }
}

async function expectGoesOn(protocol: string, onDisconnect?: string) {
  api.model.script(() => ({ chunks: words, delayMs: 30 }));
  const server = api.listen();
  const abandonedBefore = api.model.abandonedStreams;
  try {
    const left = await leaveMidReply(server.url, protocol, onDisconnect);
    // any connection can come back for it, and reads the whole of it
    const again = await fetch(`${server.url}/api/sessions/${left.session}/stream?protocol=text`, {
      headers: left.user.auth,
    });
    assert.equal(again.status, 200);
    assert.equal(await again.text(), whole);
    const [, reply] = await eventually(
      () => stored(api, left.session),
      (rows) => rows.length === 2,
      "the stored reply",
    );
    assert.equal(reply!.finish_reason, "stop");
    assert.equal(reply!.content, whole);
    assert.equal(api.model.openStreams, 0);
    assert.equal(api.model.abandonedStreams, abandonedBefore, "the model stream ran to its end");
  } finally {
    await api.idle();
    await server.close();
  }
}

for (const protocol of ["data", "text", "sse"]) {
  Deno.test(`${protocol} protocol: a client disconnecting mid-stream stops the reply; what it received is stored as stopped`, async () => {
    await expectStopped(protocol);
  });
  Deno.test(`${protocol} protocol with ?on_disconnect=continue: a client disconnecting leaves the model writing; the whole reply is stored and can be re-attached`, async () => {
    await expectGoesOn(protocol, "continue");
  });
}

Deno.test("ui protocol: a client disconnecting mid-stream leaves the model writing; the whole reply is stored and can be re-attached", async () => {
  await expectGoesOn("ui");
});

Deno.test("ui protocol with ?on_disconnect=stop: a client disconnecting stops the reply; what it received is stored as stopped", async () => {
  await expectStopped("ui", "stop");
});

Deno.test("?on_disconnect= names one of stop and continue, on both send routes: anything else is a 422 naming it, and nothing is stored", async () => {
  const user = await api.user();
  const session = crypto.randomUUID();
  const bad = await json(send(api, user, "POST", `/api/sessions/${session}?on_disconnect=later`, {
    messages: [{ role: "user", content: "Hi" }],
  }));
  assert.equal(bad.status, 422);
  assert.deepEqual(bad.body.detail.map((d: { loc: unknown[] }) => d.loc), [
    ["query", "on_disconnect"],
  ]);
  const chat = await json(send(api, user, "POST", `/api/chat?on_disconnect=STOP`, {
    id: session,
    messages: [{ id: "m1", role: "user", parts: [{ type: "text", text: "Hi" }] }],
  }));
  assert.equal(chat.status, 422);
  assert.deepEqual(chat.body.detail.map((d: { loc: unknown[] }) => d.loc), [
    ["query", "on_disconnect"],
  ]);
  assert.deepEqual(await stored(api, session), []);
});
