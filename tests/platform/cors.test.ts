/**
 * The function's own CORS middleware (`cors.ts`, cheaper on every request) answers exactly as
 * `hono/cors` with the same options: every header of every kind of answer, compared.
 */
import assert from "node:assert/strict";
import { Hono } from "hono";
import { cors as honoCors } from "hono/cors";
import { SUPABASE_JS_HEADERS } from "../../supabase/functions/api/app.ts";
import { cors, type CorsOptions } from "../../supabase/functions/api/cors.ts";

function appWith(middleware: ReturnType<typeof cors>) {
  const app = new Hono();
  app.use("*", middleware);
  app.get("/json", (c) => c.json({ ok: true }, 200, { "x-next-cursor": "abc", vary: "Accept" }));
  app.get(
    "/stream",
    (c) =>
      c.body(new ReadableStream({ start: (s) => s.close() }), 200, {
        "content-type": "text/plain",
      }),
  );
  app.get("/fetched", async () => {
    // a Response as fetch returns it: its headers are immutable
    const response = await fetch("data:text/plain,hello");
    return response;
  });
  app.get("/fails", () => {
    throw new Error("no");
  });
  app.notFound((c) => c.json({ detail: "Not found" }, 404));
  app.onError((_, c) => c.json({ detail: "failed" }, 500, { "retry-after": "1" }));
  return app;
}

const base = {
  allowHeaders: SUPABASE_JS_HEADERS,
  allowMethods: ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
  exposeHeaders: ["x-next-cursor", "server-timing", "link"],
  maxAge: 86400,
};

const requests: [string, RequestInit][] = [];
for (const path of ["/json", "/stream", "/fetched", "/fails", "/nowhere"]) {
  for (const origin of [undefined, "https://app.example.com", "https://evil.example.com"]) {
    const headers: Record<string, string> = origin ? { origin } : {};
    requests.push([path, { headers }]);
    requests.push([path, {
      method: "OPTIONS",
      headers: {
        ...headers,
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type",
      },
    }]);
  }
}

for (
  const origin of [
    "*",
    ["https://app.example.com"],
    ["https://app.example.com", "https://other.example.com"],
  ] satisfies CorsOptions["origin"][]
) {
  Deno.test(`CORS answers as hono/cors does, origin ${JSON.stringify(origin)}`, async () => {
    const ours = appWith(cors({ ...base, origin }));
    const theirs = appWith(honoCors({ ...base, origin }));
    for (const [path, init] of requests) {
      const [mine, expected] = await Promise.all(
        [ours, theirs].map((app) => app.request(path, init)),
      );
      const what = `${init.method ?? "GET"} ${path} ${JSON.stringify(init.headers)}`;
      assert.equal(mine!.status, expected!.status, what);
      assert.deepEqual([...mine!.headers], [...expected!.headers], what);
      assert.equal(await mine!.text(), await expected!.text(), what);
    }
  });
}
