/**
 * POST /api/sessions/:id (and POST /api/chat, the session id in the body, for
 * AI SDK 5+ clients): stores the new message, asks the model, streams the
 * reply in the chosen protocol, and stores the reply however the stream ends.
 */
import type { Context } from "hono";
import { Router } from "../contract.ts";
import type { RouteDeps } from "../deps.ts";
import { chatRoute, sendMessageRoute } from "./messages_contract.ts";
import type { UserClaims } from "../auth.ts";
import {
  beginReply,
  beginTurn,
  freeReplySlot,
  type QuotaUse,
  quotaUse,
  saveReply,
  setGeneratedTitle,
  type Turn,
  writePartial,
} from "../chat_store.ts";
import { asCaller, queryAsCaller, retryWhileUnavailable } from "../database.ts";
import { ApiError, parseOr422, sessionNotFound } from "../errors.ts";
import {
  type Ending,
  generateTitle,
  ModelError,
  openReply,
  type PromptMessage,
  type ReplyChunk,
  type Usage,
} from "../model.ts";
import { acceptedNames, resolveModel } from "../model_names.ts";
import { relayReply } from "../reply_stream.ts";
import { readJson } from "../request_body.ts";
import { ChatBody, PostMessageBody, StreamQuery } from "../schemas.ts";
import { encoders, type Protocol, protocolForAccept, type ReplyIds } from "../stream_protocols.ts";
import {
  contentTokens,
  contentTokensUpTo,
  fewestContentTokens,
  messageTokens,
  perMessageTokens,
} from "../token_budget.ts";
import { sessionIdOf } from "./sessions.ts";

type Env = { Variables: { claims: UserClaims } };

export function messageRoutes(deps: RouteDeps) {
  const { sql, config } = deps;
  const app = new Router(deps.signedIn);

  const send = async (c: Context<Env>) => {
    // a reply is cut at REPLY_MAX_SECONDS from the request's start, inside the platform's wall clock
    const deadline = performance.now() + config.model.replyMaxMs;
    const claims = c.var.claims;
    // POST /chat names the session in its body (the AI SDK's chat id), POST /sessions/{id} in its path
    const inPath = c.req.param("session_id");
    const body = inPath === undefined ? parseOr422(ChatBody, await readJson(c), "body") : {
      ...parseOr422(PostMessageBody, await readJson(c), "body"),
      sessionId: sessionIdOf(inPath),
    };
    const { message, model: requestedModel, sessionId: id } = body;
    const protocol = chooseProtocol(
      parseOr422(StreamQuery, c.req.query(), "query").protocol,
      c.req.header("accept"),
      // a body of UI messages comes from an AI SDK 5+ client, which reads only the UI message
      // stream, as does what is sent to its route, /chat
      body.uiMessages || inPath === undefined ? "ui" : config.streamProtocol,
      body.uiMessages || inPath === undefined,
    );
    // the model that serves the request: what gets recorded and reported, whatever was asked for
    const model = resolveModel(config.model, requestedModel);
    if (model === undefined) {
      throw new ApiError(422, [{
        loc: ["body", "model"],
        msg: `model not available; choose one of: ${acceptedNames(config.model).join(", ")}`,
        type: "enum",
      }]);
    }
    const system: PromptMessage = { role: "system", content: config.model.systemPrompt };
    const budget = config.model.historyBudget(model);
    const tooLong = (tokens: string) =>
      new ApiError(
        413,
        `The message is too long for ${model}: ${tokens} tokens with the system prompt, the budget is ${budget}`,
      );
    // a message that cannot fit is refused from its length alone, or once counting passes the
    // budget: counting a huge message whole is the costly part
    const fewest = fewestContentTokens(message.content) + 2 * perMessageTokens;
    if (fewest > budget) throw tooLong(`at least ${fewest}`);
    const overhead = await messageTokens(system) + perMessageTokens;
    const counted = await contentTokensUpTo(message.content, budget - overhead);
    const tokens = counted.count;
    const needed = overhead + tokens;
    if (needed > budget) throw tooLong(counted.complete ? String(needed) : `at least ${needed}`);

    // committed before the model is called: nothing the user sent is lost
    const timing = new ServerTiming();
    const limits = config.quotas;
    const quotasOn = limits.messagesPerDay > 0 || limits.concurrentStreams > 0;
    const { turn, slotId } = await asCaller(sql, claims, async (tx) => {
      // counted under a per-user lock, taken before anything is stored
      const use = quotasOn ? await quotaUse(tx, limits.messagesPerDay) : undefined;
      const turn = await beginTurn(tx, {
        sessionId: id,
        content: message.content,
        tokens,
        clientMessageId: message.id ?? null,
        history: { tokens: budget - needed, perMessage: perMessageTokens },
      });
      if (!turn || turn === "conflict" || turn.storedReply || turn.superseded) {
        return { turn, slotId: null };
      }
      // Only a send that calls the model counts: a replay of a stored reply costs nothing and is
      // answered at the limit too. Refused here, the transaction rolls back: nothing is stored.
      if (use) refuseOverQuota(use, limits);
      // The reply's handle, taken in the transaction that stored or found the message: a
      // concurrent send of the same id waits for this one to commit, then finds the handle.
      // A retry that asks the model again counts as a send: it costs a model call as one does.
      const [handle] = await beginReply(tx, {
        sessionId: id,
        userMessageId: turn.userMessageId,
        seconds: limits.replySlotSeconds,
        countSend: turn.retried,
      });
      return { turn, slotId: handle!.id };
    });
    timing.lap("db", "store the message and read the history");
    if (!turn) throw sessionNotFound();
    if (turn === "conflict") {
      throw new ApiError(409, "Another message with this id exists in this session; use a new id");
    }
    if (!turn.storedReply && turn.superseded) {
      throw new ApiError(
        409,
        "Later messages followed this one; its reply cannot be written again. Send it as a new message",
      );
    }
    if (!turn.storedReply && !slotId) {
      // another request is streaming the reply to this very message (a later issue lets it re-attach)
      throw new ApiError(409, "a reply to this message is already being written", {
        "retry-after": String(BUSY_RETRY_SECONDS),
      });
    }

    const ids: ReplyIds = {
      sessionId: id,
      userMessageId: turn.userMessageId,
      // a new reply is stored under its handle's id
      assistantMessageId: turn.storedReply?.id ?? slotId!,
      model: turn.storedReply?.model || model,
    };
    // the slot must not outlive the reply, whether or not the reply could be saved (a save frees it)
    const releaseSlot = async () => {
      if (!slotId) return;
      await queryAsCaller(sql, claims, (tx) => freeReplySlot(tx, slotId))
        .catch((error) => deps.log("freeing the reply slot failed", error));
    };
    // a reply outlives a brief database outage: its save waits for the database to return
    const save = async (content: string, ending: Ending, usage?: Usage) => {
      const replyTokens = await contentTokens(content);
      await retryWhileUnavailable(() =>
        queryAsCaller(
          sql,
          claims,
          (tx) =>
            saveReply(tx, {
              id: ids.assistantMessageId,
              sessionId: id,
              content,
              model,
              ending,
              usage,
              tokens: replyTokens,
              slotId,
              replyTo: turn.userMessageId,
            }),
        )
      ).catch(async (error) => {
        await releaseSlot();
        throw error;
      });
    };

    if (turn.storedReply) {
      // a retried send whose reply is complete: answer with it again, call no model
      return stream(c, protocol, ids, timing, {
        chunks: replay(turn.storedReply),
        abort: () => {},
        save: () => Promise.resolve(),
      });
    }

    const upstream = new AbortController();
    let chunks: AsyncIterator<ReplyChunk>;
    try {
      chunks = await openReply(deps.model, {
        model,
        messages: [system, ...turn.history],
        signal: upstream.signal,
        idleTimeoutMs: config.model.timeoutMs,
      });
      timing.lap("model", "the model's first words");
    } catch (error) {
      if (error instanceof ModelError) {
        // the failed reply is recorded too, so the history says what happened
        await save("", error.ending).catch((e) => deps.log("saving the failed reply failed", e));
      } else {
        await releaseSlot();
      }
      throw error;
    }
    const firstExchange = turn.untitled && turn.history.length === 1;
    return stream(c, protocol, ids, timing, {
      chunks,
      abort: () => upstream.abort(),
      save,
      deadline,
      watch: {
        everyMs: config.model.replyPollMs,
        persistMs: config.model.replyPersistMs,
        write: async (delta) => {
          const [row] = await queryAsCaller(
            sql,
            claims,
            (tx) => writePartial(tx, { handle: slotId!, sessionId: id, delta, model }),
          );
          return row!.state;
        },
      },
      title: firstExchange && config.model.titles.enabled
        ? nameSession(message.content)
        : undefined,
    });

    /** Writes and stores a title in the background; resolves to it, or null if it could not or should not be stored. */
    function nameSession(firstMessage: string): Promise<string | null> {
      const titles = config.model.titles;
      const named = generateTitle(deps.model, {
        model: titles.model,
        firstMessage,
        timeoutMs: config.model.timeoutMs,
      }).then(async (title) => {
        // stored only while the title is still the default: a rename by the user always wins
        const { count } = await queryAsCaller(
          sql,
          claims,
          (tx) => setGeneratedTitle(tx, id, title),
        );
        return count > 0 ? title : null;
      }).catch((error) => {
        deps.log("title generation failed", error);
        return null;
      });
      deps.waitUntil(named);
      return named;
    }
  };
  app.add(sendMessageRoute, send);
  app.add(chatRoute, send);

  function stream(
    c: Context<Env>,
    protocol: Protocol,
    ids: ReplyIds,
    timing: ServerTiming,
    reply: {
      chunks: AsyncIterator<ReplyChunk>;
      abort: () => void;
      save: (content: string, ending: Ending, usage?: Usage) => Promise<void>;
      title?: Promise<string | null>;
      deadline?: number;
      watch?: { everyMs: number; persistMs: number; write: (delta: string) => Promise<string> };
    },
  ) {
    const encoder = encoders[protocol];
    return c.body(
      relayReply({
        ...reply,
        encoder,
        ids,
        waitUntil: deps.waitUntil,
        log: deps.log,
        inFlight: deps.replies,
      }),
      200,
      {
        ...encoder.headers,
        "x-chat-session-id": ids.sessionId,
        "x-user-message-id": ids.userMessageId,
        "x-assistant-message-id": ids.assistantMessageId,
        "x-model": ids.model,
        "server-timing": timing.header(),
      },
    );
  }

  return app.app;
}

/** How long a concurrent send of a message whose reply is being written is told to wait. */
const BUSY_RETRY_SECONDS = 3;

function refuseOverQuota(
  use: QuotaUse,
  limits: { messagesPerDay: number; concurrentStreams: number },
) {
  // Retry-After is the true wait: for the day, until enough of the last 24 hours' messages
  // have left the window; for replies, until the first running one's slot lapses at the
  // latest (a slot is freed the moment its reply ends, so a retry may succeed sooner)
  if (limits.messagesPerDay > 0 && use.sent_today >= limits.messagesPerDay) {
    throw new ApiError(
      429,
      `Daily message limit reached: ${limits.messagesPerDay} messages per 24 hours`,
      { "retry-after": String(Math.max(1, use.day_frees_in)) },
    );
  }
  if (limits.concurrentStreams > 0 && use.streaming >= limits.concurrentStreams) {
    throw new ApiError(
      429,
      `Concurrent reply limit reached: ${limits.concurrentStreams} replies streaming at a time`,
      { "retry-after": String(Math.max(1, use.slot_frees_in)) },
    );
  }
}

/** Where the time before the first byte went, for the Server-Timing header (and the benchmark). */
class ServerTiming {
  #last = performance.now();
  #entries: string[] = [];
  lap(name: string, description: string) {
    const now = performance.now();
    this.#entries.push(`${name};desc="${description}";dur=${(now - this.#last).toFixed(2)}`);
    this.#last = now;
  }
  header(): string {
    return this.#entries.join(", ");
  }
}

function chooseProtocol(
  asked: Protocol | undefined,
  accept: string | undefined,
  fallback: Protocol,
  fallbackWins = false,
): Protocol {
  if (asked) return asked;
  if (fallbackWins) return fallback;
  return protocolForAccept(accept) ?? fallback;
}

async function* replay(reply: NonNullable<Turn["storedReply"]>): AsyncGenerator<ReplyChunk> {
  yield { text: reply.content, finishReason: reply.ending, usage: reply.usage };
}
