/**
 * What each target's figure was before this round's changes: the quiet-machine run of
 * 2026-12-05 that issues #16 ("the heart, reshaped") and #18 ("cheap at scale") quote, shown
 * beside each verdict so that a run says what moved. Keyed by the verdict's label; a label not
 * here is a figure that is new, or that the issues did not quote ("—").
 */
export const BEFORE_LABEL = "before (2026-12-05, as the issues quote it)";

export const BEFORE: Record<string, string> = {
  "1. round trips, POST before the model": "4",
  "1. round trips, each read route": "1",
  "2. GET /api/sessions (20 sessions), req/s ÷ floor-list at concurrency 16": "0.49",
  "2. GET /api/sessions/{id} (50 messages), req/s ÷ floor at concurrency 16": "0.12",
  "3. first byte added by a POST, median": "3.79 ms",
  // against a direct baseline that allocated 64 KiB per read (bench/analysis.md)
  "4. relay of a 10,000-chunk reply, API ÷ direct": "1.07, 1.10, 1.30 (another baseline)",
  // the whole text rewritten at every progress write: a 16k reply wrote 446 KiB of WAL
  "4c. WAL per reply beyond its messages and 2× its text (1k, 4k, 16k; largest)": "≈ 400 KiB",
  "4c. 30 readers of one reply ÷ one reader (round trips, bytes from Postgres)": "26–28",
  "6. 500 concurrent slow streams, failures": "0",
  // resident memory as the issue quotes it; kept alive after a collection: 165–227 KiB
  "6. memory kept alive per open stream": "165–227 KiB (395–532 resident)",
  "9. start-up: CPU to import the function's modules, no code cache": "179 ms",
};
