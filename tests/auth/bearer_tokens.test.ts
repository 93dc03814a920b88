/** Who gets in: bearer tokens verified against the JWKS, and nothing else runs for the rest. */
import assert from "node:assert/strict";
import * as jose from "jose";
import { createSigningKey, signAccessToken } from "../../local/signing_keys.ts";
import { createTokenVerifier } from "../../supabase/functions/api/auth.ts";
import { startTestApi } from "../support/api.ts";
import { json, send } from "../support/http.ts";

const api = await startTestApi();
const someSession = crypto.randomUUID();

/** Every route that needs a user, with a body that would be valid. */
const routes: [string, string, unknown?][] = [
  ["GET", "/api/sessions"],
  ["GET", `/api/sessions/${someSession}`],
  ["POST", `/api/sessions/${someSession}`, { messages: [{ role: "user", content: "hi" }] }],
  ["PATCH", `/api/sessions/${someSession}/title`, { title: "x" }],
  ["DELETE", `/api/sessions/${someSession}`],
  ["DELETE", "/api/empty-sessions"],
];

async function assertRejectedEverywhere(authorization: string | undefined, pattern: RegExp) {
  for (const [method, path, body] of routes) {
    const response = await send(
      api,
      undefined,
      method,
      path,
      body,
      authorization ? { authorization } : {},
    );
    const { status, body: answer } = { status: response.status, body: await response.json() };
    assert.equal(status, 401, `${method} ${path}`);
    assert.match(response.headers.get("www-authenticate") ?? "", /^Bearer/, `${method} ${path}`);
    assert.match(answer.detail, pattern, `${method} ${path}`);
  }
  // and nothing ran: no session was created, no model was called
  const [row] = await api.db.admin`select count(*)::int as n from public.chat_sessions`;
  assert.equal(row!.n, 0);
  assert.equal(api.model.requests.length, 0);
}

async function signed(
  claims: jose.JWTPayload,
  header: jose.JWTHeaderParameters,
  key: jose.CryptoKey | Uint8Array,
) {
  return await new jose.SignJWT(claims).setProtectedHeader(header).sign(key);
}

const user = await api.user();
const now = Math.floor(Date.now() / 1000);
const baseClaims = {
  sub: user.id,
  role: "authenticated",
  aud: "authenticated",
  iat: now,
  exp: now + 600,
};
const privateKey = await jose.importJWK(api.key.privateJwk, "ES256");

Deno.test("a request without a token gets 401 with WWW-Authenticate: Bearer on every route", async () => {
  await assertRejectedEverywhere(undefined, /no bearer token/);
});

Deno.test("a non-bearer Authorization header gets 401 on every route", async () => {
  await assertRejectedEverywhere("Basic dXNlcjpwYXNz", /not a bearer token/);
});

Deno.test("a malformed token gets 401 on every route", async () => {
  await assertRejectedEverywhere("Bearer not.a.jwt", /malformed/);
});

Deno.test("an expired token gets 401 on every route", async () => {
  const token = await signAccessToken(api.key, { id: user.id }, { expiresInSeconds: -60 });
  await assertRejectedEverywhere(`Bearer ${token}`, /expired/);
});

Deno.test("a token signed by an unknown key gets 401 on every route", async () => {
  const stranger = await createSigningKey();
  const token = await signAccessToken(stranger, { id: user.id });
  await assertRejectedEverywhere(`Bearer ${token}`, /not signed by a known key/);
});

Deno.test("a token with the right kid but signed by another key gets 401", async () => {
  const stranger = await createSigningKey();
  const token = await signAccessToken({ ...stranger, kid: api.key.kid }, { id: user.id });
  await assertRejectedEverywhere(`Bearer ${token}`, /signature does not verify/);
});

Deno.test("an unsigned token (alg none) gets 401", async () => {
  const token = new jose.UnsecuredJWT(baseClaims).encode();
  await assertRejectedEverywhere(`Bearer ${token}`, /not accepted|malformed/);
});

Deno.test("an HS256 token signed with the public key (algorithm confusion) gets 401", async () => {
  const publicKeyBytes = new TextEncoder().encode(JSON.stringify(api.key.publicJwk));
  const token = await signed(baseClaims, { alg: "HS256", kid: api.key.kid }, publicKeyBytes);
  await assertRejectedEverywhere(`Bearer ${token}`, /not signed by a known key/);
});

Deno.test("tokens that are not a signed-in user's (anon, service_role) get 401", async () => {
  for (const role of ["anon", "service_role"]) {
    const token = await signed(
      { ...baseClaims, role },
      { alg: "ES256", kid: api.key.kid },
      privateKey,
    );
    await assertRejectedEverywhere(`Bearer ${token}`, /not a signed-in user's/);
  }
});

Deno.test("a token without sub, or with a sub that is not a UUID, gets 401", async () => {
  const { sub: _, ...noSub } = baseClaims;
  await assertRejectedEverywhere(
    `Bearer ${await signed(noSub, { alg: "ES256", kid: api.key.kid }, privateKey)}`,
    /"sub" claim/,
  );
  const notUuid = await signed(
    { ...baseClaims, sub: "admin" },
    { alg: "ES256", kid: api.key.kid },
    privateKey,
  );
  await assertRejectedEverywhere(`Bearer ${notUuid}`, /subject is not a user id/);
});

Deno.test("a token without exp, or for another audience, gets 401", async () => {
  const { exp: _, ...noExp } = baseClaims;
  await assertRejectedEverywhere(
    `Bearer ${await signed(noExp, { alg: "ES256", kid: api.key.kid }, privateKey)}`,
    /"exp" claim/,
  );
  const otherAudience = await signed({ ...baseClaims, aud: "other" }, {
    alg: "ES256",
    kid: api.key.kid,
  }, privateKey);
  await assertRejectedEverywhere(`Bearer ${otherAudience}`, /"aud" claim/);
});

Deno.test("a token not yet valid (nbf in the future) gets 401", async () => {
  const token = await signed(
    { ...baseClaims, nbf: now + 600 },
    { alg: "ES256", kid: api.key.kid },
    privateKey,
  );
  await assertRejectedEverywhere(`Bearer ${token}`, /"nbf" claim/);
});

Deno.test("an HS256 token signed with a legacy project's shared secret (an oct JWK) is accepted", async () => {
  const secret = crypto.getRandomValues(new Uint8Array(32));
  const legacy = await startTestApi({
    env: {
      SUPABASE_JWKS: JSON.stringify({
        keys: [api.key.publicJwk, { kty: "oct", k: jose.base64url.encode(secret), alg: "HS256" }],
      }),
    },
  });
  const legacyUser = await legacy.user();
  const token = await signed({ ...baseClaims, sub: legacyUser.id }, { alg: "HS256" }, secret);
  const { status, body } = await json(send(legacy, undefined, "GET", "/api/sessions", undefined, {
    authorization: `Bearer ${token}`,
  }));
  assert.equal(status, 200);
  assert.deepEqual(body, []);
});

Deno.test("a valid token of a user deleted since gets 404 for reads and 401 when creating", async () => {
  const gone = await api.user();
  const session = crypto.randomUUID();
  await api.db.admin`delete from auth.users where id = ${gone.id}`;
  assert.deepEqual(await json(send(api, gone, "GET", "/api/sessions")), { status: 200, body: [] });
  assert.equal((await send(api, gone, "GET", `/api/sessions/${session}`)).status, 404);
  const created = await send(api, gone, "POST", `/api/sessions/${session}`, {
    messages: [{ role: "user", content: "anyone there?" }],
  });
  assert.equal(created.status, 401);
  assert.match((await created.json()).detail, /no longer exists/);
  assert.equal(api.model.requests.length, 0);
});

Deno.test("GET /api/health answers without a token and checks the database", async () => {
  assert.deepEqual(await json(send(api, undefined, "GET", "/api/health")), {
    status: 200,
    body: { status: "ok", database: "ok" },
  });
});

Deno.test("a CORS preflight is answered with the allowed headers and methods", async () => {
  const response = await send(api, undefined, "OPTIONS", "/api/sessions", undefined, {
    origin: "https://app.example.com",
    "access-control-request-method": "POST",
    "access-control-request-headers": "authorization, content-type",
  });
  assert.equal(response.status, 204);
  assert.equal(response.headers.get("access-control-allow-origin"), "*");
  // PUT since the tree (issue 17): PUT /api/sessions/{id}/current
  assert.match(
    response.headers.get("access-control-allow-methods") ?? "",
    /GET,POST,PUT,PATCH,DELETE/,
  );
  const allowed = (response.headers.get("access-control-allow-headers") ?? "").toLowerCase();
  for (const header of ["authorization", "content-type", "apikey", "x-client-info"]) {
    assert.ok(allowed.includes(header), `${header} in ${allowed}`);
  }
});

Deno.test("CORS origins come from config: a listed origin is echoed, others are not", async () => {
  const strict = await startTestApi({ env: { CORS_ORIGINS: "https://app.example.com" } });
  const preflight = (origin: string) =>
    send(strict, undefined, "OPTIONS", "/api/sessions", undefined, {
      origin,
      "access-control-request-method": "GET",
    });
  assert.equal(
    (await preflight("https://app.example.com")).headers.get("access-control-allow-origin"),
    "https://app.example.com",
  );
  assert.equal(
    (await preflight("https://evil.example.com")).headers.get("access-control-allow-origin"),
    null,
  );
});

Deno.test("a remembered token stops working when it expires", async () => {
  const verify = createTokenVerifier({ jwks: { keys: [api.key.publicJwk] } }, {
    clockToleranceSeconds: 0,
  });
  const token = await signAccessToken(api.key, { id: user.id }, { expiresInSeconds: 1 });
  assert.equal((await verify(token)).sub, user.id);
  assert.equal((await verify(token)).sub, user.id); // now from memory
  await new Promise((resolve) => setTimeout(resolve, 1100));
  await assert.rejects(verify(token), /expired/);
});

Deno.test("the verifier's memory of tokens is bounded in bytes: many users' refreshed, metadata-heavy tokens cannot fill the worker", async () => {
  // 4000 valid tokens of ~8 KB each (the most a token may be), of 1000 users: about 64 MB with
  // their decoded claims if all were kept, a quarter of a worker's 256 MB
  const probe = new URL("../support/verifier_heap.ts", import.meta.url).pathname;
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    // --no-lock: under `deno task test:edge` this is Deno 2.1.4, which cannot read the root deno.lock
    args: ["run", "-A", "--no-lock", "--v8-flags=--expose-gc", probe, "4000", "5400", "1000"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(code, 0, new TextDecoder().decode(stderr));
  const { retainedBytes } = JSON.parse(new TextDecoder().decode(stdout));
  assert.ok(retainedBytes < 40 * 1024 * 1024, `the verifier holds ${retainedBytes} bytes`);
});
