/**
 * Connections lost under the function's feet, as when the database or the pooler restarts or a
 * backend is terminated: the work on them fails at once as unavailable (a 503, or a reply's save
 * that tries again), nobody waits forever, and the pool serves at full strength afterwards.
 * Each case hung or lost a connection for good with postgres.js 3.4.9's own pool.
 */
import assert from "node:assert/strict";
import { asCaller, queryAsCaller } from "../../supabase/functions/api/database.ts";
import { errorCode, isDatabaseUnavailable } from "../../supabase/functions/api/database_errors.ts";
import { connect } from "../../supabase/functions/api/database_pool.ts";
import { createTestDatabase, type TestDatabase } from "../support/database.ts";
import { eventually } from "../support/eventually.ts";
import { signUp, userClaims } from "../support/fixtures.ts";

/** How `promise` settles within `ms`: its value, its error, or still pending. */
async function within<T>(promise: Promise<T>, ms: number) {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const pending = new Promise<{ pending: true }>((resolve) => {
    timer = setTimeout(() => resolve({ pending: true }), ms);
  });
  try {
    return await Promise.race([
      promise.then((value) => ({ value }), (error: unknown) => ({ error })),
      pending,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Terminates the backends running a statement that starts with `prefix`, once `count` do. */
async function terminateRunning(db: TestDatabase, prefix: string, count: number) {
  const running = () =>
    db.admin<{ pid: number }[]>`select pid from pg_stat_activity
      where datname = current_database() and starts_with(query, ${prefix})
        and pid <> pg_backend_pid()`;
  const rows = await eventually(running, (rows) => rows.length === count, `${count} × ${prefix}`);
  await db.admin`select pg_terminate_backend(pid) from unnest(${
    rows.map((r) => r.pid)
  }::int[]) pid`;
}

Deno.test("a caller waiting for a connection is served when the connection it waited for is lost", async () => {
  // porsager/postgres#1195, how a reply's save hung after a database restart: postgres.js handed
  // the waiting reserve to the lost connection's reconnect, which forgot it
  const db = await createTestDatabase();
  const sql = connect(db.url, { max: 1 });
  try {
    const me = await signUp(db.admin);
    const held = await sql.reserve();
    const [row] = await held<{ pid: number }[]>`select pg_backend_pid() as pid`;
    const waiting = queryAsCaller(
      sql,
      userClaims(me),
      (tx) => tx<{ me: string }[]>`select auth.uid()::text as me`,
    ).then((rows) => [...rows]);
    await sleep(100); // it waits: the pool's one connection is held
    await db.admin`select pg_terminate_backend(${row!.pid})`;
    const served = await within(waiting, 10_000);
    assert.deepEqual(served, { value: [{ me }] });
    held.release(); // a lost connection's release changes nothing
    assert.deepEqual([...await queryAsCaller(sql, userClaims(me), (tx) => tx`select 1 as one`)], [
      { one: 1 },
    ]);
  } finally {
    await sql.end({ timeout: 1 });
    await db.admin.end();
  }
});

Deno.test("every connection lost mid-statement, three times over: the work fails as unavailable, then the whole pool serves", async () => {
  // postgres.js kept a lost statement's 57P01, failed the reserve that reconnected the connection
  // with it, then handed the connection to that failed reserve: out of the pool for good
  const db = await createTestDatabase();
  const sql = connect(db.url, { max: 3 });
  try {
    const me = await signUp(db.admin);
    const claims = userClaims(me);
    for (let round = 1; round <= 3; round++) {
      const sleeping = [1, 2, 3].map(() =>
        asCaller(sql, claims, (tx) => tx`select pg_sleep(30)`).then(() => "finished", (e) => e)
      );
      await terminateRunning(db, "select pg_sleep(30)", 3);
      for (const outcome of await Promise.all(sleeping)) {
        assert.ok(isDatabaseUnavailable(outcome), `round ${round}: ${outcome}`);
      }
      // three at once: every connection is back
      const served = await within(
        Promise.all(
          [1, 2, 3].map(() =>
            queryAsCaller(sql, claims, (tx) => tx<{ me: string }[]>`select auth.uid()::text as me`)
              .then((rows) => [...rows])
          ),
        ),
        10_000,
      );
      assert.deepEqual(served, { value: [[{ me }], [{ me }], [{ me }]] }, `round ${round}`);
    }
  } finally {
    await sql.end({ timeout: 1 });
    await db.admin.end();
  }
});

for (const prepare of [true, false]) {
  Deno.test(`a statement with parameters whose connection is lost fails at once as unavailable (prepared statements ${prepare ? "on" : "off"})`, async () => {
    // postgres.js sends the statements after one with parameters only once that one is
    // described; they were left waiting forever when the connection went (porsager/postgres#1186)
    const db = await createTestDatabase();
    const sql = connect(db.url, { max: 1, prepare });
    try {
      const me = await signUp(db.admin);
      // its outcome is taken at once: the failure can come before the terminating statement's answer
      const work = within(
        queryAsCaller(sql, userClaims(me), (tx) => tx`select pg_sleep(${30})`),
        10_000,
      );
      await terminateRunning(db, "select pg_sleep(", 1);
      const outcome = await work;
      assert.ok(
        "error" in outcome && isDatabaseUnavailable(outcome.error),
        JSON.stringify(outcome),
      );
      assert.deepEqual([...await queryAsCaller(sql, userClaims(me), (tx) => tx`select 1 as one`)], [
        { one: 1 },
      ]);
    } finally {
      await sql.end({ timeout: 1 });
      await db.admin.end();
    }
  });
}

Deno.test("a connection dropped while it is set up: that caller is told unavailable, the next is served, nothing is left uncaught", async () => {
  // postgres.js reads a new connection's array types with a query nobody awaits: dropped then,
  // its rejection went unhandled (ending the isolate) and the reserve waiting was forgotten
  const db = await createTestDatabase();
  const proxy = startCuttingProxy(new URL(db.url), { cuts: 1 });
  const url = new URL(db.url);
  url.port = String(proxy.port);
  const sql = connect(url.href, { max: 1 });
  try {
    const me = await signUp(db.admin);
    const first = await within(
      queryAsCaller(sql, userClaims(me), (tx) => tx`select 1 as one`),
      10_000,
    );
    assert.ok("error" in first && isDatabaseUnavailable(first.error), JSON.stringify(first));
    assert.equal(errorCode((first as { error: unknown }).error), "CONNECTION_CLOSED");
    assert.deepEqual([...await queryAsCaller(sql, userClaims(me), (tx) => tx`select 1 as one`)], [
      { one: 1 },
    ]);
  } finally {
    await sql.end({ timeout: 1 });
    await proxy.close();
    await db.admin.end();
  }
});

Deno.test("a full pool answers unavailable after its wait, and serves again once a connection is back", async () => {
  const db = await createTestDatabase();
  const sql = connect(db.url, { max: 1, waitMs: 300 });
  try {
    const me = await signUp(db.admin);
    const held = await sql.reserve();
    const started = performance.now();
    const refused = await within(
      queryAsCaller(sql, userClaims(me), (tx) => tx`select 1 as one`),
      5_000,
    );
    assert.ok("error" in refused && isDatabaseUnavailable(refused.error), JSON.stringify(refused));
    assert.equal(errorCode((refused as { error: unknown }).error), "CONNECTION_WAIT_TIMEOUT");
    assert.ok(performance.now() - started >= 250);
    // one waiting when the connection comes back gets it
    const waiting = queryAsCaller(sql, userClaims(me), (tx) => tx`select 1 as one`);
    held.release();
    assert.deepEqual([...await waiting], [{ one: 1 }]);
  } finally {
    await sql.end({ timeout: 1 });
    await db.admin.end();
  }
});

/**
 * A TCP proxy to Postgres that drops each of its first `cuts` connections right after the
 * server says it is ready (the first ReadyForQuery), when postgres.js has just sent the query
 * for the array types.
 */
function startCuttingProxy(target: URL, opts: { cuts: number }) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const open = new Set<Deno.Conn>();
  const relays: Promise<unknown>[] = [];
  let cuts = opts.cuts;
  const serve = async () => {
    for await (const client of listener) {
      const server = await Deno.connect({ hostname: target.hostname, port: Number(target.port) });
      open.add(client).add(server);
      const cut = cuts-- > 0;
      const close = () => {
        for (const conn of [client, server]) {
          if (open.delete(conn)) {
            try {
              conn.close();
            } catch { /* already closed by its streams */ }
          }
        }
      };
      relays.push(client.readable.pipeTo(server.writable).catch(() => {}).finally(close));
      relays.push(relayUntilReady(server.readable, client.writable, cut).finally(close));
    }
  };
  const serving = serve().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    async close() {
      listener.close();
      await serving;
      for (const conn of open) {
        try {
          conn.close();
        } catch { /* already closed by its streams */ }
      }
      open.clear();
      await Promise.allSettled(relays);
    },
  };
}

/** Relays the server's messages; with `cut`, stops after the first ReadyForQuery ('Z'). */
async function relayUntilReady(
  from: ReadableStream<Uint8Array>,
  to: WritableStream<Uint8Array>,
  cut: boolean,
) {
  const reader = from.getReader();
  const writer = to.getWriter();
  let pending: Uint8Array = new Uint8Array(0);
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      if (!cut) {
        await writer.write(value);
        continue;
      }
      pending = concat(pending, value);
      // messages: a type byte, then a 4-byte length that counts itself; whole ones go on at once
      let at = 0;
      while (at + 5 <= pending.length) {
        const end = at + 1 + new DataView(pending.buffer, pending.byteOffset + at + 1).getInt32(0);
        if (end > pending.length) break;
        const ready = pending[at] === 0x5a;
        at = end;
        if (ready) {
          await writer.write(pending.slice(0, at));
          await sleep(50); // the types query leaves meanwhile, and is never answered
          return;
        }
      }
      if (at > 0) await writer.write(pending.slice(0, at));
      pending = pending.slice(at);
    }
  } catch {
    // the other side went
  } finally {
    reader.releaseLock();
    writer.releaseLock();
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
