/**
 * A local ES256 signing key standing in for a Supabase project's JWT signing
 * key, and access tokens shaped like the ones Supabase Auth issues.
 * Local tooling only: the edge function never imports this.
 */
import * as jose from "jose";

export interface SigningKey {
  kid: string;
  privateJwk: jose.JWK;
  publicJwk: jose.JWK;
}

export async function createSigningKey(): Promise<SigningKey> {
  const { privateKey, publicKey } = await jose.generateKeyPair("ES256", { extractable: true });
  const kid = crypto.randomUUID();
  return {
    kid,
    privateJwk: { ...(await jose.exportJWK(privateKey)), kid, alg: "ES256" },
    publicJwk: { ...(await jose.exportJWK(publicKey)), kid, alg: "ES256", use: "sig" },
  };
}

/** The JWKS the function is configured with (`SUPABASE_JWKS`). */
export function jwksOf(...keys: SigningKey[]): { keys: jose.JWK[] } {
  return { keys: keys.map((k) => k.publicJwk) };
}

export async function signAccessToken(
  key: SigningKey,
  user: { id: string; email?: string | null },
  opts: { expiresInSeconds?: number; claims?: Record<string, unknown> } = {},
): Promise<string> {
  return await accessToken(user, opts)
    .setProtectedHeader({ alg: "ES256", kid: key.kid, typ: "JWT" })
    .sign(await jose.importJWK(key.privateJwk, "ES256"));
}

/** A token as a project on the legacy JWT secret issues it: HS256, no `kid`. */
export async function signLegacyAccessToken(
  secret: Uint8Array,
  user: { id: string; email?: string | null },
  opts: { expiresInSeconds?: number; claims?: Record<string, unknown> } = {},
): Promise<string> {
  return await accessToken(user, opts).setProtectedHeader({ alg: "HS256", typ: "JWT" }).sign(
    secret,
  );
}

function accessToken(
  user: { id: string; email?: string | null },
  opts: { expiresInSeconds?: number; claims?: Record<string, unknown> },
): jose.SignJWT {
  const now = Math.floor(Date.now() / 1000);
  return new jose.SignJWT({
    iss: "http://127.0.0.1:54321/auth/v1",
    aud: "authenticated",
    role: "authenticated",
    email: user.email ?? "",
    phone: "",
    app_metadata: { provider: "email", providers: ["email"] },
    user_metadata: {},
    aal: "aal1",
    amr: [{ method: "password", timestamp: now }],
    session_id: crypto.randomUUID(),
    is_anonymous: false,
    ...opts.claims,
  })
    .setSubject(user.id)
    .setIssuedAt(now)
    .setExpirationTime(now + (opts.expiresInSeconds ?? 3600));
}
