/**
 * The scale figure's instruments (bench/database_load.ts): what Postgres's own statistics say a
 * load wrote, which connections it held, and the server's CPU; and the stand-in model's grouped
 * slow replies the figure streams.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { DatabaseLoad, delta } from "../../bench/database_load.ts";
import { scriptByModelName } from "../../local/stand_in_model.ts";
import { createTestDatabase } from "../support/database.ts";

Deno.test("the database's counters see another connection's writes, its WAL and its connection", async () => {
  const db = await createTestDatabase();
  const load = new DatabaseLoad(db.url);
  try {
    await db.admin`create table public.bench_probe (id int primary key, body text)`;
    const before = await load.counters();
    const cpuBefore = await load.cpuSeconds();

    const writer = postgres(db.url, {
      max: 1,
      onnotice: () => {},
      connection: { application_name: "probe-writer" },
    });
    await writer`insert into public.bench_probe
                 select g, repeat('x', 1000) from generate_series(1, 50) g`;
    await writer`update public.bench_probe set body = 'y' where id <= 10`;
    await writer`delete from public.bench_probe where id > 40`;
    const seen = await load.activity();
    assert.equal(seen.open["probe-writer"], 1, JSON.stringify(seen.open));
    // a backend's statistics reach the shared view at the latest when it exits
    await writer.end();

    let d = delta(before, await load.counters());
    for (let i = 0; i < 50 && !d.tables["public.bench_probe"]; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      d = delta(before, await load.counters());
    }
    assert.deepEqual(
      { ...d.tables["public.bench_probe"], hot: 0 },
      { inserted: 50, updated: 10, hot: 0, deleted: 10 },
    );
    assert.ok(d.rows >= 70, `rows written: ${d.rows}`);
    assert.ok(d.commits >= 3, `transactions: ${d.commits}`);
    // 50 rows of 1,000 bytes, and the WAL reached the disk
    assert.ok(d.walBytes > 50_000, `WAL bytes: ${d.walBytes}`);
    assert.ok(d.walSyncs + d.walWrites > 0, "WAL written and synced");
    const cpuAfter = await load.cpuSeconds();
    assert.ok(cpuBefore > 0 && cpuAfter >= cpuBefore, `CPU ${cpuBefore} → ${cpuAfter}`);
  } finally {
    await load.end();
    await db.admin.end();
  }
});

Deno.test("the stand-in's slow-N-MS-W replies stream N chunks of W numbered words", () => {
  const script = scriptByModelName({ model: "slow-3-250-4", messages: [] });
  assert.deepEqual(script.chunks, ["w0 w1 w2 w3 ", "w4 w5 w6 w7 ", "w8 w9 w10 w11 "]);
  assert.equal(script.delayMs, 250);
  // the two-number form is unchanged: one word per chunk
  assert.deepEqual(scriptByModelName({ model: "slow-2-50", messages: [] }).chunks, ["w0 ", "w1 "]);
});
