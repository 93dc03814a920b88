/**
 * A reply arriving in a real browser (Debian's Chromium via playwright-core)
 * through today's AI SDK client: tests/support/ai7_page.ts, a page using ai
 * 7's `Chat` and `DefaultChatTransport`, bundled with `deno bundle` and served
 * from another origin than the API, as a web app is. Nothing is loaded from
 * a CDN. The screenshot is kept in test-artifacts/ai7.png.
 */
import assert from "node:assert/strict";
import { startTestApi } from "../support/api.ts";
import { startPageApp } from "../support/browser_page.ts";
import { stored } from "../support/http.ts";

const PAGE = `<!doctype html><meta charset="utf-8"><title>ai 7 chat</title>
<button id="send">Send</button> <span id="status"></span><p id="reply"></p>
<script type="module" src="/app.js"></script>`;

Deno.test("a reply streams onto a page through ai 7's Chat and DefaultChatTransport in Chromium", async () => {
  const api = await startTestApi();
  const words = Array.from({ length: 12 }, (_, i) => `w${i} `);
  api.model.script(() => ({ chunks: words, delayMs: 60 }));
  const apiServer = api.listen();
  const pageApp = await startPageApp("tests/support/ai7_page.ts", PAGE);
  try {
    const user = await api.user();
    const session = crypto.randomUUID();
    const page = await pageApp.browser.newPage();
    const origins = new Set<string>();
    page.on("request", (request) => void origins.add(new URL(request.url()).origin));
    const query = new URLSearchParams({
      api: `${apiServer.url}/api`,
      token: user.token,
      session,
      text: "Count for me",
    });
    await page.goto(`${pageApp.origin}/?${query}`);
    await page.click("#send");
    // part of the reply is on the page while the rest is still streaming
    await page.waitForFunction(
      `document.getElementById("status").textContent === "streaming" &&
       document.getElementById("reply").textContent.includes("w2")`,
      undefined,
      { timeout: 30_000 },
    );
    const partial = await page.textContent("#reply");
    assert.ok(partial!.length < words.join("").length, partial ?? "");
    await page.waitForSelector("body[data-finished]", { timeout: 30_000 });
    assert.equal(await page.getAttribute("body", "data-finished"), "stop");
    assert.equal(await page.getAttribute("body", "data-error"), null);
    assert.equal(await page.textContent("#reply"), words.join(""));
    assert.equal(await page.textContent("#status"), "ready");
    await api.idle();
    const [, reply] = await stored(api, session);
    assert.equal(await page.getAttribute("#reply", "data-id"), reply!.id);
    assert.deepEqual(
      [...origins].sort(),
      [pageApp.origin, apiServer.url].sort(),
    );
    await Deno.mkdir("test-artifacts", { recursive: true });
    await page.screenshot({ path: "test-artifacts/ai7.png" });
  } finally {
    await pageApp.close();
    await apiServer.close();
    await api.idle();
    await api.model.close();
  }
});
