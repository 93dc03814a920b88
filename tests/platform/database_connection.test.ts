/**
 * How the function connects on hosted projects: the transaction pooler when its secret is set,
 * prepared statements off there, TLS off loopback, and what a request gets when Postgres has no
 * connection left to give.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { parseConfig } from "../../supabase/functions/api/config.ts";
import { asCaller, queryAsCaller } from "../../supabase/functions/api/database.ts";
import { isDatabaseUnavailable } from "../../supabase/functions/api/database_errors.ts";
import { connect } from "../../supabase/functions/api/database_pool.ts";
import { tlsFor } from "../../supabase/functions/api/database_tls.ts";
import { startTestApi, TEST_CURSOR_SECRET } from "../support/api.ts";
import { startTlsProxy } from "../support/tls_proxy.ts";
import { createTestDatabase } from "../support/database.ts";
import { eventually } from "../support/eventually.ts";
import { signUp, userClaims } from "../support/fixtures.ts";
import { json, send, stored } from "../support/http.ts";

const required = {
  SUPABASE_DB_URL: "postgresql://postgres:pw@db.abcdefghijklmnop.supabase.co:5432/postgres",
  SUPABASE_JWKS: '{"keys":[{"kty":"EC"}]}',
  OPENAI_API_KEY: "sk-test",
  CURSOR_SECRET: TEST_CURSOR_SECRET,
};
const anon = { role: "anon" } as const;
const pooler =
  "postgresql://postgres.abcdefghijklmnop:pw@aws-0-eu-central-1.pooler.supabase.com:6543/postgres";

Deno.test("DB_POOLER_URL is preferred over SUPABASE_DB_URL, with prepared statements off", () => {
  const direct = parseConfig(required).database;
  assert.deepEqual(direct, {
    url: required.SUPABASE_DB_URL,
    poolMax: 3,
    prepare: true,
    ca: undefined,
  });
  const pooled = parseConfig({ ...required, DB_POOLER_URL: pooler }).database;
  assert.deepEqual(pooled, { url: pooler, poolMax: 3, prepare: false, ca: undefined });
  // a session-mode pooler URL may turn them back on; the transaction port is known without the secret
  assert.equal(
    parseConfig({ ...required, DB_POOLER_URL: pooler, DB_PREPARE: "true" }).database.prepare,
    true,
  );
  assert.equal(parseConfig({ ...required, SUPABASE_DB_URL: pooler }).database.prepare, false);
  assert.equal(parseConfig({ ...required, DB_POOL_MAX: "8" }).database.poolMax, 8);
  const pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----";
  assert.equal(parseConfig({ ...required, DB_CA_CERT: pem }).database.ca, pem);
  assert.equal(
    parseConfig({ ...required, DB_CA_CERT: pem.replaceAll("\n", "\\n") }).database.ca,
    pem,
  );
  assert.throws(() => parseConfig({ ...required, DB_CA_CERT: "not a certificate" }), /DB_CA_CERT/);
  assert.throws(
    () => parseConfig({ ...required, DB_POOLER_URL: "https://example.com" }),
    /DB_POOLER_URL/,
  );
  assert.throws(() => parseConfig({ ...required, DB_PREPARE: "no" }), /DB_PREPARE/);
  assert.throws(() => parseConfig({ ...required, DB_POOL_MAX: "0" }), /DB_POOL_MAX/);
});

Deno.test("TLS: required off the local network, none on loopback, and the URL's sslmode wins", () => {
  const at = (host: string, query = "") => tlsFor(`postgres://u:p@${host}:5432/postgres${query}`);
  assert.deepEqual(at("db.abcdefghijklmnop.supabase.co"), { ssl: "require" });
  assert.deepEqual(at("aws-0-eu-central-1.pooler.supabase.com"), { ssl: "require" });
  assert.deepEqual(at("[2600:1f18::1]"), { ssl: "require" });
  assert.deepEqual(at("203.0.113.7"), { ssl: "require" });
  for (const host of ["127.0.0.1", "localhost", "[::1]"]) {
    assert.deepEqual(at(host), { ssl: false });
  }
  // the Supabase CLI's own database container, and private networks: TLS when offered
  for (const host of ["db", "10.0.3.4", "192.168.1.20", "172.20.0.2", "[fd00::5]"]) {
    assert.deepEqual(at(host), { ssl: "prefer" }, host);
  }
  // postgres.js reads sslmode from the URL itself; an `ssl` option would override it
  assert.deepEqual(at("db.abcdefghijklmnop.supabase.co", "?sslmode=verify-full"), {});
  assert.deepEqual(at("db.abcdefghijklmnop.supabase.co", "?sslmode=disable"), {});
  // with DB_CA_CERT the server is verified against it, by name where it has one
  const ca = "-----BEGIN CERTIFICATE-----\n...";
  const withCa = (host: string, query = "") =>
    tlsFor(`postgres://u:p@${host}:6543/postgres${query}`, ca);
  assert.deepEqual(withCa("aws-0-eu-central-1.pooler.supabase.com"), {
    ssl: { ca, servername: "aws-0-eu-central-1.pooler.supabase.com" },
  });
  assert.deepEqual(withCa("203.0.113.7"), { ssl: { ca } });
  assert.deepEqual(withCa("localhost", "?sslmode=verify-full"), {
    ssl: { ca, servername: "localhost" },
  });
  assert.deepEqual(withCa("localhost"), { ssl: false });
  assert.deepEqual(withCa("db.abcdefghijklmnop.supabase.co", "?sslmode=disable"), {});
});

Deno.test("with DB_CA_CERT the database is reached over TLS and verified against that CA, never another", async () => {
  const db = await createTestDatabase();
  const server = new URL(Deno.env.get("DATABASE_URL")!);
  const proxy = await startTlsProxy({ hostname: server.hostname, port: Number(server.port) });
  try {
    const url = new URL(db.url);
    url.hostname = "localhost";
    url.port = String(proxy.port);
    url.search = "?sslmode=verify-full&sslnegotiation=direct";
    const api = await startTestApi({
      db: { url: url.href, admin: db.admin },
      env: { DB_CA_CERT: proxy.ca },
    });
    const user = await api.user();
    assert.equal((await send(api, user, "GET", "/api/sessions")).status, 200);
    assert.ok(proxy.connections >= 1, "the app's connection came through TLS");
    await api.model.close();

    const connections = proxy.connections;
    const stranger = connect(url.href, { max: 1, ca: proxy.otherCa });
    try {
      await assert.rejects(
        queryAsCaller(stranger, anon, (tx) => tx`select 1`),
        /certificate|issuer/i,
      );
    } finally {
      await stranger.end({ timeout: 1 });
    }
    assert.equal(proxy.connections, connections);

    // why DB_CA_CERT: sslmode=require skips verification under Deno 2.9, but the Edge Runtime's
    // Deno 2.1 verifies anyway, and refuses a CA it does not know (as Supabase's root CA)
    url.search = "?sslmode=require&sslnegotiation=direct";
    const unverified = connect(url.href, { max: 1 });
    try {
      if (Deno.version.deno.startsWith("2.1.")) {
        await assert.rejects(
          queryAsCaller(unverified, anon, (tx) => tx`select 1`),
          /UnknownIssuer/,
        );
      } else {
        assert.deepEqual([...await queryAsCaller(unverified, anon, (tx) => tx`select 1 as one`)], [
          { one: 1 },
        ]);
      }
    } finally {
      await unverified.end({ timeout: 1 });
    }
  } finally {
    await proxy.close();
    await db.admin.end();
  }
});

Deno.test("a pooler refusing a client for its limit or a checkout timeout counts as unavailable", () => {
  const fatal = (message: string) => Object.assign(new Error(message), { code: "XX000" });
  assert.ok(isDatabaseUnavailable(fatal("(EMAXCONN) max client connections reached, limit: 200")));
  assert.ok(
    isDatabaseUnavailable(
      fatal("(ECHECKOUTTIMEOUT) unable to check out connection from the pool after 15000ms"),
    ),
  );
  assert.ok(!isDatabaseUnavailable(fatal("some internal error")));
  assert.ok(isDatabaseUnavailable(Object.assign(new Error("too many"), { code: "53300" })));
});

Deno.test("with prepared statements off nothing is prepared on the server; on, statements are", async () => {
  const db = await createTestDatabase({ migrate: false });
  try {
    for (const prepare of [false, true]) {
      const sql = connect(db.url, { max: 1, prepare });
      try {
        const tx = await sql.reserve();
        for (let i = 0; i < 3; i++) await tx`select ${i}::int as n`;
        const [row] = await tx<{ count: number }[]>`
          select count(*)::int as count from pg_prepared_statements`;
        const count = row!.count;
        tx.release();
        assert.equal(count > 0, prepare, `prepare: ${prepare}, prepared: ${count}`);
      } finally {
        await sql.end();
      }
    }
  } finally {
    await db.admin.end();
  }
});

Deno.test("at the connection limit: 503 with Retry-After, nothing half-stored, and a reply streaming meanwhile is saved", async () => {
  const db = await createTestDatabase();
  // Supabase's `postgres` is no superuser on hosted, and a superuser would not be held to a limit
  const role = `app_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
  await db.admin.unsafe(
    `create role ${role} login password 'app' connection limit 1;
     grant authenticated, anon to ${role};`,
  );
  const url = new URL(db.url);
  url.username = role;
  url.password = "app";
  const api = await startTestApi({ db: { url: url.href, admin: db.admin } });
  const blocker = postgres(url.href, { max: 1, onnotice: () => {} });
  let blockerPid = 0;
  const closeAppConnections = () =>
    db.admin`select pg_terminate_backend(pid) from pg_stat_activity
             where usename = ${role} and pid <> ${blockerPid}`;
  try {
    const user = await api.user();
    // a reply starts while there is room, then the limit is taken before it ends
    api.model.script(() => ({
      chunks: Array.from({ length: 30 }, (_, i) => `w${i} `),
      delayMs: 25,
    }));
    const streaming = crypto.randomUUID();
    const response = await send(api, user, "POST", `/api/sessions/${streaming}?protocol=sse`, {
      messages: [{ role: "user", content: "Keep talking" }],
    });
    assert.equal(response.status, 200);
    const body = response.text();

    // the app's idle connections go (as when the pooler or Postgres restarts), then the role's
    // one connection is taken; the streaming reply writes its progress every 250 ms and may
    // take the connection back first: then close again
    let held: postgres.ReservedSql;
    for (let attempt = 1;; attempt++) {
      await closeAppConnections();
      try {
        held = await blocker.reserve();
        break;
      } catch (error) {
        if (attempt === 20) throw error;
      }
    }
    const [me] = await held<{ pid: number }[]>`select pg_backend_pid() as pid`;
    blockerPid = me!.pid;

    const refused = crypto.randomUUID();
    for (
      const [method, path, payload] of [
        ["GET", "/api/sessions"],
        ["POST", `/api/sessions/${refused}`, { messages: [{ role: "user", content: "now?" }] }],
        ["GET", "/api/health"],
      ] as [string, string, unknown?][]
    ) {
      const answer = await send(api, user, method, path, payload);
      assert.equal(answer.status, 503, `${method} ${path}`);
      assert.equal(answer.headers.get("retry-after"), "5");
      assert.match((await answer.json()).detail, /database is unavailable/);
    }
    assert.deepEqual(await stored(api, refused), []);

    // the reply ends while the limit is still taken: its save waits for a connection
    await new Promise((resolve) => setTimeout(resolve, 900));
    held.release();
    await blocker.end();
    assert.match(await body, /event: done\n[^\n]*"finish_reason":"stop"/, api.logs.join("\n"));
    await api.idle();
    const saved = await stored(api, streaming);
    assert.deepEqual(saved.map((m) => [m.role, m.finish_reason]), [
      ["user", null],
      ["assistant", "stop"],
    ]);
    assert.equal(saved[1]!.content.split(" ").filter(Boolean).length, 30);

    // the refused send, retried once there is room, is stored once
    const retried = await json(send(api, user, "GET", "/api/health"));
    assert.equal(retried.status, 200);
    const again = await send(api, user, "POST", `/api/sessions/${refused}`, {
      messages: [{ role: "user", content: "now?" }],
    });
    assert.equal(again.status, 200);
    await again.text();
    await api.idle();
    assert.deepEqual((await stored(api, refused)).map((m) => m.role), ["user", "assistant"]);
  } finally {
    await blocker.end().catch(() => {});
    await api.model.close();
    await closeAppConnections().catch(() => {});
    await db.admin.unsafe(`drop owned by ${role}; drop role ${role}`).catch(() => {});
    await db.admin.end();
  }
});

Deno.test("a connection lost mid-transaction fails that work as unavailable, and the instance goes on serving", async () => {
  const db = await createTestDatabase();
  const sql = connect(db.url);
  try {
    const userId = await signUp(db.admin);
    const claims = userClaims(userId);
    // its failure is caught at once: it can come before the terminating statement's answer
    const work = asCaller(sql, claims, (tx) => tx`select pg_sleep(5)`).then(
      () => undefined,
      (e) => e,
    );
    // its backend ends while the statement runs, as when the pooler or the database restarts
    const running = () =>
      db.admin<{ pid: number }[]>`select pid from pg_stat_activity
        where datname = current_database() and query = 'select pg_sleep(5)'`;
    const [target] = await eventually(
      running,
      (rows) => rows.length === 1,
      "the statement to start",
    );
    await db.admin`select pg_terminate_backend(${target!.pid})`;
    const error = await work;
    assert.ok(isDatabaseUnavailable(error), String(error));
    // the instance goes on (before, postgres.js threw from a timer on the rollback, killing it)
    for (let i = 0; i < 5; i++) {
      const [row] = await queryAsCaller(
        sql,
        claims,
        (tx) => tx<{ me: string }[]>`select auth.uid()::text as me`,
      );
      assert.equal(row!.me, userId);
    }
  } finally {
    await sql.end({ timeout: 1 });
    await db.admin.end();
  }
});
