/**
 * A turn of the conversation, the heart of the product: the user's message
 * is stored, the prompt built from it and the history that fits, the model
 * asked, its reply relayed to the client as it arrives and saved however the
 * stream ends, and after the first exchange the session is named. Each step
 * is named below or in a module beside this one.
 */
import type { UserClaims } from "../auth.ts";
import type { RouteDeps } from "../deps.ts";
import { ModelError, openReply, type PromptMessage, type ReplyChunk } from "../model.ts";
import type { Protocol } from "../reply/protocols.ts";
import type { OnDisconnect, Relay } from "../reply/relay.ts";
import { type ReplyResponse, replyResponse } from "../reply/response.ts";
import { type ReplyWriter, replyWriter } from "../reply/row.ts";
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
  const { chunks, abort } = await askModel(
    deps,
    { model: plan.model, messages: promptOf(plan, sent.history), committed: sent.committed },
    writer,
    timing,
  );

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

/**
 * Opens the model's reply. Its request leaves as soon as the send's rows are
 * back, while the send's commit is still on its way, so that the commit's
 * wait for the disk and the model's own latency overlap; nothing reaches the
 * client before the send is durable, since the response exists only once
 * this returns. A send whose commit failed aborts the model's request at once
 * (no reply was stored or relayed, and no message id exists to answer) and
 * fails with the database's error. A model that cannot be reached fails
 * here, before the API answers: the failure is saved as the reply, so the
 * history says what happened, or the reply's row is released.
 */
async function askModel(
  deps: RouteDeps,
  ask: { model: string; messages: PromptMessage[]; committed: Promise<void> },
  writer: ReplyWriter,
  timing: ServerTiming,
): Promise<{ chunks: AsyncIterator<ReplyChunk>; abort: () => void }> {
  const upstream = new AbortController();
  const opening = openReply(deps.model, {
    model: ask.model,
    messages: ask.messages,
    signal: upstream.signal,
    idleTimeoutMs: deps.config.model.timeoutMs,
  });
  opening.catch(() => {}); // awaited below, once committed
  try {
    await ask.committed;
  } catch (error) {
    upstream.abort();
    // an opened stream is closed too: its reader, buffer and idle timer go now
    opening.then((chunks) => chunks.return?.(), () => {}).catch(() => {});
    throw error;
  }
  timing.lap("db", DB_LAP);
  // the model may take seconds to answer: meanwhile the writer reports it is alive, as the
  // relay's progress writes do once the reply streams (a silent writer is taken for dead); its
  // row is there to write once the send is durable
  const alive = setInterval(
    () =>
      writer.writeProgress("").catch((error) =>
        deps.log("reporting the reply alive failed", error)
      ),
    deps.config.model.replyPollMs,
  );
  try {
    const chunks = await opening;
    timing.lap("model", "the model's first words");
    return { chunks, abort: () => upstream.abort() };
  } catch (error) {
    if (error instanceof ModelError) {
      await writer.save("", error.ending).catch((e) =>
        deps.log("saving the failed reply failed", e)
      );
    } else {
      await writer.release();
    }
    throw error;
  } finally {
    clearInterval(alive);
  }
}

/** The Server-Timing part until the send is durable (the model's request is on its way meanwhile). */
const DB_LAP = "the send decided and committed in one round trip";

/** What a turn relays: the reply's chunks, and for a new reply its row and title. */
type Reply = Pick<Relay, "chunks" | "abort" | "row" | "title">;

async function* replay(reply: StoredReply): AsyncGenerator<ReplyChunk> {
  yield { text: reply.content, finishReason: reply.ending, usage: reply.usage };
}
