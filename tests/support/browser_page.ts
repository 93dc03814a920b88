/**
 * A web app's page for browser tests: a script of the app's (a module under
 * tests/support/) bundled for the browser with `deno bundle`, served with its
 * HTML from an origin of its own (as a web app is served apart from the API),
 * and Debian's Chromium driven by playwright-core. Nothing is loaded from a CDN.
 */
import assert from "node:assert/strict";
import { type Browser, chromium } from "playwright-core";

export interface PageApp {
  /** the page's origin, e.g. http://127.0.0.1:40123 */
  origin: string;
  browser: Browser;
  close(): Promise<void>;
}

/** Serves `html` at every path but `/app.js`, the bundled `entry`; launches Chromium. */
export async function startPageApp(entry: string, html: string): Promise<PageApp> {
  const script = await bundle(entry);
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    (request) =>
      new URL(request.url).pathname === "/app.js"
        ? new Response(script, { headers: { "content-type": "text/javascript" } })
        : new Response(html, { headers: { "content-type": "text/html" } }),
  );
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"],
  });
  return {
    origin: `http://127.0.0.1:${server.addr.port}`,
    browser,
    async close() {
      await browser.close();
      await server.shutdown();
    },
  };
}

async function bundle(entry: string): Promise<string> {
  const dir = await Deno.makeTempDir();
  const out = `${dir}/app.js`;
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["bundle", "--quiet", "--platform", "browser", "-o", out, entry],
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.equal(code, 0, new TextDecoder().decode(stderr));
  const script = await Deno.readTextFile(out);
  await Deno.remove(dir, { recursive: true });
  return script;
}
