/**
 * What the app is built from, in a module of its own so that routes and the
 * app factory never import each other.
 */
import type { MiddlewareHandler } from "hono";
import type { TokenVerifier, UserClaims } from "./auth.ts";
import type { Config } from "./config.ts";
import type { Cursors } from "./cursors.ts";
import type { Sql } from "./database.ts";
import type { InFlightReplies } from "./reply/in_flight.ts";
import type { ReplyReaders } from "./reply/shared_polls.ts";
import type { ModelClient } from "./model.ts";

export interface Deps {
  config: Config;
  sql: Sql;
  model: ModelClient;
  verifyToken: TokenVerifier;
  /** keeps work alive after the response (saving a reply whose client left): EdgeRuntime.waitUntil on Supabase */
  waitUntil: (work: Promise<unknown>) => void;
  log: (message: string, error?: unknown) => void;
}

/** The context of a signed-in request: the caller's verified claims. */
export type SignedIn = { Variables: { claims: UserClaims } };

/** What the routes get: the dependencies, and what is built from them once. */
export type RouteDeps = Deps & {
  cursors: Cursors;
  replies: InFlightReplies;
  /** re-attached streams and waiting stops: one shared poll per reply, bounded per user */
  readers: ReplyReaders;
  /** the sign-in check, which `Router` attaches to each route that is not public */
  signedIn: MiddlewareHandler<SignedIn>;
};
