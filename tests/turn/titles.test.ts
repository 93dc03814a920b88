/** Generated titles: after a session's first message the model names it, in the background; a user's rename wins. */
import assert from "node:assert/strict";
import { startTestApi, type TestApi } from "../support/api.ts";
import { chat, json, send } from "../support/http.ts";

async function titled(
  env: Record<string, string>,
  titleScript: Parameters<TestApi["model"]["script"]>[0],
) {
  const withTitles = await startTestApi({ env: { TITLE_GENERATION: "true", ...env } });
  withTitles.model.script((request) =>
    request.stream ? { chunks: ["Sure", ", ", "here", " goes"], delayMs: 40 } : titleScript(request)
  );
  return withTitles;
}

const sessionRow = async (api: TestApi, id: string) =>
  (await api.db.admin<{ title: string; title_set_by: string }[]>`
    select title, title_set_by from public.chat_sessions where id = ${id}`)[0]!;

Deno.test("after a session's first message the model names it, in the background, and SSE and data streams announce it", async () => {
  const withTitles = await titled(
    { TITLE_MODEL: "other-model" },
    () => ({ chunks: ['"Voyage à Rome."'] }),
  );
  const user = await withTitles.user();
  for (const protocol of ["sse", "data"]) {
    const session = crypto.randomUUID();
    const reply = await chat(withTitles, user, session, "Je prépare un voyage à Rome", {
      protocol,
    });
    assert.equal(reply.status, 200);
    assert.deepEqual(await sessionRow(withTitles, session), {
      title: "Voyage à Rome",
      title_set_by: "model",
    });
    const announced = protocol === "sse"
      ? `event: title\ndata: {"session_id":"${session}","title":"Voyage à Rome"}\n\n`
      : `2:[{"type":"title","sessionId":"${session}","title":"Voyage à Rome"}]\n`;
    assert.ok(reply.body.includes(announced), reply.body);
  }
  const titleRequest = withTitles.model.requests.find((r) => !r.stream)!;
  assert.equal(titleRequest.model, "other-model");
  assert.equal(titleRequest.messages.at(-1)!.content, "Je prépare un voyage à Rome");
});

Deno.test("only the first exchange is named, and a rename by the user is never overwritten, even mid-generation", async () => {
  const withTitles = await titled({}, () => ({ chunks: ["Generated title"], delayMs: 400 }));
  const user = await withTitles.user();
  const session = crypto.randomUUID();
  const response = await send(withTitles, user, "POST", `/api/sessions/${session}`, {
    messages: [{ role: "user", content: "Hello" }],
  });
  // the user renames while the title is still being written
  const renamed = await json(
    send(withTitles, user, "PATCH", `/api/sessions/${session}/title`, { title: "Mine" }),
  );
  assert.equal(renamed.status, 200);
  await response.text();
  await withTitles.idle();
  assert.deepEqual(await sessionRow(withTitles, session), { title: "Mine", title_set_by: "user" });
  await chat(withTitles, user, session, "Second message");
  assert.equal(
    withTitles.model.requests.filter((r) => !r.stream).length,
    1,
    "asked for one title only",
  );
});

Deno.test("a failed title leaves 'New Chat - ...' in place and is logged; titles can be switched off", async () => {
  const failing = await titled({}, () => ({ status: 500 }));
  const user = await failing.user();
  const session = crypto.randomUUID();
  assert.equal((await chat(failing, user, session, "Hello")).status, 200);
  assert.match((await sessionRow(failing, session)).title, /^New Chat - /);
  assert.ok(
    failing.logs.some((line) => line.includes("title generation failed")),
    failing.logs.join("\n"),
  );

  const off = await titled({ TITLE_GENERATION: "false" }, () => ({ chunks: ["Never"] }));
  const other = await off.user();
  const quiet = crypto.randomUUID();
  await chat(off, other, quiet, "Hello");
  assert.match((await sessionRow(off, quiet)).title, /^New Chat - /);
  assert.equal(off.model.requests.filter((r) => !r.stream).length, 0);
});

Deno.test("with branches, titles keep to the first exchange: an edit of a later message or a regeneration asks for none once the session is named", async () => {
  const withTitles = await titled({}, (request) => ({
    chunks: [`Title of ${request.messages.at(-1)!.content}`],
  }));
  const user = await withTitles.user();
  const session = crypto.randomUUID();
  await chat(withTitles, user, session, "Plan a trip");
  await chat(withTitles, user, session, "To Rome");
  const titles = () => withTitles.model.requests.filter((r) => !r.stream).length;
  assert.equal(titles(), 1);
  const [, , rome] = (await json(send(withTitles, user, "GET", `/api/sessions/${session}`))).body;
  for (
    const body of [
      { messages: [{ role: "user", content: "To Lisbon" }], messageId: rome.id },
      { messages: [], trigger: "regenerate-message" },
    ]
  ) {
    const response = await send(withTitles, user, "POST", `/api/sessions/${session}`, body);
    assert.equal(response.status, 200);
    await response.text();
    await withTitles.idle();
  }
  assert.equal(titles(), 1);
  assert.deepEqual(await sessionRow(withTitles, session), {
    title: "Title of Plan a trip",
    title_set_by: "model",
  });
});
