/**
 * A reply in progress, from any connection: re-attach to it (GET) or stop it
 * (DELETE), under /sessions/{id}/stream and under /chat/{id}/stream, where AI
 * SDK 5+ clients reconnect. The reply module does both (reply/follow.ts,
 * reply/stop.ts); this maps them to responses.
 */
import type { Context } from "hono";
import { Router } from "../contract.ts";
import type { RouteDeps, SignedIn } from "../deps.ts";
import { reattach } from "../reply/follow.ts";
import type { Protocol } from "../reply/protocols.ts";
import { stopReply } from "../reply/stop.ts";
import { resumeRoute, stopRoute } from "./resume_contract.ts";

export function resumeRoutes(deps: RouteDeps) {
  const app = new Router(deps.signedIn);

  const resume = async (
    c: Context<SignedIn>,
    sessionId: string,
    query: Protocol | undefined,
    uiOnly: boolean,
  ) => {
    const reply = await reattach(deps, c.var.claims, sessionId, {
      query,
      uiOnly,
      accept: c.req.header("accept"),
    });
    return reply ? c.body(reply.body, 200, reply.headers) : c.body(null, 204);
  };

  const stop = async (c: Context<SignedIn>, sessionId: string) => {
    const stopped = await stopReply(deps, c.var.claims, sessionId);
    if (!stopped) return c.body(null, 204);
    return c.json(stopped.reply, stopped.ended ? 200 : 202);
  };

  app.add(
    resumeRoute("sessions"),
    (c) => resume(c, c.req.valid("param").session_id, c.req.valid("query").protocol, false),
  );
  // /chat is called only by AI SDK 5+ clients, which read only the UI message stream
  app.add(
    resumeRoute("chat"),
    (c) => resume(c, c.req.valid("param").session_id, c.req.valid("query").protocol, true),
  );
  app.add(stopRoute("sessions"), (c) => stop(c, c.req.valid("param").session_id));
  app.add(stopRoute("chat"), (c) => stop(c, c.req.valid("param").session_id));
  return app.app;
}
