/**
 * The interactive docs in a real browser (Debian's Chromium driven by
 * playwright-core, never a downloaded browser). The docs page is local
 * tooling (`deno task docs <API URL>`), served from another origin than the
 * API, as it is for a deployed API: it loads the API's openapi.json, and
 * with a bearer token set, "Try it out" calls GET /api/sessions on the API
 * and shows the caller's sessions. The screenshot is kept in
 * test-artifacts/docs.png.
 */
import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import { freePort } from "../../local/database.ts";
import { createTestDatabase } from "../support/database.ts";
import { run, startDev, stateDir } from "../support/dev_server.ts";

const root = new URL("../../", import.meta.url).pathname;

/** `deno task docs <apiUrl>` as a user runs it; resolves once the page answers. */
async function startDocsTask(apiUrl: string) {
  const port = freePort();
  const task = new Deno.Command(Deno.execPath(), {
    args: ["task", "--quiet", "docs", apiUrl],
    env: { DOCS_PORT: String(port) },
    cwd: root,
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const url = `http://127.0.0.1:${port}/`;
  for (let tries = 0;; tries++) {
    const up = await fetch(url).then((r) => r.body?.cancel().then(() => r.ok), () => false);
    if (up) break;
    if (tries > 300) assert.fail("deno task docs did not answer");
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    url,
    async stop() {
      task.kill("SIGTERM");
      await task.status;
      await task.stderr.cancel();
    },
  };
}

Deno.test("the docs page, served apart from the API, signs in with a token and shows the caller's sessions", async () => {
  const db = await createTestDatabase({ migrate: false });
  const env = { DATABASE_URL: db.url, LOCAL_STATE_DIR: await stateDir() };
  const dev = await startDev(env);
  const docs = await startDocsTask(dev.api);
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  try {
    const token = (await run(Deno.execPath(), [
      "run",
      "--allow-all",
      "--quiet",
      "local/token.ts",
      "docs@example.com",
    ], env))
      .stdout.trim();
    const session = crypto.randomUUID();
    const sent = await fetch(`${dev.api}/sessions/${session}`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}` },
      body: JSON.stringify({ messages: [{ role: "user", content: "Seen from the docs" }] }),
    });
    await sent.text();
    await fetch(`${dev.api}/sessions/${session}/title`, {
      method: "PATCH",
      headers: { authorization: `Bearer ${token}` },
      body: JSON.stringify({ title: "Visible in the browser" }),
    }).then((r) => r.text());

    const page = await browser.newPage();
    // nothing may come from anywhere but the docs server and the API
    const origins = new Set<string>();
    page.on("request", (request) => void origins.add(new URL(request.url()).origin));
    await page.goto(docs.url);
    const operation = page.locator("#operations-sessions-listSessions");
    await operation.waitFor({ timeout: 30_000 });
    // the bearer token, set the way the Authorize dialog sets it
    await page.evaluate(
      (t) =>
        (globalThis as unknown as { ui: { preauthorizeApiKey(n: string, v: string): void } }).ui
          .preauthorizeApiKey("bearerAuth", t),
      token,
    );
    await operation.locator(".opblock-summary").first().click();
    await operation.locator(".try-out__btn").click();
    await operation.locator(".execute").click();
    const answer = operation.locator(".live-responses-table .response .response-col_status")
      .first();
    await answer.waitFor({ timeout: 30_000 });
    assert.equal((await answer.textContent())?.trim().slice(0, 3), "200");
    const body = await operation.locator(".live-responses-table .microlight").first().textContent();
    assert.ok(body?.includes("Visible in the browser"), body ?? "");
    // the request went to the API's own URL, not to the docs server
    const requestUrl = await operation.locator(".request-url pre").first().textContent();
    assert.equal(requestUrl?.trim(), `${dev.api}/sessions`);
    assert.deepEqual(
      [...origins].sort(),
      [new URL(docs.url).origin, new URL(dev.api).origin].sort(),
    );
    await Deno.mkdir("test-artifacts", { recursive: true });
    await page.screenshot({ path: "test-artifacts/docs.png", fullPage: true });

    // deno task dev serves the same page for its own API
    const devDocs = await fetch(dev.docs);
    assert.equal(devDocs.status, 200);
    assert.match(await devDocs.text(), new RegExp(`"${dev.api}"`));
  } finally {
    await browser.close();
    await docs.stop();
    await dev.stop();
  }
});
