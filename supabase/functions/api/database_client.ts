/**
 * How each of the function's postgres.js clients is opened (one connection each, lent by
 * `database_pool.ts`): TLS, prepared statements or not, timestamps as ISO 8601, and a stray
 * rejection of postgres.js 3.4.9 kept from ending the isolate.
 */
import postgres from "postgres";
import { isConnectionLost } from "./database_errors.ts";
import { tlsFor } from "./database_tls.ts";

export interface ClientOptions {
  /** prepared statements (off through the transaction pooler) */
  prepare?: boolean;
  /** the CA to verify the server against (DB_CA_CERT) */
  ca?: string | undefined;
}

/** Opens a client of one connection to `url` each time it is called; `onclose` hears of its closing. */
export function clientOpener(
  url: string,
  opts: ClientOptions = {},
): (onclose: () => void) => postgres.Sql {
  dropStrayTypeQueryFailures();
  const options: postgres.Options<Record<string, postgres.PostgresType>> = {
    // the transaction pooler (Supavisor, port 6543) cannot keep prepared statements
    prepare: opts.prepare ?? true,
    ...tlsFor(url, opts.ca),
    // an idle instance gives its connections back soon: the plan's connections are shared
    idle_timeout: 20,
    connect_timeout: 5,
    onnotice: () => {},
    connection: { TimeZone: "UTC", application_name: "chat-api" },
    types: {
      // timestamps leave as ISO 8601 with offset and full precision: 2026-11-25T09:38:39.123456+00:00
      timestamptz: {
        to: 1184,
        from: [1184],
        serialize: (value: string) => value,
        parse: isoTimestamp,
      },
    },
  };
  return (onclose) => postgres(url, { ...options, max: 1, onclose });
}

let strayFailuresDropped = false;

/**
 * postgres.js 3.4.9 reads a new connection's array types with a query nobody awaits: when the
 * connection drops in that moment, the query's rejection goes unhandled, and an unhandled
 * rejection ends the isolate (a test saw it under load). Whoever waits for that connection
 * learns of the loss on its own; this one rejection is dropped, any other is left alone.
 */
function dropStrayTypeQueryFailures() {
  if (strayFailuresDropped) return;
  strayFailuresDropped = true;
  globalThis.addEventListener("unhandledrejection", (event) => {
    const reason = event.reason as { query?: unknown } | undefined;
    if (isConnectionLost(reason) && /\btyparray\b/.test(String(reason?.query))) {
      event.preventDefault();
    }
  });
}

/** "2026-11-25 09:38:39.123456+00" → "2026-11-25T09:38:39.123456+00:00" (string ops: it runs per value) */
function isoTimestamp(value: string): string {
  const iso = `${value.slice(0, 10)}T${value.slice(11)}`;
  const sign = iso[iso.length - 3];
  return sign === "+" || sign === "-" ? `${iso}:00` : iso;
}
