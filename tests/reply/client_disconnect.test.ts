/**
 * Over a real socket: a client that leaves mid-stream ends nothing. The reply
 * goes on being written and is stored whole (so a client can re-attach to it,
 * tests/reply/resume_and_stop.test.ts); only a stop ends it early.
 */
import assert from "node:assert/strict";
import { startTestApi } from "../support/api.ts";
import { eventually } from "../support/eventually.ts";
import { readUntil, stored } from "../support/http.ts";

const api = await startTestApi();
const words = Array.from({ length: 60 }, (_, i) => `word${i} `);

for (const protocol of ["text", "data", "sse"]) {
  Deno.test(`${protocol} protocol: a client disconnecting mid-stream leaves the model writing, and the whole reply is stored`, async () => {
    api.model.script(() => ({ chunks: words, delayMs: 30 }));
    const server = api.listen();
    const user = await api.user();
    const session = crypto.randomUUID();
    const abandonedBefore = api.model.abandonedStreams;
    try {
      const client = new AbortController();
      const response = await fetch(`${server.url}/api/sessions/${session}?protocol=${protocol}`, {
        method: "POST",
        headers: { ...user.auth, "content-type": "application/json" },
        body: JSON.stringify({ messages: [{ role: "user", content: "Talk a lot" }] }),
        signal: client.signal,
      });
      assert.equal(response.status, 200);
      const reader = response.body!.getReader();
      await readUntil(reader, "word3");
      client.abort();
      await reader.cancel().catch(() => {});

      const [, reply] = await eventually(
        () => stored(api, session),
        (rows) => rows.length === 2,
        "the stored reply",
      );
      assert.equal(reply!.role, "assistant");
      assert.equal(reply!.finish_reason, "stop");
      assert.equal(reply!.content, words.join(""));
      assert.equal(api.model.openStreams, 0);
      assert.equal(api.model.abandonedStreams, abandonedBefore, "the model stream ran to its end");
    } finally {
      await api.idle();
      await server.close();
      api.model.script(() => ({ chunks: ["Hello"] }));
    }
  });
}
