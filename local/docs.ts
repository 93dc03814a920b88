/**
 * `deno task docs [API_URL]`: interactive docs (Swagger UI) for any running
 * API, local or deployed, served from this machine. The function serves only
 * its OpenAPI document (`/api/openapi.json`): hosted Supabase rewrites
 * `text/html` to `text/plain` without a custom domain, so a docs page served
 * by the function shows as raw HTML there, and Swagger UI's 2.5 MB would
 * count against the function's bundle and start-up.
 *
 * The page loads `<API_URL>/openapi.json` in the browser and sends "Try it
 * out" requests to the same API, so that API must allow this page's origin
 * (CORS_ORIGINS; the default `*` does). `?api=<url>` on the page points it
 * at another API. Swagger UI's files come from the swagger-ui-dist package:
 * nothing is loaded from the internet. Local tooling only.
 */
import { getAbsoluteFSPath } from "swagger-ui-dist";
import { readRunning } from "./dev_state.ts";

const assets: Record<string, string> = {
  "/swagger-ui.css": "text/css; charset=utf-8",
  "/swagger-ui-bundle.js": "text/javascript; charset=utf-8",
};

/**
 * The page. The OpenAPI document names its paths from the function's root
 * (`/api/...`), so requests go to the API URL without its final `/api`: on
 * Supabase that is `https://<ref>.supabase.co/functions/v1`.
 */
function page(apiUrl: string): string {
  // JSON is valid JavaScript; "<" escaped so no value can close the script element
  const api = JSON.stringify(apiUrl).replaceAll("<", "\\u003c");
  return `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Chat sessions API</title>
  <link rel="stylesheet" href="swagger-ui.css">
</head>
<body>
  <div id="docs"></div>
  <script src="swagger-ui-bundle.js"></script>
  <script>
    const api = (new URLSearchParams(location.search).get("api") || ${api}).replace(/\\/+$/, "");
    fetch(api + "/openapi.json")
      .then((response) => {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then((spec) => {
        spec.servers = [{ url: api.replace(/\\/api$/, "") }];
        window.ui = SwaggerUIBundle({ spec, dom_id: "#docs", persistAuthorization: true });
      })
      .catch((error) => {
        document.getElementById("docs").textContent =
          "Could not load " + api + "/openapi.json (" + error.message + "): is the API running, " +
          "and does its CORS_ORIGINS allow " + location.origin + "?";
      });
  </script>
</body>
</html>
`;
}

export interface DocsServer {
  /** the docs page */
  url: string;
  close(): Promise<void>;
}

/** Where `deno task docs` and `deno task dev` serve the page unless DOCS_PORT says otherwise. */
export const DEFAULT_DOCS_PORT = 8001;

/**
 * Serves the docs page for `apiUrl` (ending in `/api`) on `port` (0: any free port). With
 * `nextFree`, a port in use is no error: the page goes on the next free port above it (up to 100
 * further), never on one in `avoid` (a port about to be taken, such as dev's API). Rejects (never
 * throws) when it cannot listen.
 */
export async function startDocsServer(
  opts: {
    apiUrl: string;
    port?: number;
    hostname?: string;
    nextFree?: boolean;
    avoid?: number[];
  },
): Promise<DocsServer> {
  const first = opts.port ?? 0;
  const candidates = opts.nextFree && first !== 0
    ? Array.from({ length: 101 }, (_, i) => first + i).filter((p) =>
      p <= 65535 && !opts.avoid?.includes(p)
    )
    : [first];
  for (const [i, port] of candidates.entries()) {
    try {
      return await serveDocs(opts.apiUrl, port, opts.hostname ?? "127.0.0.1");
    } catch (error) {
      // Deno.serve throws AddrInUse synchronously; it arrives here as a rejection either way
      if (!(error instanceof Deno.errors.AddrInUse) || i === candidates.length - 1) throw error;
    }
  }
  throw new Error("no port to serve the docs page on");
}

async function serveDocs(apiUrl: string, port: number, hostname: string): Promise<DocsServer> {
  const html = page(apiUrl);
  const cache = new Map<string, Uint8Array<ArrayBuffer>>();
  const ready = Promise.withResolvers<Deno.NetAddr>();
  const server = Deno.serve({
    hostname,
    port,
    onListen: (addr) => ready.resolve(addr as Deno.NetAddr),
  }, async (request) => {
    const path = new URL(request.url).pathname;
    if (request.method !== "GET") return new Response("Method not allowed", { status: 405 });
    if (path === "/") {
      return new Response(html, { headers: { "content-type": "text/html; charset=utf-8" } });
    }
    const type = assets[path];
    if (!type) return new Response("Not found", { status: 404 });
    let bytes = cache.get(path);
    if (!bytes) {
      bytes = await Deno.readFile(`${getAbsoluteFSPath()}${path}`);
      cache.set(path, bytes);
    }
    return new Response(bytes, {
      headers: { "content-type": type, "cache-control": "public, max-age=86400" },
    });
  });
  const addr = await ready.promise;
  return {
    url: `http://${addr.hostname}:${addr.port}/`,
    close: () => server.shutdown(),
  };
}

if (import.meta.main) {
  const given = Deno.args[0] ?? (await readRunning())?.apiUrl ?? "http://127.0.0.1:8000/api";
  let apiUrl: string;
  try {
    apiUrl = new URL(given).href.replace(/\/+$/, "");
  } catch {
    console.error(`usage: deno task docs [API_URL]  (not a URL: ${given})`);
    Deno.exit(2);
  }
  // DOCS_PORT is taken as asked, or not at all; the default moves to the next free port
  const asked = Deno.env.get("DOCS_PORT");
  const docs = await startDocsServer({
    apiUrl,
    port: asked ? Number(asked) : DEFAULT_DOCS_PORT,
    nextFree: !asked,
  }).catch((error) => {
    console.error(`[docs] cannot serve the docs page: ${error.message}`);
    Deno.exit(1);
  });
  console.error(`[docs] ${docs.url}  (Swagger UI for ${apiUrl})`);
}
