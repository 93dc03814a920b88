/** Keyset pages of sessions and of a session's messages: `?limit`, signed cursors in `Link` and `X-Next-Cursor`. */
import assert from "node:assert/strict";
import { createCursors } from "../../supabase/functions/api/cursors.ts";
import { startTestApi, TEST_CURSOR_SECRET, type TestApi, type TestUser } from "../support/api.ts";
import { createSession } from "../support/fixtures.ts";
import { json, send } from "../support/http.ts";

const api = await startTestApi();

/** Follows `Link: rel="next"` from `path` to the end; every page's body and headers. */
async function walk(api: TestApi, user: TestUser, path: string) {
  const pages: {
    body: { id: string; content?: string }[];
    link: string | null;
    next: string | null;
  }[] = [];
  let url: string | null = path;
  while (url) {
    const response = await send(api, user, "GET", url);
    assert.equal(response.status, 200, await response.clone().text());
    const link = response.headers.get("link");
    const next = response.headers.get("x-next-cursor");
    pages.push({ body: await response.json(), link, next });
    const target = link?.match(/^<([^>]+)>; rel="next"$/)?.[1];
    url = target
      ? new URL(target, `http://x${url}`).pathname + new URL(target, `http://x${url}`).search
      : null;
    if (pages.length > 50) assert.fail("too many pages");
  }
  return pages;
}

Deno.test("GET /api/sessions?limit pages through the caller's sessions in list order, the cursor in Link and X-Next-Cursor", async () => {
  const user = await api.user();
  for (let i = 0; i < 7; i++) await createSession(api.db.admin, user.id, `s${i}`);
  // two ties on updated_at: the order falls back to id
  await api.db.admin`update public.chat_sessions set updated_at = '2026-01-01T00:00:00Z'
                     where user_id = ${user.id} and title in ('s2', 's3')`;
  const full = (await json(send(api, user, "GET", "/api/sessions"))).body.map((s: { id: string }) =>
    s.id
  );
  const pages = await walk(api, user, "/api/sessions?limit=3");
  assert.deepEqual(pages.map((p) => p.body.length), [3, 3, 1]);
  assert.deepEqual(pages.flatMap((p) => p.body.map((s) => s.id)), full);
  for (const page of pages.slice(0, -1)) {
    assert.match(page.link!, /^<\?limit=3&before=[\w.-]+>; rel="next"$/);
    assert.ok(page.link!.includes(page.next!));
  }
  assert.equal(pages.at(-1)!.link, null);
  assert.equal(pages.at(-1)!.next, null);
  // and a browser may read them
  const exposed = (await send(api, user, "GET", "/api/sessions?limit=3", undefined, {
    origin: "https://app.example.com",
  }))
    .headers.get("access-control-expose-headers") ?? "";
  assert.match(exposed, /\blink\b/);
  assert.match(exposed, /\bx-next-cursor\b/);
});

Deno.test("GET /api/sessions/:id?limit pages from the newest messages back, each page in conversation order", async () => {
  const user = await api.user();
  const session = await createSession(api.db.admin, user.id);
  for (let i = 1; i <= 7; i++) {
    await api.db.admin`insert into public.messages (chat_session_id, role, content)
                       values (${session}, ${i % 2 ? "user" : "assistant"}, ${`m${i}`})`;
  }
  const pages = await walk(api, user, `/api/sessions/${session}?limit=3`);
  assert.deepEqual(pages.map((p) => p.body.map((m) => m.content)), [["m5", "m6", "m7"], [
    "m2",
    "m3",
    "m4",
  ], ["m1"]]);
  assert.deepEqual(Object.keys(pages[0]!.body[0]!), [
    "id",
    "chat_session_id",
    "role",
    "content",
    "created_at",
    // the tree (issue 17): after the original's fields, its parent and its siblings
    "parent_id",
    "sibling_ids",
  ]);
});

Deno.test("without limit or before, the routes answer in full and send no Link", async () => {
  const user = await api.user();
  const session = await createSession(api.db.admin, user.id);
  for (const path of ["/api/sessions", `/api/sessions/${session}`]) {
    const response = await send(api, user, "GET", path);
    assert.equal(response.headers.get("link"), null);
    assert.equal(response.headers.get("x-next-cursor"), null);
    await response.body?.cancel();
  }
});

Deno.test("limit is clamped to 1..100, and must be a whole number", async () => {
  const user = await api.user();
  await api.db
    .admin`insert into public.chat_sessions (user_id) select ${user.id} from generate_series(1, 101)`;
  assert.equal((await json(send(api, user, "GET", "/api/sessions?limit=0"))).body.length, 1);
  const big = await send(api, user, "GET", "/api/sessions?limit=1000");
  assert.equal((await big.json()).length, 100);
  assert.match(big.headers.get("link") ?? "", /^<\?limit=100&before=/);
  const bad = await json(send(api, user, "GET", "/api/sessions?limit=ten"));
  assert.equal(bad.status, 422);
  assert.deepEqual(bad.body.detail[0].loc, ["query", "limit"]);
});

Deno.test("a forged, altered, foreign or misplaced cursor is a 422, never someone else's data", async () => {
  const [alice, bob] = [await api.user(), await api.user()];
  for (const who of [alice, bob]) {
    for (let i = 0; i < 3; i++) await createSession(api.db.admin, who.id, "secret of " + who.id);
  }
  const bobsCursor = (await send(api, bob, "GET", "/api/sessions?limit=1")).headers.get(
    "x-next-cursor",
  )!;
  const alicesCursor = (await send(api, alice, "GET", "/api/sessions?limit=1")).headers.get(
    "x-next-cursor",
  )!;
  const aliceSession = (await json(send(api, alice, "GET", "/api/sessions"))).body[0].id;
  const altered = alicesCursor.slice(0, -3) + (alicesCursor.endsWith("AAA") ? "BBB" : "AAA");
  for (
    const [path, why] of [
      [`/api/sessions?before=${bobsCursor}`, "another user's cursor"],
      [`/api/sessions?before=${altered}`, "an altered cursor"],
      ["/api/sessions?before=not-a-cursor", "a forged cursor"],
      [
        `/api/sessions/${aliceSession}?before=${alicesCursor}`,
        "a sessions cursor used for messages",
      ],
    ]
  ) {
    const { status, body } = await json(send(api, alice, "GET", path!));
    assert.equal(status, 422, why);
    assert.deepEqual(body.detail[0], {
      loc: ["query", "before"],
      msg: "not a valid cursor",
      type: "cursor_invalid",
    }, why);
  }
});

Deno.test("a well-signed cursor holding a malformed position is a 422, never a 500", async () => {
  const user = await api.user();
  const session = await createSession(api.db.admin, user.id, "Paged");
  // signed with the app's own secret: only the position is wrong
  const cursors = createCursors(TEST_CURSOR_SECRET);
  const cases: [path: string, scope: string, position: unknown][] = [
    ["/api/sessions", "sessions", ["not a time", session]],
    ["/api/sessions", "sessions", ["2026-02-30T10:00:00+00:00", session]],
    ["/api/sessions", "sessions", ["0000-01-01T00:00:00+00:00", session]],
    ["/api/sessions", "sessions", ["2026-11-25T10:00:00.123456+00:00", "not-a-uuid"]],
    ["/api/sessions", "sessions", ["2026-11-25T10:00:00+00:00"]],
    ["/api/sessions", "sessions", "2026-11-25T10:00:00+00:00"],
    ["/api/sessions?q=paged", "search:paged", -1],
    ["/api/sessions?q=paged", "search:paged", 0.5],
    ["/api/sessions?q=paged", "search:paged", "10"],
    [`/api/sessions/${session}`, `messages:${session}`, 2 ** 64],
    [`/api/sessions/${session}`, `messages:${session}`, "12"],
    [`/api/sessions/${session}`, `messages:${session}`, null],
  ];
  for (const [path, scope, position] of cases) {
    const cursor = await cursors.encode(`${user.id}:${scope}`, position);
    const separator = path.includes("?") ? "&" : "?";
    const why = `${path} ${JSON.stringify(position)}`;
    const { status, body } = await json(
      send(api, user, "GET", `${path}${separator}before=${cursor}`),
    );
    assert.equal(status, 422, why);
    assert.equal(body.detail[0].type, "cursor_invalid", why);
  }
  // the same signing with a good position is accepted: the cases above fail on their position alone
  const good = await cursors.encode(`${user.id}:sessions`, ["2999-01-01T00:00:00+00:00", session]);
  const { status, body } = await json(send(api, user, "GET", `/api/sessions?before=${good}`));
  assert.equal(status, 200);
  assert.deepEqual(body.map((s: { id: string }) => s.id), [session]);
});
