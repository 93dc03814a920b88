/** What the caller's replies used, per day and model, summed by Postgres. */
import type { z } from "@hono/zod-openapi";
import type { Tx } from "../database.ts";
import type * as schemas from "../schemas.ts";

/** A day's use of one model as the API answers it. */
export type UsageRow = z.output<typeof schemas.UsageRow>;

/**
 * The caller's replies and tokens per UTC day and model, from one day to
 * another (both included). Sums are bigint (a day's tokens pass 2^31 long
 * before anything else does) and leave as JSON numbers: exact up to 2^53,
 * which a day's tokens of one user cannot reach (4 million replies at the
 * largest count a reply can record).
 */
export function usageByDay(tx: Tx, from: string, to: string) {
  // through the caller's sessions, so the work grows with their data, not everyone's
  return tx<UsageCounts[]>`
    select to_char(m.created_at at time zone 'utc', 'YYYY-MM-DD') as day, m.model,
           count(*) as replies,
           coalesce(sum(m.prompt_tokens), 0)::bigint as prompt_tokens,
           coalesce(sum(m.completion_tokens), 0)::bigint as completion_tokens
    from public.chat_sessions s
    join public.messages m on m.chat_session_id = s.id
    -- replies written here: an imported reply cost nothing here (and has no counts)
    where m.role = 'assistant' and m.imported_from is null
      and m.created_at >= ${from}::date and m.created_at < ${to}::date + 1
    group by 1, 2
    order by 1, 2`;
}

/** bigint counts, as the driver returns them (strings) */
type UsageCounts = {
  [K in keyof UsageRow]: UsageRow[K] extends number ? string : UsageRow[K];
};

export function usageRow(row: UsageCounts): UsageRow {
  return {
    ...row,
    replies: Number(row.replies),
    prompt_tokens: Number(row.prompt_tokens),
    completion_tokens: Number(row.completion_tokens),
  };
}
