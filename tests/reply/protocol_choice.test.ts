/**
 * One function chooses the protocol of every reply's stream, for the sends
 * (POST /sessions/{id}, POST /chat) and the re-attaches (GET …/stream): what the
 * request names wins, then the protocol the reply was started in, then the
 * configured default.
 */
import assert from "node:assert/strict";
import type { Protocol } from "../../supabase/functions/api/reply/protocols.ts";
import {
  chooseOnDisconnect,
  chooseProtocol,
  type ProtocolAsk,
} from "../../supabase/functions/api/reply/response.ts";

const nothing: ProtocolAsk = { query: undefined, uiOnly: false, accept: undefined, stored: null };
const choose = (ask: Partial<ProtocolAsk>, fallback: Protocol = "data") =>
  chooseProtocol({ ...nothing, ...ask }, fallback);

Deno.test("a request naming nothing gets the configured default", () => {
  assert.equal(choose({}), "data");
  assert.equal(choose({}, "sse"), "sse");
  // what fetch sends by default names no protocol
  assert.equal(choose({ accept: "*/*" }), "data");
  assert.equal(choose({ accept: "text/event-stream;q=0, */*" }), "data");
});

Deno.test("a re-attach naming nothing speaks the protocol its reply was started in", () => {
  for (const stored of ["text", "data", "sse", "ui"] as const) {
    assert.equal(choose({ stored }, "data"), stored);
    assert.equal(choose({ stored, accept: "*/*" }, "text"), stored);
  }
});

Deno.test("?protocol= wins over everything", () => {
  for (const query of ["text", "data", "sse", "ui"] as const) {
    assert.equal(
      choose({ query, uiOnly: true, accept: "text/plain", stored: "sse" }),
      query,
    );
  }
});

Deno.test("an AI SDK 5+ client (UI messages, or the /chat routes) gets the UI message stream, whatever was stored", () => {
  assert.equal(choose({ uiOnly: true }), "ui");
  assert.equal(choose({ uiOnly: true, stored: "data" }), "ui");
  assert.equal(choose({ uiOnly: true, accept: "text/plain" }), "ui");
});

Deno.test("an explicit Accept names sse or text, over the stored protocol", () => {
  assert.equal(choose({ accept: "text/event-stream" }), "sse");
  assert.equal(choose({ accept: "text/plain", stored: "ui" }), "text");
  assert.equal(choose({ accept: "text/event-stream", stored: "data" }), "sse");
  // by quality: the preferred named type wins; one refused with q=0 does not count
  assert.equal(choose({ accept: "text/plain;q=0.5, text/event-stream" }), "sse");
  assert.equal(choose({ accept: "text/plain;q=0", stored: "ui" }), "ui");
});

Deno.test("a reply outlives its connection only when its client can come back for it: the UI message stream's, unless the request says otherwise", () => {
  assert.equal(chooseOnDisconnect(undefined, "ui"), "continue");
  for (const protocol of ["data", "text", "sse"] as const) {
    assert.equal(chooseOnDisconnect(undefined, protocol), "stop", protocol);
  }
  for (const protocol of ["text", "data", "sse", "ui"] as const) {
    assert.equal(chooseOnDisconnect("stop", protocol), "stop", protocol);
    assert.equal(chooseOnDisconnect("continue", protocol), "continue", protocol);
  }
});
