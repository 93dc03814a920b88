/**
 * Relays a model reply to the client as it arrives and saves it however the
 * stream ends: completed, stopped by the user, the model failing midway, the
 * reply running past its deadline, or the worker being retired. The client
 * leaving ends nothing: the reply goes on being written and saved, and is
 * persisted as it grows, so the client can re-attach to it (resume.ts).
 */
import type { InFlightReplies, StopReply } from "./in_flight.ts";
import type { Ending, ReplyChunk, Usage } from "./model.ts";
import type { Encoder, ReplyIds, ReplyOutcome, StreamEnding } from "./stream_protocols.ts";

export interface Relay {
  encoder: Encoder;
  ids: ReplyIds;
  chunks: AsyncIterator<ReplyChunk>;
  /** stops the upstream call */
  abort: () => void;
  /** the client leaving stops the upstream too (a re-attached stream: the reply goes on elsewhere) */
  abortWhenClientLeaves?: boolean;
  /** saves the reply; a rejection is reported to the client where the protocol can */
  save: (content: string, ending: Ending, usage?: Usage) => Promise<void>;
  /** the session's new title, announced in the stream if it is ready before the reply ends */
  title?: Promise<string | null>;
  /** keeps the runtime alive until the reply is saved, even after the client left */
  waitUntil: (work: Promise<unknown>) => void;
  log: (message: string, error: unknown) => void;
  /** where the reply registers while it streams, so a retiring worker can stop and save it */
  inFlight?: InFlightReplies;
  /** `performance.now()` time at which the reply is stopped and saved as `max_duration` */
  deadline?: number;
  /**
   * The reply's row, written and read while the model streams: `write(delta)`
   * appends what the model wrote since the last write, at most every
   * `persistMs` (bounded writes, so another connection can follow the reply),
   * and answers what became of it; with nothing new it is still called every
   * `everyMs`, as the poll. A stop or the session's deletion can come from any
   * instance, and only Postgres knows: `session_deleted` stops the model call
   * and nothing is saved; `stopped` stops it and the reply is saved as `stopped`.
   */
  watch?: { everyMs: number; persistMs: number; write: (delta: string) => Promise<string> };
}

/** What the client is told when the worker is retired mid-reply. */
const SHUTDOWN_MESSAGE = "The server stopped before the reply was finished; send the message again";
/** What the client is told when the reply's session is deleted while it streams. */
const DELETED_MESSAGE = "The session was deleted while this reply was being written";

export function relayReply(relay: Relay): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder();
  let clientGone = false;

  return new ReadableStream<Uint8Array>({
    start(controller) {
      // The first text of a burst leaves at once; what arrives in the same
      // turn of the event loop (a model's chunks come in bursts) follows as
      // one write on the next turn instead of a write per chunk.
      let pending = "";
      let window: ReturnType<typeof setTimeout> | undefined;
      const flush = () => {
        window = undefined;
        if (!pending) return;
        if (!clientGone) controller.enqueue(bytes.encode(pending));
        pending = "";
        window = setTimeout(flush, 0);
      };
      const send = (text: string) => {
        if (clientGone || !text) return;
        pending += text;
        if (!window) flush();
      };
      const run = async () => {
        let finished = false;
        let ended = false;
        // stopped on purpose (deadline, retirement) while the model was still streaming
        let streaming = true;
        let stoppedAs: StreamEnding | undefined;
        const saved = Promise.withResolvers<void>();
        const stop = (ending: StreamEnding) => {
          if (streaming && !stoppedAs) {
            stoppedAs = ending;
            relay.abort();
          }
          return saved.promise;
        };
        const untrack = relay.inFlight?.track(stop satisfies StopReply);
        const cutoff = relay.deadline === undefined
          ? undefined
          : setTimeout(() => stop("max_duration"), relay.deadline - performance.now());
        let poll: ReturnType<typeof setTimeout> | undefined;
        const watch = relay.watch;
        let content = "";
        if (watch) {
          let persisted = 0;
          let lastRead = -Infinity;
          const tick = async () => {
            const delta = content.slice(persisted);
            if (delta || performance.now() - lastRead >= watch.everyMs) {
              try {
                const state = await watch.write(delta);
                persisted += delta.length;
                lastRead = performance.now();
                if (state === "session_deleted" || state === "stopped") stop(state);
              } catch (error) {
                // the database briefly away: keep streaming, write and read again next time
                relay.log("writing the reply's progress failed", error);
              }
            }
            if (streaming) poll = setTimeout(tick, watch.persistMs);
          };
          // the first write after one interval, not at once (an immediate write made postgres.js
          // stall at the connection limit); it records the model a re-attaching client is told
          poll = setTimeout(tick, watch.persistMs);
        }
        relay.title?.then((title) => {
          if (title && !ended) send(relay.encoder.title(relay.ids, title));
        });
        const outcome: ReplyOutcome = { ending: "stop" };
        send(relay.encoder.start(relay.ids));
        try {
          for (let next = await relay.chunks.next(); !next.done; next = await relay.chunks.next()) {
            const chunk = next.value;
            if (chunk.text) {
              content += chunk.text;
              send(relay.encoder.delta(chunk.text));
            }
            if (chunk.finishReason) {
              outcome.ending = chunk.finishReason;
              finished = true;
            }
            if (chunk.usage) outcome.usage = chunk.usage;
          }
        } catch (error) {
          if (!stoppedAs) {
            const failure = error as { ending?: Ending; message?: string };
            outcome.ending = failure.ending ?? "model_error";
            outcome.error = failure.message ?? "The model's reply broke off";
            relay.log("model stream failed", error);
          }
        }
        streaming = false;
        clearTimeout(cutoff);
        clearTimeout(poll);
        // stopped on purpose, unless the model had finished by then
        if (stoppedAs === "session_deleted") {
          // there is nowhere to save it: its handle and slot went with the session
          outcome.ending = stoppedAs;
          outcome.error = DELETED_MESSAGE;
        } else if (stoppedAs && !finished) {
          outcome.ending = stoppedAs;
          if (stoppedAs === "shutdown") outcome.error = SHUTDOWN_MESSAGE;
        }
        const ending = outcome.ending;
        if (ending !== "session_deleted") {
          try {
            await relay.save(content, ending, outcome.usage);
          } catch (error) {
            relay.log("saving the reply failed", error);
            outcome.error ??= "The reply could not be saved";
          }
        }
        ended = true;
        untrack?.();
        saved.resolve();
        if (clientGone) return;
        clearTimeout(window);
        pending += relay.encoder.end(relay.ids, outcome);
        if (pending) controller.enqueue(bytes.encode(pending));
        controller.close();
      };
      relay.waitUntil(run());
    },
    cancel() {
      // the client left: the reply goes on (it can be re-attached), only the bytes are dropped
      clientGone = true;
      if (relay.abortWhenClientLeaves) relay.abort();
    },
  });
}
