/**
 * Asking the model for a turn's reply, with the least added before its first
 * words: the request leaves as soon as the send's rows are back, while the
 * send's commit is still on its way (the commit's wait for the disk and the
 * model's own latency overlap), and a first message's request is even built
 * while the send runs, held until the send confirms its prompt. Nothing
 * reaches the client before the send is durable: the reply's response exists
 * only once `askModel` returns.
 */
import type { RouteDeps } from "../deps.ts";
import { ModelError, openReply, type PromptMessage, type ReplyChunk } from "../model.ts";
import type { ReplyWriter } from "../reply/row.ts";
import type { ServerTiming } from "./server_timing.ts";

/** A model request on its way (or built and held), and what stops it. */
export interface ModelRequest {
  messages: PromptMessage[];
  opening: Promise<AsyncIterator<ReplyChunk>>;
  upstream: AbortController;
}

/** A request built now whose sending waits for `send` (or never happens: `drop`). */
export interface HeldRequest extends ModelRequest {
  send(): void;
  drop(): void;
}

type Ask = Pick<RouteDeps, "model" | "config">;

/** Opens a request to the model now. */
export function requestReply(deps: Ask, model: string, messages: PromptMessage[]): ModelRequest {
  return open(deps, model, messages, undefined);
}

/**
 * Builds a request to the model, sent only once `send` is called: the SDK's
 * part of a request (about a quarter of a millisecond) is done while the
 * database works. `drop` aborts it before anything leaves.
 */
export function holdRequest(deps: Ask, model: string, messages: PromptMessage[]): HeldRequest {
  const go = Promise.withResolvers<void>();
  go.promise.catch(() => {}); // a dropped request's fetch reports it, or was never reached
  const request = open(deps, model, messages, go.promise);
  return {
    ...request,
    send: () => go.resolve(),
    drop: () => {
      // aborted before the SDK sees the failed wait, so it is dropped, not retried
      request.upstream.abort();
      go.reject(new Error("the held model request was dropped"));
    },
  };
}

function open(
  deps: Ask,
  model: string,
  messages: PromptMessage[],
  after: Promise<void> | undefined,
): ModelRequest {
  const upstream = new AbortController();
  const opening = openReply(deps.model, {
    model,
    messages,
    signal: upstream.signal,
    idleTimeoutMs: deps.config.model.timeoutMs,
    after,
  });
  opening.catch(() => {}); // awaited by askModel, or dropped
  return { messages, opening, upstream };
}

/** The same prompt, message for message. */
export function samePrompt(a: PromptMessage[], b: PromptMessage[]): boolean {
  return a.length === b.length &&
    a.every((m, i) => m.role === b[i]!.role && m.content === b[i]!.content);
}

/** The Server-Timing part until the send is durable (the model's request is on its way meanwhile). */
export const DB_LAP = "the send decided and committed in one round trip";

/**
 * Waits for the model's reply to a send, once the send is durable. A send
 * whose commit failed aborts the model's request at once (no reply was stored
 * or relayed, and no message id exists to answer) and fails with the
 * database's error. A model that cannot be reached fails here, before the API
 * answers: the failure is saved as the reply, so the history says what
 * happened, or the reply's row is released.
 */
export async function askModel(
  deps: Pick<RouteDeps, "config" | "log">,
  request: ModelRequest,
  committed: Promise<void>,
  writer: ReplyWriter,
  timing: ServerTiming,
): Promise<{ chunks: AsyncIterator<ReplyChunk>; abort: () => void }> {
  const { upstream } = request;
  try {
    await committed;
  } catch (error) {
    upstream.abort();
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
    const chunks = await request.opening;
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
