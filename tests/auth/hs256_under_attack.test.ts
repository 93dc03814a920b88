/**
 * HS256 tokens checked by the project's Auth server, under attack (issue 19
 * items 1, 2 and 4): a flood of forged tokens cannot lock real users out or
 * flood Auth, one bad answer from Auth or its gateway blocks nobody else, an
 * oversized token is refused before anything, and one account cannot evict
 * other users' verified tokens. Against a stand-in of the project's Auth and a
 * real database (where the signers' profiles and sessions live).
 */
import assert from "node:assert/strict";
import { signLegacyAccessToken } from "../../local/signing_keys.ts";
import { startTestApi, type TestApi } from "../support/api.ts";
import { createTestDatabase } from "../support/database.ts";
import { recordFigure } from "../support/figures.ts";
import { send } from "../support/http.ts";
import { type StandInAuth, startStandInAuth } from "../support/supabase_auth.ts";

const db = await createTestDatabase();

/** A legacy-secret project (`{"keys":[]}`): every HS256 token goes to its Auth server. */
async function legacyProject(auth: StandInAuth): Promise<TestApi> {
  return await startTestApi({
    db,
    env: {
      SUPABASE_JWKS: '{"keys":[]}',
      SUPABASE_URL: auth.url,
      SUPABASE_PUBLISHABLE_KEYS: JSON.stringify({ default: auth.apiKey }),
    },
    auth: { upstreamTimeoutMs: 300 },
  });
}

/** A signed-up user with an open session, as Supabase Auth keeps them. */
async function signedIn(api: TestApi) {
  const id = (await api.user()).id;
  const [row] = await db.admin<{ session: string }[]>`
    insert into auth.sessions (user_id) values (${id}) returning id as session`;
  return { id, session: row!.session };
}

const get = (api: TestApi, token: string) =>
  send(api, undefined, "GET", "/api/sessions", undefined, { authorization: `Bearer ${token}` })
    .then(async (r) => ({ status: r.status, body: await r.text() }));

/** A token as a forger makes it: well-formed, plausible, signed with a secret of their own. */
const forge = (
  sub: string = crypto.randomUUID(),
  session: string = crypto.randomUUID(),
  pad = "",
) =>
  signLegacyAccessToken(crypto.getRandomValues(new Uint8Array(32)), { id: sub }, {
    claims: { session_id: session, ...(pad ? { user_metadata: { pad } } : {}) },
  });

function authTest(name: string, body: (auth: StandInAuth, api: TestApi) => Promise<void>) {
  Deno.test(name, async () => {
    const auth = startStandInAuth();
    const api = await legacyProject(auth);
    try {
      await body(auth, api);
    } finally {
      await api.idle();
      await api.model.close();
      await auth.close();
    }
  });
}

/** Fires `perTick` forged requests every 10 ms (600/s at 6) until `stop` resolves. */
async function flood(api: TestApi, stop: Promise<void>, make: () => Promise<string>, perTick = 6) {
  let done = false;
  stop.then(() => done = true);
  const answers: Promise<number>[] = [];
  while (!done) {
    for (let i = 0; i < perTick; i++) {
      answers.push(make().then((token) => get(api, token)).then((r) => r.status));
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return await Promise.all(answers);
}

authTest(
  "a flood of forged HS256 tokens (600/s) neither locks out a real user's fresh tokens nor reaches Auth",
  async (auth, api) => {
    const user = await signedIn(api);
    const real = Promise.withResolvers<void>();
    const started = performance.now();
    const flooding = flood(api, real.promise, () => forge());
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      // a fresh token each time, as after a refresh: none of them was seen before
      const token = await auth.legacyToken(user.id, {
        claims: { session_id: user.session, nonce: i },
      });
      statuses.push((await get(api, token)).status);
    }
    real.resolve();
    const forged = await flooding;
    const seconds = (performance.now() - started) / 1000;
    const section = "HS256 tokens under a forged-token flood (Auth server stand-in)";
    recordFigure(section, "forged tokens per second", Math.round(forged.length / seconds));
    recordFigure(
      section,
      "a real user's fresh tokens answered (not 503)",
      `${statuses.filter((s) => s === 200).length} of ${statuses.length}`,
    );
    recordFigure(section, "calls to Auth per second", (auth.requests.user / seconds).toFixed(1));
    assert.deepEqual(statuses, Array(12).fill(200), "the real user's requests");
    assert.ok(forged.length >= 600, `flood size ${forged.length}`);
    assert.deepEqual([...new Set(forged)], [401], "every forged token is refused as such");
    assert.equal(auth.requests.user, 12, "Auth is asked only about the real tokens");
  },
);

authTest(
  "forged tokens naming a real user but not their session never reach Auth; a forger's own session gets one call per back-off",
  async (auth, api) => {
    const victim = await signedIn(api);
    const forger = await signedIn(api);
    const stop = new Promise<void>((resolve) => setTimeout(resolve, 1500));
    const [guessed, own] = await Promise.all([
      flood(api, stop, () => forge(victim.id), 3),
      flood(api, stop, () => forge(forger.id, forger.session), 3),
    ]);
    assert.deepEqual([...new Set(guessed)], [401]);
    // the forger's own signer: refused by Auth once, then backed off (503) until its back-off ends
    assert.ok(own.includes(401), JSON.stringify(own.slice(0, 20)));
    assert.ok(own.every((s) => s === 401 || s === 503));
    assert.equal(auth.requests.user, 1, "one call for the forger's signer in 1.5 s");
    // the victim is untouched
    const fresh = await auth.legacyToken(victim.id, { claims: { session_id: victim.session } });
    assert.equal((await get(api, fresh)).status, 200);
  },
);

authTest(
  "a token over 8 KiB is refused with 401 before anything, Auth included",
  async (auth, api) => {
    const user = await signedIn(api);
    const big = await auth.legacyToken(user.id, {
      claims: { session_id: user.session, user_metadata: { pad: "x".repeat(9000) } },
    });
    const answer = await get(api, big);
    assert.equal(answer.status, 401);
    assert.match(JSON.parse(answer.body).detail, /too large/);
    assert.equal(auth.requests.user, 0);
  },
);

for (
  const [what, reply] of [
    [
      "a gateway's plain 400",
      () => new Response("Request Header Or Cookie Too Large", { status: 400 }),
    ],
    [
      "a 429",
      () =>
        Response.json({ message: "rate limit" }, { status: 429, headers: { "retry-after": "30" } }),
    ],
    ["a 502", () => Response.json({ message: "bad gateway" }, { status: 502 })],
    // longer than the verifier waits (upstreamTimeoutMs: 300)
    [
      "a timeout",
      () =>
        new Promise<Response>((resolve) =>
          setTimeout(() => resolve(new Response(null, { status: 504 })), 1000)
        ),
    ],
  ] as const
) {
  authTest(`one bad answer from Auth (${what}) blocks no other token`, async (auth, api) => {
    const user = await signedIn(api);
    const poisoned = await forge(user.id, user.session);
    auth.answer = (token) => token === poisoned ? reply() : undefined;
    const first = await get(api, poisoned);
    assert.ok(first.status === 401 || first.status === 503, `${first.status} ${first.body}`);
    // another user's fresh token right after: answered, not refused for the other's bad luck
    const other = await signedIn(api);
    const token = await auth.legacyToken(other.id, { claims: { session_id: other.session } });
    assert.equal((await get(api, token)).status, 200);
  });
}

authTest(
  "one account's many large tokens do not evict another user's verified token",
  async (auth, api) => {
    const other = await signedIn(api);
    const kept = await auth.legacyToken(other.id, { claims: { session_id: other.session } });
    assert.equal((await get(api, kept)).status, 200);
    const callsBefore = auth.requests.user;
    const flusher = await signedIn(api);
    // 1,300 valid tokens of 7 KB each (base64): 18 MB of cache if all were kept
    for (let i = 0; i < 1300; i++) {
      const token = await auth.legacyToken(flusher.id, {
        claims: { session_id: flusher.session, user_metadata: { pad: "y".repeat(5200), i } },
      });
      assert.equal((await get(api, token)).status, 200);
    }
    assert.equal(auth.requests.user, callsBefore + 1300);
    assert.equal((await get(api, kept)).status, 200);
    assert.equal(auth.requests.user, callsBefore + 1300, "the other user's token is still known");
  },
);

Deno.test("with LEGACY_JWT_SECRET set, HS256 tokens are verified here: real ones pass and forged ones fail with no call to Auth", async () => {
  const auth = startStandInAuth();
  const secret = "a-legacy-jwt-secret-of-at-least-thirty-two-characters";
  const api = await startTestApi({
    db,
    env: {
      SUPABASE_JWKS: '{"keys":[]}',
      SUPABASE_URL: auth.url,
      SUPABASE_PUBLISHABLE_KEYS: JSON.stringify({ default: auth.apiKey }),
      LEGACY_JWT_SECRET: secret,
    },
  });
  try {
    const user = await signedIn(api);
    const real = await signLegacyAccessToken(new TextEncoder().encode(secret), { id: user.id }, {
      claims: { session_id: user.session },
    });
    assert.equal((await get(api, real)).status, 200);
    const forged = await forge(user.id, user.session);
    const refused = await get(api, forged);
    assert.equal(refused.status, 401);
    assert.match(JSON.parse(refused.body).detail, /signature/);
    assert.equal(auth.requests.user, 0);
  } finally {
    await api.idle();
    await api.model.close();
    await auth.close();
  }
});
