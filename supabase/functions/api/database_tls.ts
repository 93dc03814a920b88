/**
 * Whether, and how, the function's connections to Postgres use TLS: decided from the connection
 * string alone (and the CA, when one is given), once, when the connections are set up.
 */
/** How postgres.js should do TLS: nothing (it reads `sslmode` from the URL), off, or options. */
export type Tls = { ssl?: false | "prefer" | "require" | { ca: string; servername?: string } };

/**
 * TLS for a connection string. With `ca` (DB_CA_CERT) the server is verified against that CA,
 * unless the URL says `sslmode=disable` or the host is loopback without an `sslmode`. Otherwise
 * a `sslmode` in the URL is left to postgres.js; else none on loopback, `prefer` on a private
 * network (the CLI's `db` container, 10.x, 192.168.x: TLS when the server offers it), and
 * `require` everywhere else, as Supabase's direct connection (`db.<ref>.supabase.co`) and pooler
 * (`*.pooler.supabase.com`) serve TLS and may enforce it.
 *
 * `require` skips verification under Deno 2.9, but the Edge Runtime's Deno 2.1 verifies anyway,
 * against the public roots; Supabase's certificates chain to Supabase's own root CA, hence `ca`.
 * The address ranges are written out: a library for them would add to a bundle that must stay
 * under 5 MB.
 */
export function tlsFor(url: string, ca?: string): Tls {
  const { hostname, searchParams } = new URL(url);
  const sslmode = searchParams.get("sslmode") ?? searchParams.get("ssl");
  const host = hostname.replace(/^\[|\]$/g, "").toLowerCase();
  const loopback = host === "" || host === "localhost" || host === "::1" || /^127\./.test(host);
  if (ca && sslmode !== "disable" && !(loopback && sslmode === null)) {
    const ip = /^[\d.]+$/.test(host) || host.includes(":");
    return { ssl: ip ? { ca } : { ca, servername: host } };
  }
  if (sslmode !== null) return {};
  if (loopback) return { ssl: false };
  const privateNetwork = !host.includes(".") && !host.includes(":") ||
    /^(10\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.)/.test(host) || /^f[cd][0-9a-f]{2}:/.test(host);
  return { ssl: privateNetwork ? "prefer" : "require" };
}
