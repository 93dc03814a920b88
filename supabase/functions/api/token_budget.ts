/**
 * The prompt is the system prompt plus the newest turns that fit the model's
 * token budget, counted with a real tokenizer (o200k_base, the encoding of
 * the GPT-4o family), not characters / 4. Each message's count is stored
 * when it is written, so the database picks the turns that fit.
 */
import { countTokens } from "gpt-tokenizer/encoding/o200k_base";
import type { PromptMessage } from "./model.ts";

/** What the chat format adds per message around its content (role and separators), as OpenAI counts it. */
const PER_MESSAGE = 4;

/** A message's own tokens, as stored with it. */
export function contentTokens(content: string): number {
  return countTokens(content);
}

/** A message's cost in a prompt: its tokens and the chat format's overhead. */
export function messageTokens(message: PromptMessage): number {
  return contentTokens(message.content) + PER_MESSAGE;
}

/**
 * How many stored messages could fit at most: each costs at least the
 * per-message overhead, so the database never needs to look further back.
 */
export function mostMessagesThatFit(budget: number): number {
  return Math.ceil(budget / PER_MESSAGE);
}

export const perMessageTokens = PER_MESSAGE;
