/**
 * Every failure becomes JSON `{"detail": ...}`, the shape the original
 * clients read. Client input never causes a 500: anything unexpected is
 * logged and answered without internals.
 */
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { z } from "zod";
import { errorCode, isDatabaseUnavailable } from "./database_errors.ts";
import { ModelError } from "./model.ts";

/** An error the API answers with as it is. */
export class ApiError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly detail: unknown,
    readonly headers: Record<string, string> = {},
  ) {
    super(typeof detail === "string" ? detail : "request failed");
  }
}

export type Location = "body" | "path" | "query" | "header";

/** FastAPI-style 422: `detail` lists `{loc, msg, type}`. */
export function invalid(location: Location, issues: z.core.$ZodIssue[]): ApiError {
  return new ApiError(
    422,
    issues.map((issue) => ({
      loc: [location, ...issue.path.map((p) => typeof p === "symbol" ? String(p) : p)],
      msg: issue.message,
      type: issue.code === "invalid_type" && issue.input === undefined ? "missing" : issue.code,
    })),
  );
}

export function parseOr422<S extends z.ZodType>(
  schema: S,
  value: unknown,
  location: Location,
): z.output<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw invalid(location, result.error.issues);
  return result.data;
}

export const sessionNotFound = () => new ApiError(404, "Chat session not found");

/** The project's Auth server or JWKS endpoint cannot be reached: the token is not at fault. */
export const authUnavailable = (retryAfterSeconds: number) =>
  new ApiError(503, "Authentication is unavailable, try again shortly", {
    "retry-after": String(retryAfterSeconds),
  });

export function toResponse(error: unknown, c: Context, log: (m: string, e: unknown) => void) {
  if (error instanceof ApiError) {
    return c.json({ detail: error.detail }, error.status, error.headers);
  }
  if (error instanceof HTTPException) {
    return c.json({ detail: error.message || "Request failed" }, error.status);
  }
  if (error instanceof ModelError) return c.json({ detail: error.message }, error.status);
  if (isDatabaseUnavailable(error)) {
    log("database unavailable", error);
    return c.json({ detail: "The database is unavailable, try again shortly" }, 503, {
      "retry-after": "5",
    });
  }
  const code = errorCode(error);
  if (
    code === "23503" &&
    (error as { constraint_name?: string }).constraint_name === "chat_sessions_user_id_fkey"
  ) {
    // a valid token whose user has since been deleted
    return c.json({ detail: "Not authenticated: the user no longer exists" }, 401, {
      "www-authenticate": 'Bearer error="invalid_token"',
    });
  }
  if (code === "22021" || code === "22P05") {
    return c.json({ detail: "Text must not contain NUL bytes or invalid characters" }, 422);
  }
  log("unexpected error", error);
  return c.json({ detail: "Internal server error" }, 500);
}
