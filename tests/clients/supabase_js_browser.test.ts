/**
 * A Supabase app's browser page calling the function with the real
 * `@supabase/supabase-js` (`functions.invoke`) from another origin, through a
 * stand-in of the project's functions gateway (`/functions/v1/api/*` → the
 * function's `/api/*`, preflights included, as hosted Supabase forwards them):
 * with `region` and `tracePropagation` on, every call is preflighted with
 * x-region, traceparent, tracestate and baggage, which the function must allow.
 */
import assert from "node:assert/strict";
import { corsHeaders } from "@supabase/supabase-js/cors";
import { SUPABASE_JS_HEADERS } from "../../supabase/functions/api/app.ts";
import { startTestApi } from "../support/api.ts";
import { startPageApp } from "../support/browser_page.ts";

const PAGE = `<!doctype html><meta charset="utf-8"><title>supabase-js</title>
<button id="run">Run</button><script type="module" src="/app.js"></script>`;

/** The gateway in front of functions: the project URL's /functions/v1/<name>/* reaches the function. */
function functionsGateway(apiUrl: string) {
  const seen: { method: string; headers: string[] }[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (request) => {
    const url = new URL(request.url);
    const rest = url.pathname.match(/^\/functions\/v1(\/api(\/.*)?)$/)?.[1];
    if (!rest) return new Response("not found", { status: 404 });
    seen.push({ method: request.method, headers: [...request.headers.keys()] });
    return fetch(`${apiUrl}${rest}${url.search}`, {
      method: request.method,
      headers: request.headers,
      body: request.body,
      redirect: "manual",
    });
  });
  return { url: `http://127.0.0.1:${server.addr.port}`, seen, close: () => server.shutdown() };
}

Deno.test("supabase-js functions.invoke from another origin, with region and trace propagation, passes the preflight on every route it calls", async () => {
  const api = await startTestApi();
  api.model.script(() => ({ chunks: ["Hello ", "from ", "the model"] }));
  const apiServer = api.listen();
  const gateway = functionsGateway(apiServer.url);
  const pageApp = await startPageApp("tests/support/supabase_js_page.ts", PAGE);
  try {
    const user = await api.user();
    const session = crypto.randomUUID();
    const page = await pageApp.browser.newPage();
    const query = new URLSearchParams({
      project: gateway.url,
      token: user.token,
      session,
      text: "Hi",
    });
    await page.goto(`${pageApp.origin}/?${query}`);
    await page.click("#run");
    await page.waitForSelector("body[data-done]", { timeout: 30_000 });
    assert.equal(await page.getAttribute("body", "data-error"), null);
    assert.deepEqual(JSON.parse((await page.getAttribute("body", "data-listed"))!), []);
    const events = (await page.getAttribute("body", "data-events"))!;
    assert.match(events, /^event: start\n/);
    assert.match(events, /event: done\n/);
    assert.equal(
      [...events.matchAll(/event: delta\ndata: (.*)\n/g)].map((m) => JSON.parse(m[1]!).content)
        .join(""),
      "Hello from the model",
    );
    assert.deepEqual(JSON.parse((await page.getAttribute("body", "data-refused"))!), {
      detail: "Chat session not found",
    });
    // the browser really asked: each call was preflighted with supabase-js's optional headers
    const preflights = gateway.seen.filter((r) => r.method === "OPTIONS");
    assert.ok(preflights.length >= 2, JSON.stringify(gateway.seen));
    const sent = new Set(
      gateway.seen.filter((r) => r.method !== "OPTIONS").flatMap((r) => r.headers),
    );
    for (
      const header of [
        "x-region",
        "traceparent",
        "tracestate",
        "baggage",
        "x-client-info",
        "apikey",
      ]
    ) {
      assert.ok(sent.has(header), `supabase-js sent no ${header}: ${[...sent]}`);
    }
  } finally {
    await pageApp.close();
    await gateway.close();
    await apiServer.close();
    await api.idle();
    await api.model.close();
  }
});

Deno.test("the preflight allows every header supabase-js's own CORS list names, and x-region", () => {
  const theirs = corsHeaders["Access-Control-Allow-Headers"]!.split(",").map((h) => h.trim());
  for (const header of [...theirs, "x-region"]) {
    assert.ok(SUPABASE_JS_HEADERS.includes(header.toLowerCase()), `${header} is not allowed`);
  }
});
