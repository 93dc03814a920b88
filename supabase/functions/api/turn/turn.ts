/**
 * A turn of the conversation, the heart of the product: the user's message
 * is stored, the prompt built from it and the history that fits, the model
 * asked, its reply relayed to the client as it arrives and saved however the
 * stream ends, and after the first exchange the session is named. Each step
 * is named below or in a module beside this one.
 */
import type { UserClaims } from "../auth.ts";
import type { RouteDeps } from "../deps.ts";
import type { ReplyChunk } from "../model.ts";
import type { Protocol } from "../reply/protocols.ts";
import type { OnDisconnect, Relay } from "../reply/relay.ts";
import { type ReplyResponse, replyResponse } from "../reply/response.ts";
import { replyWriter } from "../reply/row.ts";
import { askModel, DB_LAP, holdRequest, requestReply, samePrompt } from "./ask_model.ts";
import { planPrompt, promptOf } from "./prompt.ts";
import { sendMessage, type StoredReply } from "./send.ts";
import { ServerTiming } from "./server_timing.ts";
import { nameSession } from "./title.ts";

export interface TurnRequest {
  sessionId: string;
  /**
   * the new message: its text, and the client's id for it (a retried send repeats it); a
   * regeneration may carry none
   */
  message: { content: string; id?: string | undefined } | undefined;
  /** another reply to a stored message (trigger `regenerate-message`) */
  regenerate: boolean;
  /** the message to edit or regenerate (AI SDK's `messageId`) */
  messageId: string | undefined;
  /** the model asked for, if any */
  model: string | undefined;
  /**
   * the body held no earlier message: a session's first, from a client that sends the whole
   * conversation (a hint only: the send decides)
   */
  alone: boolean;
  protocol: Protocol;
  /** what the client leaving does to the reply (`chooseOnDisconnect`) */
  onDisconnect: OnDisconnect;
}

/** The turn's answer: a 200 whose body is the reply, streaming. */
export type TurnResponse = ReplyResponse;

/** Takes a turn; throws an `ApiError` (or a `ModelError`) when it ends before the reply streams. */
export async function takeTurn(
  deps: RouteDeps,
  claims: UserClaims,
  request: TurnRequest,
): Promise<TurnResponse> {
  const { config, sql } = deps;
  const { sessionId, message } = request;
  // a reply is cut at REPLY_MAX_SECONDS from the request's start, inside the platform's wall clock
  const deadline = performance.now() + config.model.replyMaxMs;

  const content = message?.content ?? "";
  const plan = await planPrompt(config.model, { content, model: request.model });

  // A first message's prompt is known before the send decides it (the system prompt and the
  // message): its request is built while the send runs, and sent once the send confirms it.
  const held = request.alone && content !== "" && !request.regenerate &&
      request.messageId === undefined
    ? holdRequest(deps, plan.model, promptOf(plan, [{ role: "user", content }]))
    : undefined;
  const timing = new ServerTiming();
  const sent = await sendMessage(sql, claims, config.quotas, {
    sessionId,
    content,
    clientMessageId: message?.id ?? null,
    regenerate: request.regenerate,
    messageId: request.messageId ?? null,
    tokens: plan.tokens,
    historyTokens: plan.historyTokens,
    model: plan.model,
    protocol: request.protocol,
  }).catch((error) => {
    held?.drop();
    throw error;
  });

  const answer = (replyId: string, model: string, reply: Reply) =>
    replyResponse(
      request.protocol,
      {
        ...reply,
        ids: { sessionId, userMessageId: sent.userMessageId, replyId, model },
        waitUntil: deps.waitUntil,
        log: deps.log,
      },
      timing.header(),
    );
  if (sent.outcome === "replay") {
    // a retried send whose reply is complete: answer with it again, call no model, write nothing
    held?.drop();
    timing.lap("db", DB_LAP);
    const { reply } = sent;
    return answer(reply.id, reply.model || plan.model, { chunks: replay(reply), abort: () => {} });
  }

  // a new reply is stored under its row's id
  const writer = replyWriter(sql, claims, {
    id: sent.replyId,
    sessionId,
    replyTo: sent.userMessageId,
    model: plan.model,
    protocol: request.protocol,
  }, deps.log);
  // the request leaves now, the send's commit still on its way: the held one if the send
  // confirmed its prompt
  const messages = promptOf(plan, sent.history);
  const confirmed = held !== undefined && samePrompt(held.messages, messages);
  if (held && !confirmed) held.drop();
  const asked = confirmed ? held : requestReply(deps, plan.model, messages);
  if (confirmed) held.send();
  const { chunks, abort } = await askModel(deps, asked, sent.committed, writer, timing);

  // the first message of a session, answered (an edit of it or a regeneration too, while the
  // session keeps the title it was created with)
  const firstExchange = sent.untitled && sent.history.length === 1;
  return answer(sent.replyId, plan.model, {
    chunks,
    abort,
    row: {
      writer,
      onDisconnect: request.onDisconnect,
      deadline,
      progress: { everyMs: config.model.replyPollMs, persistMs: config.model.replyPersistMs },
      inFlight: deps.replies,
    },
    title: firstExchange && config.model.titles.enabled
      ? nameSession(deps, claims, sessionId, sent.history[0]!.content)
      : undefined,
  });
}

/** What a turn relays: the reply's chunks, and for a new reply its row and title. */
type Reply = Pick<Relay, "chunks" | "abort" | "row" | "title">;

async function* replay(reply: StoredReply): AsyncGenerator<ReplyChunk> {
  yield { text: reply.content, finishReason: reply.ending, usage: reply.usage };
}
