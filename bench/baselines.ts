/**
 * The baselines a benchmark compares the API with, each a process of its own:
 *   deno run -A bench/baselines.ts hello <port>             a constant answer: the runtime's ceiling
 *   deno run -A bench/baselines.ts floor <port> <db url>    one Postgres round trip per request: the database's floor
 *   deno run -A bench/baselines.ts floor-list <port> <db url> <user id>
 *       the list route's query and JSON for one user, without auth or RLS: what the data alone costs
 */
import postgres from "postgres";

const [kind, port, databaseUrl] = Deno.args;
if (kind === "hello") {
  Deno.serve(
    { port: Number(port), hostname: "127.0.0.1", onListen: () => {} },
    () => new Response("hello"),
  );
} else if (kind === "floor") {
  // the same pool size and driver as the API
  const sql = postgres(databaseUrl!, { max: 5, onnotice: () => {} });
  Deno.serve({ port: Number(port), hostname: "127.0.0.1", onListen: () => {} }, async () => {
    const [row] = await sql`select 1 as one`;
    return Response.json(row);
  });
} else if (kind === "floor-list") {
  const sql = postgres(databaseUrl!, { max: 5, onnotice: () => {} });
  const owner = Deno.args[3]!;
  Deno.serve({ port: Number(port), hostname: "127.0.0.1", onListen: () => {} }, async () => {
    const rows = await sql`select id, title, created_at, updated_at from public.chat_sessions
                           where user_id = ${owner} order by updated_at desc, id desc`;
    return Response.json(rows);
  });
} else {
  console.error("usage: baselines.ts hello|floor|floor-list <port> [database url] [user id]");
  Deno.exit(2);
}
