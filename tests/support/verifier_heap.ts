/**
 * Run as its own process with `--v8-flags=--expose-gc` (tests/auth/bearer_tokens.test.ts):
 * verifies `count` distinct valid tokens of `users` users, each carrying
 * `metadataBytes` of user metadata (which a user sets themselves with supabase-js
 * `auth.updateUser({ data })`, and every refresh reissues under a new `iat`),
 * with one token verifier, and prints how many bytes of heap the verifier
 * still holds once they are verified and garbage is collected.
 */
import { createSigningKey, signAccessToken } from "../../local/signing_keys.ts";
import { createTokenVerifier } from "../../supabase/functions/api/auth.ts";

const [count, metadataBytes, users] = Deno.args.map(Number) as [number, number, number];
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("run with --v8-flags=--expose-gc");

const key = await createSigningKey();
const verify = createTokenVerifier({ jwks: { keys: [key.publicJwk] } });
const ids = Array.from({ length: users }, () => ({ id: crypto.randomUUID() }));
gc();
const before = Deno.memoryUsage().heapUsed;
for (let i = 0; i < count; i++) {
  // made and dropped one at a time: only what the verifier keeps stays reachable
  const token = await signAccessToken(key, ids[i % users]!, {
    claims: { user_metadata: { bio: `${i} `.padEnd(metadataBytes, "x") } },
  });
  await verify(token);
}
gc();
console.log(JSON.stringify({ retainedBytes: Deno.memoryUsage().heapUsed - before }));
