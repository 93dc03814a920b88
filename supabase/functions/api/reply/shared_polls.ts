/**
 * The readers of one reply on this instance share one poll of it. Re-attached
 * streams (follow.ts) and stops waiting for the reply to end (stop.ts) join
 * the poll of their reply; while it has members, one loop reads the reply
 * every REPLY_PERSIST_MS, asking only for the text it has not yet read, and
 * keeps the text read so far, from the start, so a reader that joins late has
 * it at once, from memory. 30 readers of a reply cost what one does. A poll
 * with only stops as members reads no text (nor asks the writer to write any).
 *
 * What each member may hold is bounded per user (`UserSeats`): a poll costs
 * little, but a stream held open costs memory, and a user must not be able to
 * hold an instance's every socket.
 */
import type { UserClaims } from "../auth.ts";
import type { Sql } from "../database.ts";
import { type FollowedReply, followReply } from "./row.ts";

/** What the members of a poll see. */
export interface PollView {
  /** the reply's text read so far, from its start (all of it once it is stored) */
  text: string;
  /** the latest read: `stored` or `gone` once the reply is over; null before the first */
  last: FollowedReply | null;
  /** the reply is over (stored or gone): no read follows */
  over: boolean;
}

/** A member of a reply's poll. */
export interface PollMember {
  view(): PollView;
  /** resolves after the next read, or when `signal` aborts */
  next(signal?: AbortSignal): Promise<void>;
  /** leaves the poll, which stops once it has no members */
  leave(): void;
}

interface Poll extends PollView {
  /** members that want the text, and members that wait only for the ending */
  readers: number;
  waiters: number;
  /** code points read so far: where the next read starts */
  chars: number;
  read: Promise<void>;
  readDone: () => void;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class SharedPolls {
  #polls = new Map<string, Poll>();
  /** the latest poll of each user's session, by `user/session` */
  #bySession = new Map<string, Poll>();
  /** lookups of what streams in a user's session under way, by `user/session` */
  #finding = new Map<string, Promise<FollowedReply>>();

  constructor(
    private readonly deps: {
      sql: Sql;
      everyMs: number;
      log: (message: string, error?: unknown) => void;
    },
  ) {}

  /** polls running now (tests) */
  get size(): number {
    return this.#polls.size;
  }

  /**
   * The reply streaming in the caller's session `sessionId` (state `streaming`),
   * without its text, or what else the session holds. As a poll of this
   * instance last read it while one runs, so a re-attach joins it without a read
   * of its own; otherwise read once for every re-attach asking at the same time.
   * (Were two replies streaming in one session, a re-attach would join the one
   * already followed here rather than the newer; one that comes back gets the
   * newer once the older is stored.)
   */
  find(claims: UserClaims, sessionId: string): Promise<FollowedReply> {
    const session = `${claims.sub}/${sessionId}`;
    const poll = this.#bySession.get(session);
    if (poll && !poll.over && poll.last?.state === "streaming") return Promise.resolve(poll.last);
    let finding = this.#finding.get(session);
    if (!finding) {
      finding = followReply(this.deps.sql, claims, sessionId, null, null)
        .finally(() => this.#finding.delete(session));
      this.#finding.set(session, finding);
    }
    return finding;
  }

  /**
   * Joins the poll of the caller's reply `replyId` in `sessionId`, starting it
   * if none runs: a member that wants the text, or one that waits only for the
   * reply to end.
   */
  join(claims: UserClaims, sessionId: string, replyId: string, wantsText: boolean): PollMember {
    // by user and session too: a poll reads as the user who started it, so nobody else may join it
    const key = `${claims.sub}/${sessionId}/${replyId}`;
    const running = this.#polls.get(key);
    const joined = running ?? newPoll();
    if (wantsText) joined.readers++;
    else joined.waiters++;
    if (!running) {
      this.#polls.set(key, joined);
      this.#bySession.set(`${claims.sub}/${sessionId}`, joined);
      this.#run(key, joined, claims, sessionId, replyId, wantsText);
    }
    let left = false;
    // one abort listener per member and signal, waking whichever wait is current: a listener (or
    // a race against one long-lived promise) per read would pile up for the member's whole life
    let listened: AbortSignal | undefined;
    let wake: (() => void) | undefined;
    return {
      view: () => ({ text: joined.text, last: joined.last, over: joined.over }),
      next: (signal) => {
        if (!signal) return joined.read;
        if (signal.aborted) return Promise.resolve();
        if (listened !== signal) {
          listened = signal;
          signal.addEventListener("abort", () => wake?.(), { once: true });
        }
        return new Promise<void>((resolve) => {
          wake = resolve;
          joined.read.then(resolve); // settles at the next read, releasing this reaction
        });
      },
      leave: () => {
        if (left) return;
        left = true;
        if (wantsText) joined.readers--;
        else joined.waiters--;
      },
    };
  }

  async #run(
    key: string,
    poll: Poll,
    claims: UserClaims,
    sessionId: string,
    replyId: string,
    startedByReader: boolean,
  ) {
    const { sql, everyMs, log } = this.deps;
    // a reader wants its text now; a stop was just asked for, and its writer needs a moment
    let wait = startedByReader ? 0 : everyMs;
    while (!poll.over) {
      if (wait) await sleep(wait);
      wait = everyMs;
      if (poll.readers + poll.waiters === 0) break;
      const after = poll.readers > 0 ? poll.chars : null;
      try {
        const row = await followReply(sql, claims, sessionId, replyId, after);
        if (after !== null && row.content !== null) {
          poll.text += row.content;
          poll.chars = row.text_length ?? poll.chars;
        } else if (row.state === "stored") {
          // read whole: the stored reply is all its text
          poll.text = row.content ?? "";
          poll.chars = row.text_length ?? 0;
        }
        poll.last = row;
        poll.over = row.state !== "streaming";
      } catch (error) {
        // the database briefly away: read again next time
        log("following a reply failed", error);
      }
      const done = poll.readDone;
      Object.assign(poll, nextRead());
      done();
    }
    if (this.#polls.get(key) === poll) this.#polls.delete(key);
    const session = `${claims.sub}/${sessionId}`;
    if (this.#bySession.get(session) === poll) this.#bySession.delete(session);
  }
}

function newPoll(): Poll {
  return { text: "", last: null, over: false, readers: 0, waiters: 0, chars: 0, ...nextRead() };
}

function nextRead(): Pick<Poll, "read" | "readDone"> {
  let readDone!: () => void;
  const read = new Promise<void>((resolve) => readDone = resolve);
  return { read, readDone };
}

/** How many of something each user may hold at once on this instance. */
export class UserSeats {
  #held = new Map<string, number>();

  constructor(readonly max: number) {}

  /** A seat for `userId`, or null when the user holds `max`; the returned function frees it (once). */
  take(userId: string): (() => void) | null {
    const held = this.#held.get(userId) ?? 0;
    if (held >= this.max) return null;
    this.#held.set(userId, held + 1);
    let freed = false;
    return () => {
      if (freed) return;
      freed = true;
      const now = (this.#held.get(userId) ?? 1) - 1;
      if (now > 0) this.#held.set(userId, now);
      else this.#held.delete(userId);
    };
  }
}

/** The shared polls and the per-user bounds of re-attached streams and waiting stops. */
export interface ReplyReaders {
  polls: SharedPolls;
  reattaching: UserSeats;
  stopping: UserSeats;
}
