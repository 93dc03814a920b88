/**
 * POST /api/sessions/:id, and POST /api/chat (the session id in the body, for
 * AI SDK 5+ clients): a turn of the conversation (`turn/turn.ts`), its reply
 * streamed in the protocol the client chose.
 */
import type { Context } from "hono";
import { Router } from "../contract.ts";
import type { RouteDeps, SignedIn } from "../deps.ts";
import type { Protocol } from "../reply/protocols.ts";
import type { OnDisconnect } from "../reply/relay.ts";
import { chooseOnDisconnect, chooseProtocol } from "../reply/response.ts";
import { takeTurn, type TurnRequest } from "../turn/turn.ts";
import { chatRoute, sendMessageRoute } from "./messages_contract.ts";

export function messageRoutes(deps: RouteDeps) {
  const app = new Router(deps.signedIn);

  const send = async (
    c: Context<SignedIn>,
    body: Pick<TurnRequest, "message" | "model" | "regenerate" | "messageId"> & {
      uiMessages: boolean;
    },
    sessionId: string,
    asked: { protocol?: Protocol | undefined; on_disconnect?: OnDisconnect | undefined },
    viaChatRoute = false,
  ) => {
    const protocol = chooseProtocol({
      query: asked.protocol,
      // a body of UI messages comes from an AI SDK 5+ client, which reads only the UI message
      // stream, as does what is sent to its route, /chat
      uiOnly: body.uiMessages || viaChatRoute,
      accept: c.req.header("accept"),
      stored: null,
    }, deps.config.streamProtocol);
    const reply = await takeTurn(deps, c.var.claims, {
      sessionId,
      message: body.message,
      model: body.model,
      regenerate: body.regenerate,
      messageId: body.messageId,
      protocol,
      onDisconnect: chooseOnDisconnect(asked.on_disconnect, protocol),
    });
    return c.body(reply.body, 200, reply.headers);
  };

  app.add(sendMessageRoute, async (c) => {
    const body = c.req.valid("json");
    return await send(c, body, c.req.valid("param").session_id, c.req.valid("query"));
  });
  app.add(chatRoute, async (c) => {
    const body = c.req.valid("json");
    return await send(c, body, body.sessionId, c.req.valid("query"), true);
  });

  return app.app;
}
