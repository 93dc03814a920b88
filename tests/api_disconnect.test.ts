/** Over a real socket: a client that leaves mid-stream stops the model call, and what was streamed is kept. */
import assert from "node:assert/strict";
import { startTestApi } from "./support/api.ts";
import { eventually } from "./support/eventually.ts";
import { readUntil, stored } from "./support/http.ts";

const api = await startTestApi();
const words = Array.from({ length: 60 }, (_, i) => `word${i} `);

for (const protocol of ["text", "data", "sse"]) {
  Deno.test(`${protocol} protocol: a client disconnecting mid-stream stops the model and the partial reply is stored`, async () => {
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
      assert.equal(reply!.finish_reason, "client_closed");
      assert.ok(reply!.content.startsWith("word0 word1 word2 word3"), reply!.content);
      assert.ok(words.join("").startsWith(reply!.content));
      assert.ok(
        reply!.content.length < words.join("").length,
        "the model was stopped before it finished",
      );
      await eventually(
        () => Promise.resolve(api.model.openStreams),
        (n) => n === 0,
        "the upstream stream to close",
      );
      assert.equal(api.model.abandonedStreams, abandonedBefore + 1);
    } finally {
      await api.idle();
      await server.close();
      api.model.script(() => ({ chunks: ["Hello"] }));
    }
  });
}
