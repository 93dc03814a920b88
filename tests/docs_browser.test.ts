/**
 * The interactive docs in a real browser (Debian's Chromium driven by
 * playwright-core, never a downloaded browser), against the running dev
 * server: set a bearer token, call GET /api/sessions, see the result.
 * The screenshot is kept in test-artifacts/docs.png.
 */
import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import { createTestDatabase } from "./support/database.ts";
import { run, startDev, stateDir } from "./support/dev_server.ts";

Deno.test("the docs page signs in with a token and shows the caller's sessions", async () => {
  const db = await createTestDatabase({ migrate: false });
  const env = { DATABASE_URL: db.url, LOCAL_STATE_DIR: await stateDir() };
  const dev = await startDev(env);
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
    await page.goto(`${dev.api}/docs`);
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
    await Deno.mkdir("test-artifacts", { recursive: true });
    await page.screenshot({ path: "test-artifacts/docs.png", fullPage: true });
  } finally {
    await browser.close();
    await dev.stop();
  }
});
