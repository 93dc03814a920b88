/** The chat session routes, paths and bodies exactly as the original API. */
import { Hono } from "hono";
import type { Deps } from "../app.ts";
import { requireUser, type UserClaims } from "../auth.ts";
import {
  beginTurn,
  deleteAllSessions,
  deleteSession,
  listSessions,
  messagesOf,
  readHistory,
  renameSession,
  saveReply,
  type Turn,
} from "../chat_store.ts";
import { asCaller, queryAsCaller, retryWhileUnavailable } from "../database.ts";
import { ApiError, parseOr422, sessionNotFound } from "../errors.ts";
import { type Ending, ModelError, openReply, type ReplyChunk } from "../model.ts";
import { relayReply } from "../reply_stream.ts";
import { readJson } from "../request_body.ts";
import { PostMessageBody, SessionPath, StreamQuery, TitleBody } from "../schemas.ts";
import { encoders, type Protocol, type ReplyIds } from "../stream_protocols.ts";

type Env = { Variables: { claims: UserClaims } };

export function sessionRoutes(deps: Deps) {
  const { sql, config } = deps;
  const app = new Hono<Env>();
  // by path, not "*": mounted at the root, "*" would also cover /api/health
  const signedIn = requireUser(deps.verifyToken);
  for (const path of ["/sessions", "/sessions/*", "/empty-sessions"]) app.use(path, signedIn);

  const sessionId = (param: string | undefined) =>
    parseOr422(SessionPath, { session_id: param }, "path").session_id;

  app.get("/sessions", async (c) => {
    return c.json(await queryAsCaller(sql, c.var.claims, listSessions));
  });

  app.get("/sessions/:session_id", async (c) => {
    const id = sessionId(c.req.param("session_id"));
    const messages = messagesOf(
      await queryAsCaller(sql, c.var.claims, (tx) => readHistory(tx, id)),
    );
    if (!messages) throw sessionNotFound();
    return c.json(messages);
  });

  app.post("/sessions/:session_id", async (c) => {
    const claims = c.var.claims;
    const id = sessionId(c.req.param("session_id"));
    const { message, model: requestedModel } = parseOr422(
      PostMessageBody,
      await readJson(c),
      "body",
    );
    const protocol = chooseProtocol(
      parseOr422(StreamQuery, c.req.query(), "query").protocol,
      c.req.header("accept"),
      config.streamProtocol,
    );
    const model = requestedModel ?? config.model.defaultModel;
    if (!config.model.allowedModels.has(model)) {
      throw new ApiError(422, [{
        loc: ["body", "model"],
        msg: `model not available; choose one of: ${[...config.model.allowedModels].join(", ")}`,
        type: "enum",
      }]);
    }

    // committed before the model is called: nothing the user sent is lost
    const timing = new ServerTiming();
    const turn = await asCaller(
      sql,
      claims,
      (tx) =>
        beginTurn(tx, {
          sessionId: id,
          content: message.content,
          clientMessageId: message.id ?? null,
        }),
    );
    timing.lap("db", "store the message and read the history");
    if (!turn) throw sessionNotFound();
    if (turn === "conflict") {
      throw new ApiError(409, "Another message with this id exists in this session; use a new id");
    }

    const ids: ReplyIds = {
      sessionId: id,
      userMessageId: turn.userMessageId,
      assistantMessageId: turn.storedReply?.id ?? crypto.randomUUID(),
      model: turn.storedReply?.model || model,
    };
    // a reply outlives a brief database outage: its save waits for the database to return
    const save = async (content: string, ending: Ending) => {
      await retryWhileUnavailable(() =>
        queryAsCaller(
          sql,
          claims,
          (tx) =>
            saveReply(tx, { id: ids.assistantMessageId, sessionId: id, content, model, ending }),
        )
      );
    };
    const upstream = new AbortController();

    let chunks: AsyncIterator<ReplyChunk>;
    let persist = save;
    if (turn.storedReply) {
      // a retried send whose reply is complete: answer with it again, call no model
      chunks = replay(turn.storedReply);
      persist = () => Promise.resolve();
    } else {
      try {
        chunks = await openReply(deps.model, {
          model,
          messages: prompt(config.model.systemPrompt, turn),
          signal: upstream.signal,
          idleTimeoutMs: config.model.timeoutMs,
        });
        timing.lap("model", "the model's first words");
      } catch (error) {
        if (error instanceof ModelError) {
          // the failed reply is recorded too, so the history says what happened
          await save("", error.ending).catch((e) => deps.log("saving the failed reply failed", e));
        }
        throw error;
      }
    }

    const encoder = encoders[protocol];
    return c.body(
      relayReply({
        encoder,
        ids,
        chunks,
        abort: () => upstream.abort(),
        save: persist,
        waitUntil: deps.waitUntil,
        log: deps.log,
      }),
      200,
      {
        ...encoder.headers,
        "x-chat-session-id": ids.sessionId,
        "x-user-message-id": ids.userMessageId,
        "x-assistant-message-id": ids.assistantMessageId,
        "server-timing": timing.header(),
      },
    );
  });

  app.patch("/sessions/:session_id/title", async (c) => {
    const id = sessionId(c.req.param("session_id"));
    const { title } = parseOr422(TitleBody, await readJson(c), "body");
    const [session] = await queryAsCaller(sql, c.var.claims, (tx) => renameSession(tx, id, title));
    if (!session) throw sessionNotFound();
    return c.json(session);
  });

  app.delete("/sessions/:session_id", async (c) => {
    const id = sessionId(c.req.param("session_id"));
    const { count } = await queryAsCaller(sql, c.var.claims, (tx) => deleteSession(tx, id));
    if (count === 0) throw sessionNotFound();
    return c.json({ detail: "Chat session and its messages have been deleted" });
  });

  app.delete("/empty-sessions", async (c) => {
    await queryAsCaller(sql, c.var.claims, deleteAllSessions);
    return c.json({ detail: "All chat sessions and messages have been deleted" });
  });

  return app;
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
): Protocol {
  if (asked) return asked;
  if (accept?.includes("text/event-stream")) return "sse";
  return fallback;
}

function prompt(systemPrompt: string, turn: Turn) {
  return [{ role: "system" as const, content: systemPrompt }, ...turn.history];
}

async function* replay(reply: NonNullable<Turn["storedReply"]>): AsyncGenerator<ReplyChunk> {
  yield { text: reply.content, finishReason: reply.ending };
}
