/**
 * The app factory: every route of the API under /api, built from explicit
 * dependencies so tests can run it against real Postgres and a stand-in model.
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import { bodyLimit } from "hono/body-limit";
import { requireUser } from "./auth.ts";
import { cors } from "./cors.ts";
import { createCursors } from "./cursors.ts";
import type { Deps, RouteDeps, SignedIn } from "./deps.ts";
import { ApiError, toResponse } from "./errors.ts";
import { InFlightReplies } from "./reply/in_flight.ts";
import { SharedPolls, UserSeats } from "./reply/shared_polls.ts";
import { openApiDocument } from "./openapi.ts";
import { branchRoutes } from "./routes/branches.ts";
import { docsRoutes } from "./routes/docs.ts";
import { exportRoutes } from "./routes/export.ts";
import { healthRoutes } from "./routes/health.ts";
import { importRoutes } from "./routes/imports.ts";
import { messageRoutes } from "./routes/messages.ts";
import { resumeRoutes } from "./routes/resume.ts";
import { sessionRoutes } from "./routes/sessions.ts";
import { usageRoutes } from "./routes/usage.ts";

export type { Deps, RouteDeps } from "./deps.ts";

const methodOrder = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/**
 * Every request header supabase-js sends to a function, so a browser's preflight lets its calls
 * through whatever options the app turns on: always authorization, apikey, x-client-info and
 * content-type; `invoke(..., { region })` adds x-region; `tracePropagation` adds traceparent,
 * tracestate and baggage; postgrest-js's retries add x-retry-count. Written out rather than
 * imported from `@supabase/supabase-js/cors` (which lacks x-region): importing it would pack the
 * whole package into the bundle. A test compares this list with that module's.
 */
export const SUPABASE_JS_HEADERS = [
  "authorization",
  "apikey",
  "x-client-info",
  "content-type",
  "x-region",
  "traceparent",
  "tracestate",
  "baggage",
  "x-retry-count",
];

/** Methods each path answers, from the routes' declarations; any other method gets 405 with `Allow`. */
function allowedMethods(app: OpenAPIHono<SignedIn>): Map<string, string[]> {
  const allowed = new Map<string, string[]>([["/openapi.json", ["GET"]]]);
  for (const definition of app.openAPIRegistry.definitions) {
    if (definition.type !== "route") continue;
    const path = definition.route.path.replaceAll(/\{(.+?)\}/g, ":$1");
    allowed.set(path, [...allowed.get(path) ?? [], definition.route.method.toUpperCase()]);
  }
  for (const methods of allowed.values()) {
    methods.sort((a, b) => methodOrder.indexOf(a) - methodOrder.indexOf(b));
  }
  return allowed;
}

export function createApp(deps: Deps) {
  const app = new OpenAPIHono<SignedIn>().basePath("/api");

  app.use(
    "*",
    cors({
      origin: deps.config.corsOrigins.includes("*") ? "*" : deps.config.corsOrigins,
      allowHeaders: SUPABASE_JS_HEADERS,
      allowMethods: ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
      exposeHeaders: [
        "x-vercel-ai-data-stream",
        "x-vercel-ai-ui-message-stream",
        "x-chat-session-id",
        "x-user-message-id",
        "x-assistant-message-id",
        "x-model",
        "retry-after",
        "server-timing",
        "link",
        "x-next-cursor",
      ],
      maxAge: 86400,
    }),
  );
  app.use(
    "*",
    bodyLimit({
      maxSize: deps.config.maxBodyBytes,
      onError: () => {
        throw new ApiError(413, `Request body is larger than ${deps.config.maxBodyBytes} bytes`);
      },
    }),
  );

  const replies = new InFlightReplies();
  const routeDeps: RouteDeps = {
    ...deps,
    cursors: createCursors(deps.config.cursorSecret),
    replies,
    readers: {
      polls: new SharedPolls({
        sql: deps.sql,
        everyMs: deps.config.model.replyPersistMs,
        log: deps.log,
      }),
      reattaching: new UserSeats(deps.config.quotas.reattachPerUser),
      stopping: new UserSeats(deps.config.quotas.stopWaitsPerUser),
    },
    // attached by each route that is not public (`contract.ts`): every request passes it once
    signedIn: requireUser(deps.verifyToken),
  };
  for (
    const routes of [
      healthRoutes,
      sessionRoutes,
      branchRoutes,
      messageRoutes,
      resumeRoutes,
      usageRoutes,
      exportRoutes,
      importRoutes,
    ]
  ) {
    app.route("/", routes(routeDeps));
  }
  app.route("/", docsRoutes(() => openApiDocument(app)));
  for (const [path, methods] of allowedMethods(app)) {
    app.all(path, () => {
      throw new ApiError(405, "Method not allowed", { allow: methods.join(", ") });
    });
  }

  app.notFound((c) => c.json({ detail: "Not found" }, 404));
  app.onError((error, c) => toResponse(error, c, deps.log));
  // the replies streaming now: index.ts stops and saves them when the worker is retired; the
  // readers of replies (their shared polls: tests look at them)
  return Object.assign(app, { replies, readers: routeDeps.readers });
}
