/**
 * The app factory: every route of the API under /api, built from explicit
 * dependencies so tests can run it against real Postgres and a stand-in model.
 */
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { cors } from "hono/cors";
import { requireUser, type TokenVerifier } from "./auth.ts";
import type { Config } from "./config.ts";
import { createCursors, type Cursors } from "./cursors.ts";
import type { Sql } from "./database.ts";
import { ApiError, toResponse } from "./errors.ts";
import { InFlightReplies } from "./in_flight.ts";
import type { ModelClient } from "./model.ts";
import { docsRoutes } from "./routes/docs.ts";
import { exportRoutes } from "./routes/export.ts";
import { healthRoutes } from "./routes/health.ts";
import { messageRoutes } from "./routes/messages.ts";
import { sessionRoutes } from "./routes/sessions.ts";
import { usageRoutes } from "./routes/usage.ts";

export interface Deps {
  config: Config;
  sql: Sql;
  model: ModelClient;
  verifyToken: TokenVerifier;
  /** keeps work alive after the response (saving a reply whose client left): EdgeRuntime.waitUntil on Supabase */
  waitUntil: (work: Promise<unknown>) => void;
  log: (message: string, error?: unknown) => void;
}

/** What the routes get: the dependencies, and what is built from them once. */
export type RouteDeps = Deps & { cursors: Cursors; replies: InFlightReplies };

/** Methods each path answers; any other method gets 405 with `Allow`. */
const allowed: Record<string, string> = {
  "/health": "GET",
  "/sessions": "GET",
  "/sessions/:session_id": "GET, POST, DELETE",
  "/sessions/:session_id/title": "PATCH",
  "/sessions/:session_id/export": "GET",
  "/empty-sessions": "DELETE",
  "/usage": "GET",
  "/openapi.json": "GET",
};

export function createApp(deps: Deps) {
  const app = new Hono().basePath("/api");

  app.use(
    "*",
    cors({
      origin: deps.config.corsOrigins.includes("*") ? "*" : deps.config.corsOrigins,
      allowHeaders: ["Authorization", "Content-Type", "apikey", "x-client-info"],
      allowMethods: ["GET", "POST", "PATCH", "DELETE", "OPTIONS"],
      exposeHeaders: [
        "x-vercel-ai-data-stream",
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
  };
  app.route("/health", healthRoutes(routeDeps));
  app.route("/", docsRoutes());
  // by path, not "*": the routers are mounted at the root, where "*" would also cover /api/health
  const signedIn = requireUser(deps.verifyToken);
  for (const path of ["/sessions", "/sessions/*", "/empty-sessions", "/usage"]) {
    app.use(path, signedIn);
  }
  app.route("/", sessionRoutes(routeDeps));
  app.route("/", messageRoutes(routeDeps));
  app.route("/", usageRoutes(routeDeps));
  app.route("/", exportRoutes(routeDeps));
  for (const [path, methods] of Object.entries(allowed)) {
    app.all(path, () => {
      throw new ApiError(405, "Method not allowed", { allow: methods });
    });
  }

  app.notFound((c) => c.json({ detail: "Not found" }, 404));
  app.onError((error, c) => toResponse(error, c, deps.log));
  // the replies streaming now: index.ts stops and saves them when the worker is retired
  return Object.assign(app, { replies });
}
