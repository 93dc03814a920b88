/**
 * Moving a session's current branch by hand: switching to another branch and
 * deleting one. Both are chat_private's (the tree is the server's to write),
 * under the per-user lock a send takes, so they and the sends of other
 * devices are decided one after the other. Returned unsent, for
 * `queryAsCaller` to send in one round trip.
 */
import type { Tx } from "../database.ts";

export interface Moved {
  outcome: "switched" | "deleted" | "session_not_found" | "message_not_found";
  /** the current leaf afterwards (null: the session has no messages left) */
  current_message_id: string | null;
  /** a deletion: how many messages went */
  deleted?: number;
}

/** Makes the branch through `messageId`, to its newest leaf, current. */
export function switchBranch(tx: Tx, sessionId: string, messageId: string) {
  return tx<Moved[]>`select * from chat_private.switch_branch(${sessionId}, ${messageId})`;
}

/** Deletes `messageId` and its subtree; the current leaf moves to what remains when it was in it. */
export function deleteBranch(tx: Tx, sessionId: string, messageId: string) {
  return tx<Moved[]>`select * from chat_private.delete_branch(${sessionId}, ${messageId})`;
}
