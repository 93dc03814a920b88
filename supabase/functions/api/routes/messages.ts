/**
 * POST /api/sessions/:id: a turn of the conversation (`turn/turn.ts`), its
 * reply streamed in the protocol the client chose.
 */
import { Router } from "../contract.ts";
import type { RouteDeps } from "../deps.ts";
import { type Protocol, protocolForAccept } from "../stream_protocols.ts";
import { takeTurn } from "../turn/turn.ts";
import { sendMessageRoute } from "./messages_contract.ts";

export function messageRoutes(deps: RouteDeps) {
  const app = new Router(deps.signedIn);

  app.add(sendMessageRoute, async (c) => {
    const { message, model } = c.req.valid("json");
    const protocol = chooseProtocol(
      c.req.valid("query").protocol,
      c.req.header("accept"),
      deps.config.streamProtocol,
    );
    const reply = await takeTurn(deps, c.var.claims, {
      sessionId: c.req.valid("param").session_id,
      message,
      model,
      protocol,
    });
    return c.body(reply.body, 200, reply.headers);
  });

  return app.app;
}

function chooseProtocol(
  asked: Protocol | undefined,
  accept: string | undefined,
  fallback: Protocol,
): Protocol {
  if (asked) return asked;
  return protocolForAccept(accept) ?? fallback;
}
