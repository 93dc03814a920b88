/**
 * A reply arriving in a real browser (Debian's Chromium via playwright-core)
 * through today's AI SDK client: tests/support/ai7_page.ts, a page using ai
 * 7's `Chat` and `DefaultChatTransport`, bundled with `deno bundle` and served
 * from another origin than the API, as a web app is. Nothing is loaded from
 * a CDN. The screenshot is kept in test-artifacts/ai7.png.
 */
import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import { startTestApi } from "../support/api.ts";
import { stored } from "../support/http.ts";

const PAGE = `<!doctype html><meta charset="utf-8"><title>ai 7 chat</title>
<button id="send">Send</button> <span id="status"></span><p id="reply"></p>
<script type="module" src="/chat.js"></script>`;

async function bundlePage(): Promise<string> {
  const dir = await Deno.makeTempDir();
  const out = `${dir}/chat.js`;
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["bundle", "--quiet", "--platform", "browser", "-o", out, "tests/support/ai7_page.ts"],
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.equal(code, 0, new TextDecoder().decode(stderr));
  const script = await Deno.readTextFile(out);
  await Deno.remove(dir, { recursive: true });
  return script;
}

Deno.test("a reply streams onto a page through ai 7's Chat and DefaultChatTransport in Chromium", async () => {
  const api = await startTestApi();
  const words = Array.from({ length: 12 }, (_, i) => `w${i} `);
  api.model.script(() => ({ chunks: words, delayMs: 60 }));
  const apiServer = api.listen();
  const script = await bundlePage();
  const pageServer = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    (request) =>
      new URL(request.url).pathname === "/chat.js"
        ? new Response(script, { headers: { "content-type": "text/javascript" } })
        : new Response(PAGE, { headers: { "content-type": "text/html" } }),
  );
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"],
  });
  try {
    const user = await api.user();
    const session = crypto.randomUUID();
    const page = await browser.newPage();
    const origins = new Set<string>();
    page.on("request", (request) => void origins.add(new URL(request.url()).origin));
    const query = new URLSearchParams({
      api: `${apiServer.url}/api`,
      token: user.token,
      session,
      text: "Count for me",
    });
    await page.goto(`http://127.0.0.1:${pageServer.addr.port}/?${query}`);
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
      [`http://127.0.0.1:${pageServer.addr.port}`, apiServer.url].sort(),
    );
    await Deno.mkdir("test-artifacts", { recursive: true });
    await page.screenshot({ path: "test-artifacts/ai7.png" });
  } finally {
    await browser.close();
    await pageServer.shutdown();
    await apiServer.close();
    await api.idle();
    await api.model.close();
  }
});
