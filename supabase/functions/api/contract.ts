/**
 * How a route declares its contract, once: method, path, parameters, request
 * and response schemas (zod) and error statuses, with `@hono/zod-openapi`'s
 * `createRoute`. From that one declaration come the validation (every failure
 * a FastAPI-style 422, from one hook), the handler's types, the sign-in check
 * and the OpenAPI 3.1 document.
 */
import { OpenAPIHono, type RouteConfig, type RouteHandler, z } from "@hono/zod-openapi";
import type { Context, MiddlewareHandler, Next } from "hono";
import type { SignedIn } from "./deps.ts";
import { invalid, type Location, parseOr422 } from "./errors.ts";
import { readJson } from "./request_body.ts";

export { createRoute, z } from "@hono/zod-openapi";

export const ErrorBody = z.object({ detail: z.string() }).openapi("Error");

export const ValidationErrorBody = z.object({
  detail: z.array(z.object({
    loc: z.array(z.union([z.string(), z.number().int()])),
    msg: z.string(),
    type: z.string(),
  })),
}).openapi("ValidationError");

const errorDescriptions = {
  401: "No valid bearer token (`WWW-Authenticate: Bearer`)",
  404: "No such session of yours, or no such message in it",
  409:
    "The message id is taken by another message; a reply to this message is already being written (`Retry-After`); or later messages followed it",
  413: "Body or message too large",
  422: "Invalid input",
  429: "A quota is reached (`Retry-After`)",
  502: "The model could not be reached",
  503: "The database, or the project's Auth, is unavailable (`Retry-After`)",
  504: "The model did not answer in time",
} as const;
type ErrorStatus = keyof typeof errorDescriptions;

/** A JSON response of `schema`. */
export const json = <S extends z.ZodType>(description: string, schema: S) => ({
  description,
  content: { "application/json": { schema } },
});

/** The error responses a route may give, each `{"detail": ...}` (a list of `{loc, msg, type}` for 422). */
export function errors<C extends ErrorStatus>(...codes: C[]) {
  return Object.fromEntries(
    codes.map((code) => [
      code,
      json(errorDescriptions[code], code === 422 ? ValidationErrorBody : ErrorBody),
    ]),
  ) as Record<C, ReturnType<typeof json<typeof ErrorBody | typeof ValidationErrorBody>>>;
}

/** Where zod-openapi's validation targets are, as FastAPI names them in `loc`. */
const locations: Record<string, Location> = {
  json: "body",
  query: "query",
  param: "path",
  header: "header",
};

/** The one validation hook: every route's invalid input answers the same FastAPI-style 422. */
function failValidation(
  result: { success: boolean; target: string; error?: { issues: z.core.$ZodIssue[] } },
  _c: Context,
) {
  if (!result.success) throw invalid(locations[result.target] ?? "body", result.error!.issues);
}

/**
 * A router whose routes come from their declarations. A route is signed in
 * unless it declares `security: []`: the sign-in check is attached to the
 * route itself, so each request passes it once, whatever paths overlap.
 */
export class Router {
  readonly app = new OpenAPIHono<SignedIn>({ defaultHook: failValidation as never });
  constructor(private readonly signedIn: MiddlewareHandler<SignedIn>) {}

  /**
   * Adds `handler` for `route`. Its context is typed from the declaration (`c.req.valid(...)`);
   * its response is any Response, since streamed bodies have no JSON type: the test suite checks
   * every response it produces against the document instead (`tests/support/responses.ts`).
   */
  add<R extends RouteConfig>(
    route: R,
    handler: (c: Parameters<RouteHandler<R, SignedIn>>[0], next: Next) => Promise<Response>,
  ): this {
    const isPublic = Array.isArray(route.security) && route.security.length === 0;
    const middleware = isPublic ? [] : [this.signedIn];
    const body = (route.request?.body?.content?.["application/json"] as { schema?: unknown })
      ?.schema;
    if (!(body instanceof z.ZodType)) {
      this.app.openapi({ ...route, middleware }, handler as never);
      return this;
    }
    // The body is documented as declared, but read by `readJson`: JSON whatever the Content-Type
    // says and strictly UTF-8 (zod-openapi's own reader answers 415 without a JSON Content-Type and
    // 400 for bad JSON, where this API, like the original, answers 422), then validated with the
    // declared schema, after the path and query, as the validators run.
    this.app.openAPIRegistry.registerPath(route);
    const { body: _, ...request } = route.request!;
    this.app.openapi(
      { ...route, request, middleware, hide: true },
      (async (c: Context<SignedIn>, next: () => Promise<void>) => {
        c.req.addValidatedData("json", parseOr422(body, await readJson(c), "body") as object);
        return await (handler as (c: Context<SignedIn>, next: () => Promise<void>) => unknown)(
          c,
          next,
        );
      }) as never,
    );
    return this;
  }
}
