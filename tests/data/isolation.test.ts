/**
 * What a caller's search and history reads cost must grow with the caller's
 * own data, never with everyone else's. Checked on the plans Postgres really
 * runs (EXPLAIN ANALYZE, BUFFERS, as the caller under RLS, the app's own
 * queries) with a million other users' messages in the table, all of them
 * matching the search: rows and buffers are counted, not time.
 */
import assert from "node:assert/strict";
import type postgres from "postgres";
import { branchJsonStart, branchPageBefore } from "../../supabase/functions/api/store/branch.ts";
import { messagesAfter } from "../../supabase/functions/api/store/history.ts";
import { searchSessions } from "../../supabase/functions/api/store/search.ts";
import { asCaller, type Tx } from "../../supabase/functions/api/database.ts";
import { connect } from "../../supabase/functions/api/database_pool.ts";
import { createTestDatabase } from "../support/database.ts";
import { recordFigure } from "../support/figures.ts";
import { signUp, userClaims } from "../support/fixtures.ts";

interface PlanNode {
  "Relation Name"?: string;
  "Actual Rows": number;
  "Actual Loops": number;
  "Rows Removed by Filter"?: number;
  "Rows Removed by Index Recheck"?: number;
  "Shared Hit Blocks": number;
  "Shared Read Blocks": number;
  Plans?: PlanNode[];
}

interface Cost {
  /** rows the table scans touched: returned plus filtered out, over every loop */
  rows: number;
  /** shared buffers the execution touched (cache hits and reads) */
  buffers: number;
  /** the scan that touched the most rows, for the failure message */
  widest: string;
}

function costOf(plan: PlanNode): Cost {
  let rows = 0;
  let widest = { rows: 0, what: "" };
  const visit = (node: PlanNode) => {
    if (node["Relation Name"]) {
      // EXPLAIN reports rows per loop
      const touched = (node["Actual Rows"] + (node["Rows Removed by Filter"] ?? 0) +
        (node["Rows Removed by Index Recheck"] ?? 0)) * node["Actual Loops"];
      rows += touched;
      if (touched > widest.rows) {
        widest = { rows: touched, what: `${node["Relation Name"]}: ${touched} rows` };
      }
    }
    node.Plans?.forEach(visit);
  };
  visit(plan);
  return {
    rows,
    buffers: plan["Shared Hit Blocks"] + plan["Shared Read Blocks"],
    widest: widest.what,
  };
}

const db = await createTestDatabase();
const sql = connect(db.url, { max: 1 });
const me = await signUp(db.admin);
const claims = userClaims(me);

// the caller: 20 sessions of 25 messages; every fifth message is about a weekend in Lisbon
const SESSIONS = 20;
const MESSAGES = 25;
const sessions = (await db.admin<{ id: string }[]>`
  insert into public.chat_sessions (user_id, title)
  select ${me}, 'Session ' || g from generate_series(1, ${SESSIONS}) g returning id`)
  .map((row) => row.id);
await db.admin`
  insert into public.messages (chat_session_id, role, content)
  select s, case when g % 2 = 1 then 'user' else 'assistant' end,
         case when g % 5 = 0 then 'A weekend in Lisbon, turn ' || g else 'Turn ' || g || ' of a chat' end
  from unnest(${sessions}::uuid[]) s, generate_series(1, ${MESSAGES}) g`;
const history = sessions[0]!;
const callerRows = SESSIONS + SESSIONS * MESSAGES;

/**
 * How many times a read descends into an index: once per session for a range read; a branch is
 * read a message at a time (its parent by primary key, the session's policy, its siblings by
 * parent_id), a few descents per message of the branch.
 */
const perSession = SESSIONS + 2;
const perBranchMessage = (messages: number) => 4 * messages + 2;

const reads: [
  name: string,
  // deno-lint-ignore no-explicit-any
  query: (tx: Tx) => postgres.PendingQuery<any>,
  descents: number,
][] = [
  ["search", (tx) => searchSessions(tx, "lisbon weekend", 20, 0), perSession],
  // the current branch, read up from its leaf; a page of it; the whole tree, as an export reads it
  [
    "history",
    (tx) => branchJsonStart(tx, history, { current: true }),
    perBranchMessage(MESSAGES),
  ],
  [
    "history page",
    (tx) => branchPageBefore(tx, history, { current: true }, 10, null),
    perBranchMessage(11),
  ],
  ["tree export", (tx) => messagesAfter(tx, history, 0), perSession],
];

/** Each read's plan cost, run as the caller exactly as the API runs it. */
async function measure(): Promise<Map<string, Cost>> {
  await db.admin`vacuum analyze public.chat_sessions, public.messages`;
  const costs = new Map<string, Cost>();
  for (const [name, query] of reads) {
    const [row] = await asCaller(
      sql,
      claims,
      (tx) => tx`explain (analyze, buffers, format json) ${query(tx)}`,
    );
    costs.set(name, costOf(row!["QUERY PLAN"][0].Plan));
  }
  return costs;
}

/**
 * A million messages of 1,000 other users (10 sessions × 100 messages each),
 * every one matching the caller's search. Loaded as the superuser with
 * triggers off (session_replication_role), so the running totals the
 * per-row trigger keeps are written directly: a loaded table, not a test of
 * the trigger.
 */
async function loadOtherUsers() {
  await db.admin`
    insert into auth.users (email)
    select 'other' || g || '@example.com' from generate_series(1, 1000) g`;
  await db.admin`
    insert into public.chat_sessions (user_id, title)
    select u.id, 'Lisbon weekend ' || g
    from auth.users u cross join generate_series(1, 10) g where u.email like 'other%'`;
  await db.admin.begin(async (tx) => {
    await tx`set local session_replication_role = replica`;
    await tx`
      insert into public.messages (chat_session_id, role, content, tokens, tokens_before)
      select s.id, case when g % 2 = 1 then 'user' else 'assistant' end,
             'Another weekend in Lisbon ' || g, 6, (g - 1) * 10
      from public.chat_sessions s cross join generate_series(1, 100) g
      where s.user_id <> ${me}`;
  });
}

const alone = await measure();
await loadOtherUsers();
const [{ others }] = await db.admin<[{ others: number }]>`
  select count(*)::int as others from public.messages m
  join public.chat_sessions s on s.id = m.chat_session_id where s.user_id <> ${me}`;
const crowded = await measure();

for (const [name, , descents] of reads) {
  Deno.test(`${name}: rows and buffers read do not grow with a million other users' messages`, () => {
    assert.equal(others, 1_000_000);
    const before = alone.get(name)!;
    const after = crowded.get(name)!;
    const figures = `${name}: ${JSON.stringify({ alone: before, crowded: after })}`;
    const section = "Scans: a caller's reads among a million other users' messages";
    recordFigure(
      section,
      `${name}: rows read, alone / with 1M others`,
      `${before.rows} / ${after.rows}`,
    );
    recordFigure(
      section,
      `${name}: buffers, alone / with 1M others`,
      `${before.buffers} / ${after.buffers}`,
    );
    // every row it touches is the caller's: at most their rows, read twice (the messages
    // policy reads the caller's session ids once more)
    assert.ok(after.rows <= 2 * callerRows, figures);
    assert.ok(after.rows <= before.rows + SESSIONS, figures);
    // buffers may grow only with the depth of the indexes (a level or two per descent into
    // them); scanning the others' rows read 36,000 for search
    assert.ok(after.buffers <= before.buffers + 3 * descents, figures);
  });
}

Deno.test("search still finds exactly the caller's matching sessions among a million others", async () => {
  const hits = await asCaller(sql, claims, (tx) => searchSessions(tx, "lisbon weekend", 50, 0));
  assert.deepEqual(hits.map((hit) => hit.id).sort(), [...sessions].sort());
  assert.ok(hits.every((hit) => /\*\*Lisbon\*\*/.test(hit.snippet)));
});
