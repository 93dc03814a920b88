/**
 * The baselines a benchmark compares the API with, each a process of its own:
 *   deno run -A bench/baselines.ts hello <port>             a constant answer: the runtime's ceiling
 *   deno run -A bench/baselines.ts floor <port> <db url>    one Postgres round trip per request: the database's floor
 *   deno run -A bench/baselines.ts floor-list <port> <db url> <user id>
 *       the list route's query and JSON for one user, without auth or RLS: what the data alone costs
 *   deno run -A bench/baselines.ts floor-history <port> <db url> <session id>
 *       the history route's query (the current branch, `branchJsonStart`) and its JSON for one
 *       session, as the database owner: without token or RLS transaction
 */
import postgres from "postgres";
import type { Tx } from "../supabase/functions/api/database.ts";
import { branchJsonStart } from "../supabase/functions/api/store/branch.ts";

const [kind, port, databaseUrl] = Deno.args;
const serve = (handler: () => Response | Promise<Response>) =>
  Deno.serve({ port: Number(port), hostname: "127.0.0.1", onListen: () => {} }, handler);
// the same pool size and driver as the API
const pool = () => postgres(databaseUrl!, { max: 5, onnotice: () => {} });

if (kind === "hello") {
  serve(() => new Response("hello"));
} else if (kind === "floor") {
  const sql = pool();
  serve(async () => {
    const [row] = await sql`select 1 as one`;
    return Response.json(row);
  });
} else if (kind === "floor-list") {
  const sql = pool();
  const owner = Deno.args[3]!;
  serve(async () => {
    const rows = await sql`select id, title, created_at, updated_at from public.chat_sessions
                           where user_id = ${owner} order by updated_at desc, id desc`;
    return Response.json(rows);
  });
} else if (kind === "floor-history") {
  const sql = pool();
  const session = Deno.args[3]!;
  serve(async () => {
    // the very statement the route sends for a whole current branch (one page here), read raw
    const [row] = await branchJsonStart(sql as unknown as Tx, session, { current: true }).raw();
    const json = row![0] as Uint8Array | null;
    const body = json ? new Uint8Array(json.length + 2) : "[]";
    if (json && typeof body !== "string") {
      body.set([0x5b]);
      body.set(json, 1);
      body.set([0x5d], json.length + 1);
    }
    return new Response(body, { headers: { "content-type": "application/json" } });
  });
} else {
  console.error(
    "usage: baselines.ts hello|floor|floor-list|floor-history <port> [database url] [user or session id]",
  );
  Deno.exit(2);
}
