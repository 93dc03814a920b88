/**
 * Auth on every kind of Supabase project, against a stand-in of the
 * project's Auth service on loopback (its JWKS endpoint and /auth/v1/user):
 * asymmetric keys only, the legacy HS256 secret only (`{"keys":[]}`), and
 * mid-migration with both kinds of token in flight; unknown `kid`s, key
 * rotation, and Auth or its JWKS endpoint down.
 */
import assert from "node:assert/strict";
import {
  createSigningKey,
  jwksOf,
  signAccessToken,
  signLegacyAccessToken,
} from "../../local/signing_keys.ts";
import { createTokenVerifier } from "../../supabase/functions/api/auth.ts";
import { parseConfig } from "../../supabase/functions/api/config.ts";
import { startTestApi, TEST_CURSOR_SECRET, type TestApi } from "../support/api.ts";
import { createTestDatabase } from "../support/database.ts";
import { startFunctionProcess } from "../support/function_process.ts";
import { send } from "../support/http.ts";
import { type StandInAuth, startStandInAuth } from "../support/supabase_auth.ts";

const db = await createTestDatabase();

/** The app as a project of that kind configures it: SUPABASE_JWKS as given, SUPABASE_URL and its keys. */
async function project(
  auth: StandInAuth,
  jwks: string,
  verifier: Parameters<typeof startTestApi>[0] = {},
): Promise<TestApi> {
  return await startTestApi({
    db,
    ...verifier,
    // what these tests ask of the Auth server itself; the signer check in front of it
    // (tests/auth/hs256_under_attack.test.ts) would refuse their tokens first: these name made-up sessions
    auth: { liveSigner: undefined, ...verifier.auth },
    env: {
      SUPABASE_JWKS: jwks,
      SUPABASE_URL: auth.url,
      SUPABASE_PUBLISHABLE_KEYS: JSON.stringify({ default: auth.apiKey }),
      SUPABASE_ANON_KEY: "legacy-anon-key-not-preferred",
    },
  });
}

async function listSessions(api: TestApi, token: string) {
  const response = await send(api, undefined, "GET", "/api/sessions", undefined, {
    authorization: `Bearer ${token}`,
  });
  return {
    status: response.status,
    retryAfter: response.headers.get("retry-after"),
    body: await response.json(),
  };
}

/** An open session of the user's, as Supabase Auth keeps it: its id is a token's `session_id`. */
async function openSession(userId: string): Promise<string> {
  const [row] = await db.admin<{ id: string }[]>`
    insert into auth.sessions (user_id) values (${userId}) returning id`;
  return row!.id;
}

async function newUserId(api: TestApi): Promise<string> {
  return (await api.user()).id;
}

/** A test with its own stand-in Auth service, closed however the test ends. */
function authTest(name: string, body: (auth: StandInAuth) => Promise<void>) {
  Deno.test(name, async () => {
    const auth = startStandInAuth();
    try {
      await body(auth);
    } finally {
      await auth.close();
    }
  });
}

/** A new signing key, published at the stand-in's JWKS endpoint. */
async function publishKey(auth: StandInAuth) {
  const key = await createSigningKey();
  auth.publish(key);
  return key;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

authTest(
  "asymmetric keys only, no SUPABASE_JWKS: keys come from the JWKS endpoint, fetched once",
  async (auth) => {
    const key = await publishKey(auth);
    const api = await project(auth, "");
    for (let i = 0; i < 3; i++) {
      const token = await signAccessToken(key, { id: await newUserId(api) });
      assert.deepEqual(await listSessions(api, token), { status: 200, retryAfter: null, body: [] });
    }
    assert.equal(auth.requests.jwks, 1);
    assert.equal(auth.requests.user, 0);
  },
);

authTest("inline SUPABASE_JWKS keys verify tokens with no network call", async (auth) => {
  const key = await publishKey(auth);
  const api = await project(auth, JSON.stringify(jwksOf(key)));
  const token = await signAccessToken(key, { id: await newUserId(api) });
  assert.equal((await listSessions(api, token)).status, 200);
  assert.deepEqual(auth.requests, { jwks: 0, user: 0, apiKeys: [] });
});

authTest(
  'legacy secret only ({"keys":[]}): an HS256 token is checked by the Auth server once, with the publishable key',
  async (auth) => {
    const api = await project(auth, '{"keys":[]}');
    const userId = await newUserId(api);
    const token = await auth.legacyToken(userId);
    for (let i = 0; i < 3; i++) {
      assert.deepEqual(await listSessions(api, token), { status: 200, retryAfter: null, body: [] });
    }
    assert.equal(auth.requests.user, 1);
    assert.deepEqual(auth.requests.apiKeys, [auth.apiKey]);
    // the claims are the token's: the user's own rows, under RLS
    const session = crypto.randomUUID();
    const created = await send(api, undefined, "POST", `/api/sessions/${session}`, {
      messages: [{ role: "user", content: "hello from a legacy project" }],
    }, { authorization: `Bearer ${token}` });
    assert.equal(created.status, 200);
    await created.text();
    await api.idle();
    const [row] = await db.admin`select user_id from public.chat_sessions where id = ${session}`;
    assert.equal(row!.user_id, userId);
  },
);

authTest(
  "legacy secret only: a forged HS256 token gets 401, and asking again does not call Auth again",
  async (auth) => {
    const api = await project(auth, '{"keys":[]}');
    const otherSecret = crypto.getRandomValues(new Uint8Array(32));
    const forged = await signLegacyAccessToken(otherSecret, { id: await newUserId(api) });
    for (let i = 0; i < 2; i++) {
      const answer = await listSessions(api, forged);
      assert.equal(answer.status, 401);
      assert.match(answer.body.detail, /Auth server rejected the token/);
    }
    assert.equal(auth.requests.user, 1);
  },
);

authTest(
  "legacy secret only: tokens with bad claims are refused before any call to Auth",
  async (auth) => {
    const api = await project(auth, '{"keys":[]}');
    const userId = await newUserId(api);
    const cases: [string, RegExp][] = [
      [await auth.legacyToken(userId, { expiresInSeconds: -60 }), /expired/],
      [await auth.legacyToken(userId, { claims: { aud: "other" } }), /"aud" claim/],
      [await auth.legacyToken(userId, { claims: { role: "service_role" } }), /not a signed-in/],
      [await auth.legacyToken("admin"), /subject is not a user id/],
    ];
    for (const [token, reason] of cases) {
      const answer = await listSessions(api, token);
      assert.equal(answer.status, 401);
      assert.match(answer.body.detail, reason);
    }
    assert.equal(auth.requests.user, 0);
  },
);

authTest(
  "mid-migration: asymmetric tokens verify locally, legacy HS256 tokens through Auth, both accepted",
  async (auth) => {
    const key = await publishKey(auth);
    const api = await project(auth, JSON.stringify(jwksOf(key)));
    const userId = await newUserId(api);
    const asymmetric = await signAccessToken(key, { id: userId });
    const legacy = await auth.legacyToken(userId);
    assert.equal((await listSessions(api, asymmetric)).status, 200);
    assert.equal((await listSessions(api, legacy)).status, 200);
    assert.equal(auth.requests.jwks, 0);
    assert.equal(auth.requests.user, 1);
  },
);

authTest(
  "a kid the inline keys do not know costs one fetch, which finds the key rotated in",
  async (auth) => {
    const [current, rotatedIn] = [await createSigningKey(), await createSigningKey()];
    auth.publish(current, rotatedIn);
    const api = await project(auth, JSON.stringify(jwksOf(current)));
    const userId = await newUserId(api);
    assert.equal(
      (await listSessions(api, await signAccessToken(current, { id: userId }))).status,
      200,
    );
    assert.equal(auth.requests.jwks, 0);
    for (let i = 0; i < 3; i++) {
      const token = await signAccessToken(rotatedIn, { id: userId });
      assert.equal((await listSessions(api, token)).status, 200);
    }
    assert.equal(auth.requests.jwks, 1);
  },
);

authTest("a flood of unknown kids does not flood the JWKS endpoint", async (auth) => {
  const key = await publishKey(auth);
  const api = await project(auth, JSON.stringify(jwksOf(key)));
  const userId = await newUserId(api);
  const strangers = await Promise.all(Array.from({ length: 20 }, () => createSigningKey()));
  const tokens = await Promise.all(strangers.map((k) => signAccessToken(k, { id: userId })));
  const answers = await Promise.all(tokens.map((t) => listSessions(api, t)));
  for (const token of tokens) answers.push(await listSessions(api, token));
  for (const answer of answers) {
    assert.equal(answer.status, 401);
    assert.match(answer.body.detail, /not signed by a known key/);
  }
  // one fetch for the first unknown kid; the rest fall in jose's cooldown
  assert.equal(auth.requests.jwks, 1);
});

authTest(
  "key rotation: once a refetch no longer finds the old key, its tokens are refused, remembered ones too",
  async (auth) => {
    const [old, next] = [await createSigningKey(), await createSigningKey()];
    auth.publish(old);
    const api = await project(auth, "", { auth: { jwksCooldownMs: 100 } });
    const userId = await newUserId(api);
    const oldToken = await signAccessToken(old, { id: userId });
    assert.equal((await listSessions(api, oldToken)).status, 200);

    auth.publish(next);
    await sleep(150); // past the cooldown: the next unknown kid may refetch
    assert.equal(
      (await listSessions(api, await signAccessToken(next, { id: userId }))).status,
      200,
    );
    assert.equal(auth.requests.jwks, 2);

    for (const token of [oldToken, await signAccessToken(old, { id: userId })]) {
      const answer = await listSessions(api, token);
      assert.equal(answer.status, 401);
      assert.match(answer.body.detail, /not signed by a known key/);
    }
  },
);

authTest(
  "the Auth server down, failing or too slow is a 503 with Retry-After; three failures in a row rest it; then it works again",
  async (auth) => {
    const api = await project(auth, '{"keys":[]}', {
      auth: { upstreamTimeoutMs: 300, upstreamRetryAfterMs: 200 },
    });
    const userId = await newUserId(api);
    for (const mode of ["failing", "hanging"] as const) {
      auth.mode = mode;
      const calls = auth.requests.user;
      // one failure blocks nobody else: each of three tokens is asked about, and gets its 503
      for (let i = 0; i < 3; i++) {
        const answer = await listSessions(api, await auth.legacyToken(userId));
        assert.equal(answer.status, 503, mode);
        assert.equal(answer.retryAfter, "1");
        assert.match(answer.body.detail, /Authentication is unavailable/);
      }
      assert.equal(auth.requests.user, calls + 3, mode);
      // three in a row: Auth rests, and requests are answered at once without calling it
      assert.equal((await listSessions(api, await auth.legacyToken(userId))).status, 503);
      assert.equal(auth.requests.user, calls + 3, mode);
      // rested, Auth is asked again; one answer from it closes the breaker
      await sleep(250);
      auth.mode = "up";
      assert.equal((await listSessions(api, await auth.legacyToken(userId))).status, 200);
    }
    auth.mode = "up";
    const token = await auth.legacyToken(userId);
    assert.equal((await listSessions(api, token)).status, 200);
    assert.ok(api.logs.some((line) => /Auth server answered 503/.test(line)), api.logs.join("\n"));
    // nothing ran for the refused requests
    const [row] = await db.admin`select count(*)::int as n from public.chat_sessions
    where user_id = ${userId}`;
    assert.equal(row!.n, 0);
  },
);

Deno.test("the Auth server unreachable (connection refused) is a 503, not a 401", async () => {
  const auth = startStandInAuth();
  const api = await project(auth, '{"keys":[]}');
  const token = await auth.legacyToken(await newUserId(api));
  await auth.close();
  const answer = await listSessions(api, token);
  assert.equal(answer.status, 503);
  assert.equal(answer.retryAfter, "5");
});

authTest("a gateway refusing the API key is a 503 and logged, not the user's 401", async (auth) => {
  const api = await startTestApi({
    db,
    env: { SUPABASE_JWKS: '{"keys":[]}', SUPABASE_URL: auth.url, SUPABASE_ANON_KEY: "wrong" },
    auth: { liveSigner: undefined },
  });
  const answer = await listSessions(api, await auth.legacyToken(await newUserId(api)));
  assert.equal(answer.status, 503);
  assert.deepEqual(auth.requests.apiKeys, ["wrong"]);
  assert.ok(api.logs.some((line) => /answered 401: Invalid API key/.test(line)), api.logs.join());
});

authTest(
  "the JWKS endpoint down: 503 while no key is known; keys fetched before keep serving",
  async (auth) => {
    const key = await publishKey(auth);
    const api = await project(auth, "", {
      auth: { jwksCacheMaxAgeMs: 100, upstreamRetryAfterMs: 100 },
    });
    const userId = await newUserId(api);
    auth.mode = "failing";
    const first = await listSessions(api, await signAccessToken(key, { id: userId }));
    assert.equal(first.status, 503);
    assert.equal(first.retryAfter, "1");

    auth.mode = "up";
    await sleep(150);
    assert.equal((await listSessions(api, await signAccessToken(key, { id: userId }))).status, 200);
    auth.mode = "failing";
    await sleep(150); // the fetched set is now past its age: jose fetches again, and fails
    const fetches = auth.requests.jwks;
    assert.equal((await listSessions(api, await signAccessToken(key, { id: userId }))).status, 200);
    assert.equal(auth.requests.jwks, fetches + 1);
  },
);

authTest(
  "a token checked by the Auth server is remembered until it expires, never longer",
  async (auth) => {
    const verify = createTokenVerifier({ jwks: { keys: [] }, url: auth.url, apiKey: auth.apiKey }, {
      clockToleranceSeconds: 0,
    });
    const userId = crypto.randomUUID();
    const token = await auth.legacyToken(userId, { expiresInSeconds: 2 });
    assert.equal((await verify(token)).sub, userId);
    assert.equal((await verify(token)).sub, userId);
    assert.equal(auth.requests.user, 1);
    await sleep(2100);
    await assert.rejects(verify(token), /expired/);
    assert.equal(auth.requests.user, 1);
  },
);

authTest("requests arriving together with one new token share one call to Auth", async (auth) => {
  const verify = createTokenVerifier({ jwks: { keys: [] }, url: auth.url, apiKey: auth.apiKey });
  const token = await auth.legacyToken(crypto.randomUUID());
  await Promise.all(Array.from({ length: 10 }, () => verify(token)));
  assert.equal(auth.requests.user, 1);
});

Deno.test("configuration: SUPABASE_JWKS may be missing or empty with SUPABASE_URL; with neither, the start fails naming both", () => {
  const base = {
    SUPABASE_DB_URL: "postgres://postgres:postgres@127.0.0.1:5432/postgres",
    OPENAI_API_KEY: "sk-test",
    CURSOR_SECRET: TEST_CURSOR_SECRET,
  };
  const url = "https://abcdefghijklmnop.supabase.co";
  for (const jwks of [undefined, "", '{"keys":[]}', "[]"]) {
    const config = parseConfig({ ...base, SUPABASE_JWKS: jwks, SUPABASE_URL: url });
    assert.deepEqual(config.auth.jwks, { keys: [] });
    assert.equal(config.auth.url, url);
  }
  for (const jwks of [undefined, "", '{"keys":[]}']) {
    assert.throws(
      () => parseConfig({ ...base, SUPABASE_JWKS: jwks }),
      /SUPABASE_JWKS: no signing keys to verify tokens with, and no SUPABASE_URL/,
    );
  }
  assert.throws(
    () => parseConfig({ ...base, SUPABASE_JWKS: "not json", SUPABASE_URL: url }),
    /SUPABASE_JWKS: expected a JSON Web Key Set/,
  );
  // the publishable key goes to Auth as apikey; the legacy anon key only without one
  const keys = { SUPABASE_URL: url, SUPABASE_ANON_KEY: "anon" };
  assert.equal(
    parseConfig({ ...base, ...keys, SUPABASE_PUBLISHABLE_KEYS: '{"default":"sb_publishable_1"}' })
      .auth.apiKey,
    "sb_publishable_1",
  );
  assert.equal(parseConfig({ ...base, ...keys }).auth.apiKey, "anon");
});

authTest(
  'the function starts on a legacy-secret project ({"keys":[]}) and lets its users in',
  async (auth) => {
    const api = await startTestApi({ db });
    const userId = await newUserId(api);
    const server = await startFunctionProcess({
      SUPABASE_DB_URL: db.url,
      SUPABASE_JWKS: '{"keys":[]}',
      SUPABASE_URL: auth.url,
      SUPABASE_PUBLISHABLE_KEYS: JSON.stringify({ default: auth.apiKey }),
      OPENAI_API_KEY: "sk-unused",
      CURSOR_SECRET: TEST_CURSOR_SECRET,
    });
    try {
      const response = await fetch(new URL("api/sessions", server.url), {
        // the function checks that a token's session is open before it asks Auth
        headers: {
          authorization: `Bearer ${await auth.legacyToken(userId, {
            claims: { session_id: await openSession(userId) },
          })}`,
        },
      });
      assert.deepEqual({ status: response.status, body: await response.json() }, {
        status: 200,
        body: [],
      });
    } finally {
      await server.stop();
    }
  },
);

authTest(
  "Auth is asked about at most 8 tokens at a time; past that and its queue, a token gets 503 at once",
  async (auth) => {
    const verify = createTokenVerifier({ jwks: { keys: [] }, url: auth.url, apiKey: auth.apiKey }, {
      upstreamTimeoutMs: 500,
      // no waiting for a slot here: what this test counts is the bound itself
      authServer: { queueWaitMs: 0 },
    });
    // well-formed, signed with a secret that is not the project's: only Auth can tell
    const forger = crypto.getRandomValues(new Uint8Array(32));
    const forged = await Promise.all(
      Array.from({ length: 40 }, () => signLegacyAccessToken(forger, { id: crypto.randomUUID() })),
    );
    auth.mode = "hanging";
    const started = performance.now();
    const answers = await Promise.allSettled(forged.map((token) => verify(token)));
    assert.equal(auth.requests.user, 8, "calls to Auth");
    const refused = answers.filter((a) =>
      a.status === "rejected" && a.reason.status === 503 &&
      a.reason.headers?.["retry-after"] === "1"
    );
    assert.equal(refused.length, 32, "refused without a call");
    assert.ok(answers.every((a) => a.status === "rejected"));
    assert.ok(performance.now() - started < 2000, "nobody waited past the Auth timeout");
  },
);
