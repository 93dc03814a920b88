/** POST /api/imports: a user's history from another chat app, stored whole or not at all. */
import { Router } from "../contract.ts";
import { queryAsCaller } from "../database.ts";
import type { RouteDeps } from "../deps.ts";
import { ApiError } from "../errors.ts";
import { importConversations } from "../store/imports.ts";
import { contentTokens } from "../token_budget.ts";
import { importRoute } from "./imports_contract.ts";

export function importRoutes({ sql, config, signedIn }: RouteDeps) {
  return new Router(signedIn).add(importRoute, async (c) => {
    // the readers of export files (their schemas, built as their modules load) are loaded on a
    // worker's first import rather than at start-up, which every worker pays for
    const { readExportFile } = await import("../import/file.ts");
    const file = readExportFile(c.req.valid("json"), c.req.valid("query").format, config.imports);
    // every message's count is stored with it, so a prompt's budget reads imported history as
    // it reads any other (the file's size is bounded: IMPORT_MAX_CHARACTERS)
    for (const conversation of file.conversations) {
      for (const message of conversation.messages) {
        message.tokens = await contentTokens(message.content);
      }
    }
    const perDay = config.quotas.importedMessagesPerDay;
    const [row] = await queryAsCaller(
      sql,
      c.var.claims,
      (tx) => importConversations(tx, file.format, file.conversations, perDay),
    );
    const { outcome, retry_after, sessions } = row!;
    if (outcome === "over_quota_alone") {
      throw new ApiError(
        413,
        `This import adds more messages than the daily import quota (${perDay} messages per ` +
          "24 hours) allows at once. Import it in parts (docs/api.md, Import)",
      );
    }
    if (outcome === "over_daily_quota") {
      throw new ApiError(429, `Daily import limit reached: ${perDay} messages per 24 hours`, {
        "retry-after": String(retry_after ?? 1),
      });
    }
    return c.json({ format: file.format, sessions: sessions! }, 200);
  }).app;
}
