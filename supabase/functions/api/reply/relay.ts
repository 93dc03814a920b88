/**
 * Relays a reply to the client as it arrives, in the client's protocol, and,
 * for a new reply, writes its row: its progress as it grows (so any instance
 * can follow it), then the reply itself however the stream ends: completed,
 * stopped by a client, the model failing midway, the reply running past its
 * deadline, or the worker being retired. The client leaving ends the reply only
 * when its client cannot come back for it (`OnDisconnect`): then the model call
 * is stopped and what the client was sent is saved as `stopped`; otherwise the
 * reply goes on being written and saved. What the run may do next is asked of
 * its state (run.ts), which also holds every timer.
 *
 * A relay without a row to write (a stored reply replayed, a reply followed by
 * a re-attached client) only reads: nothing of it is saved, it is not one of
 * the worker's replies in flight, and it ends when its client leaves.
 */
import type { ReplyChunk, Usage } from "../model.ts";
import type { InFlightReplies, StopReply } from "./in_flight.ts";
import type { Encoder, ReplyIds, ReplyOutcome, StreamEnding } from "./protocols.ts";
import type { ReplyWriter, RowState } from "./row.ts";
import { ReplyRun } from "./run.ts";

export interface Relay {
  encoder: Encoder;
  ids: ReplyIds;
  /** the reply's text as it comes: from the model, a stored reply, or another instance (follow.ts) */
  chunks: AsyncIterator<ReplyChunk>;
  /** stops where the chunks come from */
  abort: () => void;
  /** the reply's row, when this relay writes it: a new reply */
  row?: RowWrites;
  /** the session's new title, announced in the stream if it is ready before the reply ends */
  title?: Promise<string | null> | undefined;
  /** keeps the runtime alive until the reply is saved, even after the client left */
  waitUntil: (work: Promise<unknown>) => void;
  log: (message: string, error?: unknown) => void;
}

/**
 * What a new reply does when its client leaves: `continue` (it outlives the
 * connection: any connection can re-attach to it or stop it) or `stop` (the
 * model call ends and the reply is saved as far as it was streamed, as
 * `stopped`). Chosen per request (response.ts: `chooseOnDisconnect`).
 */
export type OnDisconnect = "stop" | "continue";

/** What a relay that writes the reply's row does with it, and within which limits. */
export interface RowWrites {
  writer: ReplyWriter;
  /** what the client leaving does to the reply */
  onDisconnect: OnDisconnect;
  /** `performance.now()` time at which the reply is stopped and saved as `max_duration` */
  deadline: number;
  /**
   * The progress write is the writer's poll, made every `everyMs` at least: it
   * answers what became of the reply. A stop or the session's deletion can come
   * from any instance, and only Postgres knows: `session_deleted` stops the
   * model call and nothing is saved; `stopped` stops it and the reply is saved
   * as `stopped`. It carries text only while someone can re-attach for it (a
   * reader asked: `followed`; or the client left a reply that goes on): then
   * it appends what the model wrote since the last one, at most every
   * `persistMs` (bounded writes). Text nobody can come back for is never
   * written: the save stores the reply once.
   */
  progress: { everyMs: number; persistMs: number };
  /** where the reply registers while it streams, so a retiring worker can stop and save it */
  inFlight: InFlightReplies;
}

/** What the client is told when the worker is retired mid-reply. */
const SHUTDOWN_MESSAGE = "The server stopped before the reply was finished; send the message again";
/** What the client is told when the reply's session is deleted while it streams. */
const DELETED_MESSAGE = "The session was deleted while this reply was being written";

export function relayReply(relay: Relay): ReadableStream<Uint8Array> {
  const run = new ReplyRun();
  const stop = (ending: StreamEnding) => {
    if (run.stop(ending)) relay.abort();
    return run.ended;
  };
  return new ReadableStream<Uint8Array>({
    start(controller) {
      relay.waitUntil(relayRun(relay, run, stop, outbox(controller, run)));
    },
    cancel() {
      run.clientLeft();
      // a reader has nothing to outlive its client for; a reply whose client cannot come back
      // for it is stopped with the model call (nobody would read the rest, and it is billed)
      if (!relay.row) relay.abort();
      else if (relay.row.onDisconnect === "stop") stop("stopped");
    },
  });
}

async function relayRun(
  relay: Relay,
  run: ReplyRun,
  stop: (ending: StreamEnding) => Promise<void>,
  out: Outbox,
) {
  const { encoder, ids, row } = relay;
  // the reply keeps what its client was sent, and, when it outlives its client, what came after
  const keeps = () => run.clientAttached || row?.onDisconnect === "continue";
  const untrack = row?.inFlight.track(stop satisfies StopReply);
  const reply = { content: "" };
  if (row) {
    run.after("deadline", row.deadline - performance.now(), () => stop("max_duration"));
    writeProgress(row, run, reply, (state) => {
      // "followed" is writeProgress's own business. A row gone ("released") means this writer was
      // taken for dead: its writes waited too long (an overloaded instance or pool) and what it
      // had written was stored as `shutdown`. It is alive, so it goes on: its save stores the
      // whole reply over the cut one.
      if (state === "session_deleted" || state === "stopped") stop(state);
    }, relay.log);
  }
  relay.title?.then((title) => {
    if (title && run.phase !== "ended") out.send(encoder.title(ids, title));
  });
  out.send(encoder.start(ids));

  const read: Read = { ending: "stop", finished: false };
  try {
    for (let next = await relay.chunks.next(); !next.done; next = await relay.chunks.next()) {
      const chunk = next.value;
      if (chunk.text && keeps()) {
        reply.content += chunk.text;
        out.send(encoder.delta(chunk.text));
      }
      if (chunk.finishReason) {
        read.ending = chunk.finishReason;
        read.finished = true;
      }
      if (chunk.usage) read.usage = chunk.usage;
    }
  } catch (error) {
    // a failure of a stream stopped on purpose is the stop's doing, not the model's
    if (!run.stoppedAs) {
      const failure = error as { ending?: StreamEnding; message?: string };
      read.ending = failure.ending ?? "model_error";
      read.error = failure.message ?? "The model's reply broke off";
      relay.log("model stream failed", error);
    }
  }
  run.modelDone();

  const outcome = outcomeOf(read, run.stoppedAs);
  if (row && outcome.ending !== "session_deleted") {
    try {
      await row.writer.save(reply.content, outcome.ending, outcome.usage);
    } catch (error) {
      relay.log("saving the reply failed", error);
      outcome.error ??= "The reply could not be saved";
    }
  }
  run.end();
  untrack?.();
  out.close(encoder.end(ids, outcome));
}

/** What the stream said of its own ending. */
interface Read {
  ending: StreamEnding;
  /** the model reported how it finished */
  finished: boolean;
  usage?: Usage;
  error?: string;
}

/** How the reply ended: as its stream said, unless it was stopped on purpose before it had finished. */
function outcomeOf(read: Read, stoppedAs: StreamEnding | undefined): ReplyOutcome {
  const { ending, usage, error } = read;
  // there is nowhere to save it, finished or not: its row went with the session
  if (stoppedAs === "session_deleted") return { ending: stoppedAs, usage, error: DELETED_MESSAGE };
  if (stoppedAs && !read.finished) {
    return { ending: stoppedAs, usage, error: stoppedAs === "shutdown" ? SHUTDOWN_MESSAGE : error };
  }
  return { ending, usage, error };
}

/**
 * Polls the reply's row, and writes its progress while someone can re-attach
 * for it, while the model is read: the first statement after one interval, not
 * at once (an immediate write made postgres.js stall at the connection limit).
 * Once a reader has asked, the first write carries everything not yet written
 * (from the start), the next ones what came since.
 */
function writeProgress(
  row: RowWrites,
  run: ReplyRun,
  reply: { content: string },
  seen: (state: RowState) => void,
  log: Relay["log"],
) {
  const { everyMs, persistMs } = row.progress;
  let persisted = 0;
  let lastRead = -Infinity;
  let followed = false;
  const tick = async () => {
    const someoneMayReattach = followed || (!run.clientAttached && row.onDisconnect === "continue");
    const delta = someoneMayReattach ? reply.content.slice(persisted) : "";
    if (delta || performance.now() - lastRead >= everyMs) {
      try {
        const state = await row.writer.writeProgress(delta);
        persisted += delta.length;
        lastRead = performance.now();
        // once followed, always written: the reader may leave and another come
        if (state === "followed") followed = true;
        seen(state);
      } catch (error) {
        // the database briefly away: keep streaming, write and read again next time
        log("writing the reply's progress failed", error);
      }
    }
    run.after("progress", persistMs, tick);
  };
  run.after("progress", persistMs, tick);
}

interface Outbox {
  send(text: string): void;
  /** the last bytes, then the end of the stream */
  close(last: string): void;
}

/**
 * The bytes for the client. The first text of a burst leaves at once; what
 * arrives in the same turn of the event loop (a model's chunks come in bursts)
 * follows as one write on the next turn instead of a write per chunk. Nothing
 * is written once the client has left.
 */
function outbox(controller: ReadableStreamDefaultController<Uint8Array>, run: ReplyRun): Outbox {
  const bytes = new TextEncoder();
  let pending = "";
  const flush = () => {
    if (!pending) return;
    if (run.clientAttached) controller.enqueue(bytes.encode(pending));
    pending = "";
    run.after("flush", 0, flush);
  };
  return {
    send(text) {
      if (!run.clientAttached || !text) return;
      pending += text;
      if (!run.pending("flush")) flush();
    },
    close(last) {
      if (!run.clientAttached) return;
      run.cancel("flush");
      pending += last;
      if (pending) controller.enqueue(bytes.encode(pending));
      controller.close();
    },
  };
}
