/**
 * Whether the signer a token claims is live: its user exists and, when it names
 * a session, that session is open. Asked before the project's Auth server is
 * asked about an HS256 token (`auth_verify.ts`): a forged token can copy every
 * claim but cannot know a real user's open session, so a flood of them is
 * refused here, by the database, and never reaches Auth.
 *
 * The checks of concurrent requests share one round trip: while one query runs,
 * the next ones wait and go together in the next, so a flood costs the database
 * one connection at most, however many tokens it sends. Hand-written: a batch of
 * a dozen lines, where a dataloader package would be a dependency for one use.
 */
import { queryAsCaller, type Sql } from "./database.ts";

interface Asked {
  user: string;
  session: string | null;
  answer: PromiseWithResolvers<boolean>;
}

/** The most signers asked about in one query. */
const BATCH = 500;

export function createSignerCheck(sql: Sql) {
  let waiting: Asked[] = [];
  let running = false;

  const run = async () => {
    running = true;
    while (waiting.length) {
      const batch = waiting.slice(0, BATCH);
      waiting = waiting.slice(BATCH);
      try {
        // as `anon`: nobody is signed in yet; the function is granted to anon for this alone
        const rows = await queryAsCaller(sql, { role: "anon" }, (tx) =>
          tx<{ live: boolean }[]>`
            select live from chat_private.live_signers(
              ${batch.map((a) => a.user)}::uuid[], ${batch.map((a) => a.session)}::uuid[])`);
        batch.forEach((asked, i) => asked.answer.resolve(rows[i]?.live === true));
      } catch (error) {
        for (const asked of batch) asked.answer.reject(error);
      }
    }
    running = false;
  };

  return (user: string, session: string | null): Promise<boolean> => {
    const answer = Promise.withResolvers<boolean>();
    waiting.push({ user, session, answer });
    if (!running) void run();
    return answer.promise;
  };
}
