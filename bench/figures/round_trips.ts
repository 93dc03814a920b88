/** 1. Database round trips per request, counted at a proxy in front of Postgres. */
import type { Figure } from "../figure.ts";
import { startRoundTripProxy } from "../round_trip_proxy.ts";

const settle = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export const roundTrips: Figure = {
  name: "round-trips",
  title: "1. Database round trips per request",
  async run(bench) {
    const { db } = bench;
    const pg = new URL(db.url);
    const proxy = startRoundTripProxy({ hostname: pg.hostname, port: Number(pg.port) });
    try {
      const proxied = new URL(db.url);
      proxied.port = String(proxy.port);
      // the quotas on, as they are by default: they are part of a send's work
      const counted = await bench.startApi({
        databaseUrl: proxied.href,
        poolMax: 1,
        env: { QUOTA_MESSAGES_PER_DAY: "1000", QUOTA_CONCURRENT_STREAMS: "5" },
      });
      const other = await bench.signUp();
      const conversation = crypto.randomUUID();
      const count = async (
        what: string,
        request: () => Promise<Response>,
        untilHeaders = false,
      ) => {
        await settle(50); // earlier background saves settle
        const before = proxy.roundTrips;
        const response = await request();
        const atHeaders = proxy.roundTrips - before;
        await response.arrayBuffer();
        await settle(100);
        return {
          what,
          status: response.status,
          trips: untilHeaders ? atHeaders : proxy.roundTrips - before,
          total: proxy.roundTrips - before,
        };
      };
      const req = (method: string, path: string, body?: unknown) => () =>
        fetch(`${counted.url}${path}`, {
          method,
          headers: { ...other.auth, "content-type": "application/json" },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
      // a reply that is not over when its headers leave (its second word comes 50 ms after the
      // first), so the save is not counted as the work before the model
      const chatBody = { messages: [{ role: "user", content: "count me" }], model: "slow-2-50" };
      await req("GET", "/api/sessions")().then((r) => r.arrayBuffer()); // the pool's one connection is open
      // each request twice: the first use of a statement on a connection prepares it (an extra
      // round trip the first time only); the second shows the steady state
      const twice = async (
        what: string,
        make: () => () => Promise<Response>,
        untilHeaders = false,
      ) => {
        const first = await count(what, make(), untilHeaders);
        const steady = await count(what, make(), untilHeaders);
        return { ...steady, first: first.trips };
      };
      await req("POST", `/api/sessions/${conversation}`, chatBody)().then((r) => r.arrayBuffer());
      const doomed = (await db.admin<{ id: string }[]>`
        insert into public.chat_sessions (user_id) select ${other.id} from generate_series(1, 2)
        returning id`).map((r) => r.id);
      const trips = [
        await twice("GET /api/health", () => req("GET", "/api/health")),
        await twice("GET /api/sessions", () => req("GET", "/api/sessions")),
        await twice(
          "POST /api/sessions/{id}, new session: before the model",
          () => req("POST", `/api/sessions/${crypto.randomUUID()}`, chatBody),
          true,
        ),
        await twice(
          "POST /api/sessions/{id}, existing session: before the model",
          () => req("POST", `/api/sessions/${conversation}`, chatBody),
          true,
        ),
        await twice("GET /api/sessions/{id}", () => req("GET", `/api/sessions/${conversation}`)),
        await twice(
          "PATCH /api/sessions/{id}/title",
          () => req("PATCH", `/api/sessions/${conversation}/title`, { title: "x" }),
        ),
        await twice(
          "DELETE /api/sessions/{id}",
          () => req("DELETE", `/api/sessions/${doomed.pop()}`),
        ),
        await twice("DELETE /api/empty-sessions", () => req("DELETE", "/api/empty-sessions")),
      ];
      await counted.stop();
      const preModel = Math.max(
        ...trips.filter((t) => t.what.startsWith("POST")).map((t) => t.trips),
      );
      const reads = Math.max(...trips.filter((t) => t.what.startsWith("GET")).map((t) => t.trips));
      return {
        verdicts: [
          {
            figure: "1. round trips, POST before the model",
            target: "≤ 2",
            measured: String(preModel),
            met: preModel <= 2,
          },
          {
            figure: "1. round trips, each read route",
            target: "≤ 4",
            measured: String(reads),
            met: reads <= 4,
          },
        ],
        lines: [
          "Counted at a TCP proxy in front of Postgres (a round trip: the client speaks after the server answered),",
          "one request at a time on a pool of one connection. Target: at most 2 for a POST's work before the model, at most 4 for each read.",
          "",
          "| request | status | round trips | first use on a connection | including the reply's save |",
          "| --- | --- | --- | --- | --- |",
          ...trips.map((t) =>
            `| ${t.what} | ${t.status} | **${t.trips}** | ${t.first} | ${t.total} |`
          ),
        ],
      };
    } finally {
      proxy.close();
    }
  },
};
