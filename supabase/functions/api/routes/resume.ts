/**
 * A reply in progress, from any connection: re-attach to it (GET) or stop it
 * (DELETE). The instance writing the reply appends its text to the reply's
 * handle row as it streams (reply_stream.ts); a re-attached stream replays
 * that text from the start and follows the row by polling it, then ends with
 * the stored reply. Only Postgres is shared: any instance serves either.
 */
import type { Context } from "hono";
import type { UserClaims } from "../auth.ts";
import { type FollowedReply, followReply, requestStop } from "../chat_store.ts";
import { Router } from "../contract.ts";
import { queryAsCaller } from "../database.ts";
import type { RouteDeps } from "../deps.ts";
import { parseOr422 } from "../errors.ts";
import type { Ending, ReplyChunk } from "../model.ts";
import { relayReply } from "../reply_stream.ts";
import { SessionPath, StreamQuery } from "../schemas.ts";
import { encoders, type Protocol, protocolForAccept } from "../stream_protocols.ts";
import { resumeRoute, stopRoute } from "./resume_contract.ts";

type Env = { Variables: { claims: UserClaims } };

/** Endings that the original stream reported as an error, and a replay reports the same way. */
const FAILED: Ending[] = ["model_error", "timeout", "shutdown"];
/** How long a stop waits for the reply to be stored before answering 202. */
const STOP_WAIT_MS = 10_000;

export function resumeRoutes(deps: RouteDeps) {
  const { sql, config } = deps;
  const app = new Router(deps.signedIn);
  const read = (claims: UserClaims, sessionId: string, handle: string | null) =>
    queryAsCaller(sql, claims, (tx) => followReply(tx, sessionId, handle)).then(([row]) => row!);
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  const resume = async (c: Context<Env>, defaultProtocol: Protocol | undefined) => {
    const claims = c.var.claims;
    const id = parseOr422(SessionPath, c.req.param(), "path").session_id;
    const protocol = parseOr422(StreamQuery, c.req.query(), "query").protocol ?? defaultProtocol ??
      protocolForAccept(c.req.header("accept")) ?? config.streamProtocol;
    const first = await read(claims, id, null);
    if (first.state !== "streaming") return c.body(null, 204);
    const handle = first.id!;
    let detached = false;

    // the reply as it grows: each read's new text; at the end, the stored reply's rest and ending
    async function* follow(): AsyncGenerator<ReplyChunk> {
      let row: FollowedReply = first;
      let sent = 0;
      // the writer's handle lapses after QUOTA_REPLY_SLOT_SECONDS at the latest
      const until = performance.now() + config.quotas.replySlotSeconds * 1000;
      while (!detached) {
        const text = row.content ?? "";
        if (text.length > sent) {
          yield { text: text.slice(sent) };
          sent = text.length;
        }
        if (row.state === "stored") {
          const ending = row.finish_reason ?? "stop";
          if (FAILED.includes(ending)) {
            throw Object.assign(new Error(`The reply ended early (${ending})`), { ending });
          }
          const usage = row.prompt_tokens === null || row.completion_tokens === null
            ? undefined
            : { promptTokens: row.prompt_tokens, completionTokens: row.completion_tokens };
          yield { text: "", finishReason: ending, usage };
          return;
        }
        if (row.state === "gone" || performance.now() > until) {
          throw Object.assign(
            new Error("The reply was not stored: its session was deleted, or it was replaced"),
            { ending: "session_deleted" },
          );
        }
        await sleep(config.model.replyPersistMs);
        try {
          row = await read(claims, id, handle);
        } catch (error) {
          // the database briefly away: read again next time
          deps.log("following a reply failed", error);
        }
      }
    }

    // the model is recorded with the reply's first progress write, REPLY_PERSIST_MS in
    const model: string = first.model ??
      (await sleep(config.model.replyPersistMs).then(() => read(claims, id, handle))).model ?? "";
    const ids = {
      sessionId: id,
      userMessageId: first.user_message_id!,
      assistantMessageId: handle,
      model,
    };
    const encoder = encoders[protocol];
    return c.body(
      relayReply({
        encoder,
        ids,
        chunks: follow(),
        abort: () => detached = true,
        abortWhenClientLeaves: true,
        save: () => Promise.resolve(),
        waitUntil: deps.waitUntil,
        log: deps.log,
      }),
      200,
      {
        ...encoder.headers,
        "x-chat-session-id": ids.sessionId,
        "x-user-message-id": ids.userMessageId,
        "x-assistant-message-id": ids.assistantMessageId,
        "x-model": ids.model,
      },
    );
  };

  const stop = async (c: Context<Env>) => {
    const claims = c.var.claims;
    const id = parseOr422(SessionPath, c.req.param(), "path").session_id;
    const [asked] = await queryAsCaller(sql, claims, (tx) => requestStop(tx, id));
    const handle = asked!.id;
    if (!handle) return c.body(null, 204);
    // the writer sees the stop at its next write or poll (REPLY_PERSIST_MS / REPLY_POLL_MS)
    const until = performance.now() + STOP_WAIT_MS;
    while (performance.now() < until) {
      await sleep(config.model.replyPersistMs);
      const row = await read(claims, id, handle);
      if (row.state !== "streaming") {
        return c.json({
          id: handle,
          content: row.content,
          finish_reason: row.finish_reason,
        }, 200);
      }
    }
    return c.json({ id: handle, content: null, finish_reason: null }, 202);
  };

  app.add(resumeRoute("sessions"), (c) => resume(c, undefined));
  app.add(resumeRoute("chat"), (c) => resume(c, "ui"));
  app.add(stopRoute("sessions"), stop);
  app.add(stopRoute("chat"), stop);
  return app.app;
}
