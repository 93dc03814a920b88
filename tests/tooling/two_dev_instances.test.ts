/**
 * Two `deno task dev` side by side in one checkout, as two terminals run them
 * (PORT and DOCS_PORT unset): the second takes the next free ports for its
 * API and its docs page instead of crashing on the first's, and uses the
 * database the first is running, so a reply written through one instance can
 * be read, re-attached to or stopped through the other.
 */
import assert from "node:assert/strict";
import { run, startDev, stateDir } from "../support/dev_server.ts";

Deno.test("two deno task dev side by side: each on its own ports, both answering, one database", async () => {
  const env = { DATABASE_URL: "", LOCAL_STATE_DIR: await stateDir() };
  const first = await startDev(env, { defaultPorts: true });
  let second: Awaited<ReturnType<typeof startDev>> | undefined;
  try {
    second = await startDev(env, { defaultPorts: true });
    const ports = [first.api, first.docs, second.api, second.docs].map((url) => new URL(url).port);
    assert.equal(new Set(ports).size, 4, `four distinct ports: ${ports.join(", ")}`);
    for (const page of [first.docs, second.docs]) {
      const response = await fetch(page);
      assert.equal(response.status, 200, page);
      assert.match(await response.text(), /Chat sessions API/);
    }

    const token = await run(Deno.execPath(), [
      "run",
      "--allow-all",
      "--quiet",
      "local/token.ts",
      "twice@example.com",
    ], env);
    assert.equal(token.code, 0, token.stderr);
    const headers = {
      authorization: `Bearer ${token.stdout.trim()}`,
      "content-type": "application/json",
    };
    const session = crypto.randomUUID();
    const sent = await fetch(`${first.api}/sessions/${session}?protocol=text`, {
      method: "POST",
      headers,
      body: JSON.stringify({ messages: [{ role: "user", content: "Written through the first" }] }),
    });
    assert.equal(sent.status, 200);
    const reply = await sent.text();
    const read = await fetch(`${second.api}/sessions/${session}`, { headers });
    assert.equal(read.status, 200);
    assert.deepEqual(
      (await read.json()).map((m: { role: string; content: string }) => [m.role, m.content]),
      [["user", "Written through the first"], ["assistant", reply]],
      "the second reads what the first stored: one database",
    );

    // the second stops first: the first, which runs the database, goes on serving
    const secondLog = await second.stop();
    second = undefined;
    assert.match(secondLog, /database: the embedded Postgres of the deno task dev at /);
    const after = await fetch(`${first.api}/sessions/${session}`, { headers });
    assert.equal(after.status, 200);
    assert.equal((await after.json()).length, 2);
  } finally {
    await second?.stop();
    const firstLog = await first.stop();
    assert.match(firstLog, /database: embedded Postgres 17, data kept in /);
  }
});
