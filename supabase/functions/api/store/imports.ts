/**
 * Storing an import: one call of `chat_private.import_conversations`, one transaction (sent
 * with its begin, claims and commit by `queryAsCaller`), so an import is stored whole or not
 * at all.
 */
import type { ImportFormat } from "../import/formats.ts";
import type { ImportConversation } from "../import/tree.ts";
import type postgres from "postgres";
import type { Tx } from "../database.ts";

/** A conversation of the file as the import left it. */
export interface ImportedSession {
  source_id: string;
  id: string;
  title: string;
  status: "imported" | "already_imported";
  messages: number;
}

export interface ImportOutcome {
  outcome: "imported" | "over_daily_quota" | "over_quota_alone";
  retry_after: number | null;
  sessions: ImportedSession[] | null;
}

export function importConversations(
  tx: Tx,
  format: ImportFormat,
  conversations: ImportConversation[],
  messagesPerDay: number,
) {
  // one parameter for the whole file: a statement's parameters are limited to 65,535
  return tx<ImportOutcome[]>`
    select * from chat_private.import_conversations(
      p_source => ${format},
      p_conversations => ${tx.json(conversations as unknown as postgres.JSONValue)},
      p_messages_per_day => ${messagesPerDay})`;
}
