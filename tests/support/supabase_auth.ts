/**
 * A stand-in for a Supabase project's Auth service on loopback, the two
 * endpoints the function uses, shaped as supabase/auth serves them:
 * - GET /auth/v1/.well-known/jwks.json: the published asymmetric keys only
 *   (never the symmetric secret: `internal/api/jwks.go`);
 * - GET /auth/v1/user: 200 with the user when the bearer token verifies
 *   against the legacy secret or a published key, 403 `bad_jwt` when it does
 *   not, and, like the hosted gateway, 401 without an error code when the
 *   `apikey` header is missing or wrong.
 * It counts requests, and can be switched to failing (503), hanging, or
 * closed, to play an outage.
 */
import * as jose from "jose";
import { type SigningKey, signLegacyAccessToken } from "../../local/signing_keys.ts";

export type AuthMode = "up" | "failing" | "hanging";

export interface StandInAuth {
  /** SUPABASE_URL */
  url: string;
  /** the publishable key the gateway accepts */
  apiKey: string;
  /** the project's legacy JWT secret: signs HS256 tokens, never published */
  legacySecret: Uint8Array;
  requests: { jwks: number; user: number; apiKeys: (string | null)[] };
  /** what the JWKS endpoint publishes from now on */
  publish(...keys: SigningKey[]): void;
  mode: AuthMode;
  /** answers a /user request for this token itself, as a gateway or a struggling Auth would */
  answer?: (token: string) => Response | Promise<Response> | undefined;
  legacyToken(
    userId: string,
    opts?: { expiresInSeconds?: number; claims?: Record<string, unknown> },
  ): Promise<string>;
  close(): Promise<void>;
}

export function startStandInAuth(): StandInAuth {
  const apiKey = `sb_publishable_${crypto.randomUUID().replaceAll("-", "")}`;
  const legacySecret = crypto.getRandomValues(new Uint8Array(32));
  let published: SigningKey[] = [];
  const hanging = new Set<() => void>();
  const requests: StandInAuth["requests"] = { jwks: 0, user: 0, apiKeys: [] };

  const publishedSet = () => jose.createLocalJWKSet({ keys: published.map((k) => k.publicJwk) });
  const keyFor: jose.JWTVerifyGetKey = async (header, token) =>
    header.alg === "HS256" ? legacySecret : await publishedSet()(header, token);

  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/auth/v1/.well-known/jwks.json") requests.jwks++;
    else if (path === "/auth/v1/user") {
      requests.user++;
      requests.apiKeys.push(req.headers.get("apikey"));
    } else return Response.json({ message: "no Route matched with those values" }, { status: 404 });

    if (standIn.mode === "failing") {
      return Response.json(
        { message: "An invalid response was received from the upstream server" },
        {
          status: 503,
        },
      );
    }
    if (standIn.mode === "hanging") {
      await new Promise<void>((resolve) => hanging.add(resolve));
      return new Response(null, { status: 504 });
    }
    if (path.endsWith("jwks.json")) {
      return Response.json({ keys: published.map((k) => k.publicJwk) });
    }
    if (req.headers.get("apikey") !== apiKey) {
      return Response.json({ message: "Invalid API key" }, { status: 401 });
    }
    const token = /^Bearer (.+)$/.exec(req.headers.get("authorization") ?? "")?.[1];
    const answered = token && standIn.answer?.(token);
    if (answered) return await answered;
    if (!token) {
      return Response.json({
        code: 401,
        error_code: "no_authorization",
        msg: "This endpoint requires a Bearer token",
      }, { status: 401 });
    }
    try {
      const { payload } = await jose.jwtVerify(token, keyFor, {
        algorithms: ["HS256", "ES256"],
      });
      return Response.json({
        id: payload.sub,
        aud: payload.aud,
        role: payload.role,
        email: payload.email,
      });
    } catch (error) {
      return Response.json({
        code: 403,
        error_code: "bad_jwt",
        msg: `invalid JWT: unable to parse or verify signature, ${error}`,
      }, { status: 403 });
    }
  });

  const standIn: StandInAuth = {
    url: `http://127.0.0.1:${server.addr.port}`,
    apiKey,
    legacySecret,
    requests,
    mode: "up",
    publish(...keys) {
      published = keys;
    },
    legacyToken: (userId, opts) => signLegacyAccessToken(legacySecret, { id: userId }, opts),
    async close() {
      for (const resolve of hanging) resolve();
      await server.shutdown();
    },
  };
  return standIn;
}
