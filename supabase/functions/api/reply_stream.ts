/**
 * Relays a model reply to the client as it arrives and saves it however the
 * stream ends: completed, the client gone (the upstream call is stopped at
 * once and what was streamed is kept), the model failing midway, the reply
 * running past its deadline, or the worker being retired.
 */
import type { InFlightReplies, StopReply } from "./in_flight.ts";
import type { Ending, ReplyChunk, Usage } from "./model.ts";
import type { Encoder, ReplyIds, ReplyOutcome } from "./stream_protocols.ts";

export interface Relay {
  encoder: Encoder;
  ids: ReplyIds;
  chunks: AsyncIterator<ReplyChunk>;
  /** stops the upstream call */
  abort: () => void;
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
}

/** What the client is told when the worker is retired mid-reply. */
const SHUTDOWN_MESSAGE = "The server stopped before the reply was finished; send the message again";

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
        let content = "";
        let finished = false;
        let ended = false;
        // stopped on purpose (deadline, retirement) while the model was still streaming
        let streaming = true;
        let stoppedAs: Ending | undefined;
        const saved = Promise.withResolvers<void>();
        const stop: StopReply = (ending) => {
          if (streaming && !clientGone && !stoppedAs) {
            stoppedAs = ending;
            relay.abort();
          }
          return saved.promise;
        };
        const untrack = relay.inFlight?.track(stop);
        const cutoff = relay.deadline === undefined
          ? undefined
          : setTimeout(() => stop("max_duration"), relay.deadline - performance.now());
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
          if (!clientGone && !stoppedAs) {
            const failure = error as { ending?: Ending; message?: string };
            outcome.ending = failure.ending ?? "model_error";
            outcome.error = failure.message ?? "The model's reply broke off";
            relay.log("model stream failed", error);
          }
        }
        streaming = false;
        clearTimeout(cutoff);
        // stopped because the client left or by us, unless the model had finished by then
        if (clientGone && !finished) outcome.ending = "client_closed";
        else if (stoppedAs && !finished) {
          outcome.ending = stoppedAs;
          if (stoppedAs === "shutdown") outcome.error = SHUTDOWN_MESSAGE;
        }
        try {
          await relay.save(content, outcome.ending, outcome.usage);
        } catch (error) {
          relay.log("saving the reply failed", error);
          outcome.error ??= "The reply could not be saved";
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
      clientGone = true;
      relay.abort();
    },
  });
}
