/**
 * A reply's run state (reply/run.ts): the named transitions the relay relies on,
 * and its timers, which never run once the state they serve is over.
 */
import assert from "node:assert/strict";
import { ReplyRun } from "../../supabase/functions/api/reply/run.ts";

const tick = (ms = 0) => new Promise((resolve) => setTimeout(resolve, ms));

Deno.test("streaming → stopping: the first reason wins, and only it stops the model", () => {
  const run = new ReplyRun();
  assert.equal(run.phase, "streaming");
  assert.equal(run.stop("max_duration"), true);
  assert.equal(run.phase, "stopping");
  assert.equal(run.stop("shutdown"), false, "a second reason changes nothing");
  assert.equal(run.stoppedAs, "max_duration");
  assert.ok(run.reading);
});

Deno.test("a stop once the model is done changes nothing, and is answered when the run ends", async () => {
  const run = new ReplyRun();
  run.modelDone();
  assert.equal(run.phase, "saving");
  assert.equal(run.stop("shutdown"), false);
  assert.equal(run.stoppedAs, undefined);
  let ended = false;
  run.ended.then(() => ended = true);
  await tick();
  assert.equal(ended, false, "not before it is saved");
  run.end();
  await tick();
  assert.equal(run.phase, "ended");
  assert.equal(ended, true);
});

Deno.test("transitions out of order are refused", () => {
  const run = new ReplyRun();
  assert.throws(() => run.end(), /end while streaming/);
  run.modelDone();
  assert.throws(() => run.modelDone(), /modelDone while saving/);
});

Deno.test("the deadline and progress timers stop with the model; the flush timer with the client", async () => {
  const run = new ReplyRun();
  const fired: string[] = [];
  run.after("deadline", 5, () => fired.push("deadline"));
  run.after("progress", 5, () => fired.push("progress"));
  run.after("flush", 5, () => fired.push("flush"));
  assert.ok(run.pending("deadline") && run.pending("progress") && run.pending("flush"));
  run.modelDone();
  run.clientLeft();
  assert.ok(!run.pending("deadline") && !run.pending("progress") && !run.pending("flush"));
  // nor can they be set again once their state is over
  run.after("progress", 0, () => fired.push("progress again"));
  run.after("flush", 0, () => fired.push("flush again"));
  await tick(20);
  assert.deepEqual(fired, []);
  assert.equal(run.clientAttached, false);
});

Deno.test("a timer runs once, and setting it again replaces it", async () => {
  const run = new ReplyRun();
  const fired: string[] = [];
  run.after("flush", 5, () => fired.push("first"));
  run.after("flush", 5, () => fired.push("second"));
  await tick(20);
  assert.deepEqual(fired, ["second"]);
  assert.equal(run.pending("flush"), false);
});
