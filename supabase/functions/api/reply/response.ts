/**
 * A reply's answer over HTTP, decided in one place for the send (turn/turn.ts)
 * and the re-attach (follow.ts), so that the two cannot drift: which protocol
 * the reply speaks, what its client leaving does to it, and the response that
 * carries it, with the same headers.
 */
import { parseAccept } from "hono/utils/accept";
import { encoders, type Protocol } from "./protocols.ts";
import { type OnDisconnect, type Relay, relayReply } from "./relay.ts";

/** What a request says about the stream it reads, and what is known of the reply. */
export interface ProtocolAsk {
  /** `?protocol=` */
  query: Protocol | undefined;
  /**
   * The client reads nothing but the UI message stream: its body is AI SDK 5+
   * UI messages, or it called a route only AI SDK 5+ clients call (/chat).
   */
  uiOnly: boolean;
  /** the request's Accept header */
  accept: string | undefined;
  /** a re-attach: the protocol the reply was started in (null: not known) */
  stored: Protocol | null;
}

/**
 * The protocol a reply is answered in: the one the request names (`?protocol=`,
 * the UI message stream for an AI SDK 5+ client, or an explicit Accept), else,
 * re-attaching, the one the reply was started in, else the configured default.
 */
export function chooseProtocol(ask: ProtocolAsk, fallback: Protocol): Protocol {
  return ask.query ?? (ask.uiOnly ? "ui" : undefined) ?? protocolForAccept(ask.accept) ??
    ask.stored ?? fallback;
}

/**
 * The protocol an `Accept` header asks for by name: SSE, or plain text
 * (`Accept: text/plain`, for curl). None for wildcards (what browsers' and
 * AI SDK clients' fetch send): those get the stored protocol or the default.
 */
function protocolForAccept(accept: string | undefined): Protocol | undefined {
  // parseAccept (Hono's) orders by quality; a type refused with q=0 does not count
  const named = parseAccept(accept ?? "").find((a) =>
    a.q > 0 && (a.type === "text/event-stream" || a.type === "text/plain")
  );
  return named === undefined ? undefined : named.type === "text/event-stream" ? "sse" : "text";
}

/**
 * What a new reply does when its client leaves: what the request says
 * (`?on_disconnect=`), else it outlives its connection only when its client can
 * come back for it. A client of the UI message stream (AI SDK 5+) can: it
 * re-attaches (`resume`), and stops a reply with the stop route, so its leaving
 * is a dropped connection, and the reply goes on. No other client re-attaches
 * by itself: the data stream's (ai 3.x/4.x and the original frontend) stop
 * button only aborts the fetch, and curl's Ctrl-C (text, SSE) only closes the
 * socket. For them, leaving means stop: going on would bill for text nobody
 * reads and store a reply the user never saw. A script that wants its reply to
 * survive a dropped connection asks for `continue` and re-attaches.
 */
export function chooseOnDisconnect(
  asked: OnDisconnect | undefined,
  protocol: Protocol,
): OnDisconnect {
  return asked ?? (protocol === "ui" ? "continue" : "stop");
}

/** A reply's response: its stream, and the headers (a 200's). */
export interface ReplyResponse {
  body: ReadableStream<Uint8Array>;
  headers: Record<string, string>;
}

/**
 * The reply streamed in `protocol`, with its ids in the headers as in the
 * stream, and where the time before its first byte went (`Server-Timing`),
 * where there is such a time to tell.
 */
export function replyResponse(
  protocol: Protocol,
  relay: Omit<Relay, "encoder">,
  serverTiming?: string,
): ReplyResponse {
  const encoder = encoders[protocol];
  return {
    body: relayReply({ ...relay, encoder }),
    headers: {
      ...encoder.headers,
      "x-chat-session-id": relay.ids.sessionId,
      "x-user-message-id": relay.ids.userMessageId,
      "x-assistant-message-id": relay.ids.replyId,
      "x-model": relay.ids.model,
      ...(serverTiming === undefined ? {} : { "server-timing": serverTiming }),
    },
  };
}
