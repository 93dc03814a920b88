/** Values of an export file as they are stored: times, titles, text. */
import { z } from "zod";
import { storable } from "../storable_text.ts";

/** An id in the file: a conversation's (its key for idempotent imports) or a node's. */
export const Id = z.string().min(1, "must not be empty").max(200, "must be at most 200 characters")
  .refine((s) => !s.includes("\u0000") && s.isWellFormed(), "must be plain text");

/** The latest time a timestamp may name: the end of year 9999, as far as Postgres and Date agree. */
const LATEST = 253_402_300_799;

/**
 * Seconds since the epoch from an export's timestamp, or null for none or one out of range.
 * Exports write seconds (ChatGPT with a fraction); a value too large to be seconds is read as
 * milliseconds, then microseconds, then nanoseconds (some tools write those).
 */
export function epochSeconds(value: number | null | undefined): number | null {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) return null;
  let seconds = value;
  while (seconds > LATEST) seconds /= 1000;
  return seconds;
}

/**
 * A title as stored: trimmed, at most 200 characters (code points, as Postgres counts them), or
 * null when blank (the default title is given instead).
 */
export function titleOf(title: string | null | undefined): string | null {
  const trimmed = storable(title ?? "").trim();
  return trimmed ? [...trimmed].slice(0, 200).join("").trim() : null;
}

/** Text as stored: what Postgres cannot hold replaced, surrounding whitespace trimmed; null when empty. */
export function textOf(text: string): string | null {
  return storable(text).trim() || null;
}

/** A model's name as stored: 1-200 characters, or none. */
export function modelOf(model: string | null | undefined): string | null {
  const name = storable(model ?? "").trim();
  return name && name.length <= 200 ? name : null;
}
