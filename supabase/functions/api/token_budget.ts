/**
 * The prompt is the system prompt plus the newest turns that fit the model's
 * token budget, counted with a real tokenizer (o200k_base, the encoding of
 * the GPT-4o family), not characters / 4. Each message's count is stored
 * when it is written, with a running total, so the database reads only the
 * turns that fit.
 */
import { countTokens } from "gpt-tokenizer/encoding/o200k_base";
import type { PromptMessage } from "./model.ts";

/**
 * What the chat format adds per message around its content (role and
 * separators), as OpenAI counts it. The running total in the database
 * (migration add_running_token_totals) adds the same 4.
 */
const PER_MESSAGE = 4;

/** A message's own tokens, as stored with it. */
export function contentTokens(content: string): number {
  return countTokens(content);
}

/** A message's cost in a prompt: its tokens and the chat format's overhead. */
export function messageTokens(message: PromptMessage): number {
  return contentTokens(message.content) + PER_MESSAGE;
}

export const perMessageTokens = PER_MESSAGE;
