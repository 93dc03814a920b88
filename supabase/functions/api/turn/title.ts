/** Naming a session after its first exchange, in the background, unless the user has named it. */
import type { RouteDeps } from "../deps.ts";
import { queryAsCaller } from "../database.ts";
import { setGeneratedTitle } from "../store/sessions.ts";
import { generateTitle } from "../model.ts";
import type { UserClaims } from "../auth.ts";

/** Writes and stores a title in the background; resolves to it, or null if it could not or should not be stored. */
export function nameSession(
  deps: Pick<RouteDeps, "config" | "sql" | "model" | "log" | "waitUntil">,
  claims: UserClaims,
  sessionId: string,
  firstMessage: string,
): Promise<string | null> {
  const { config } = deps;
  const named = generateTitle(deps.model, {
    model: config.model.titles.model,
    firstMessage,
    timeoutMs: config.model.timeoutMs,
  }).then(async (title) => {
    // stored only while the title is still the default: a rename by the user always wins
    const { count } = await queryAsCaller(
      deps.sql,
      claims,
      (tx) => setGeneratedTitle(tx, sessionId, title),
    );
    return count > 0 ? title : null;
  }).catch((error) => {
    deps.log("title generation failed", error);
    return null;
  });
  deps.waitUntil(named);
  return named;
}
