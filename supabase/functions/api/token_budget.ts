/**
 * The prompt is the system prompt plus the newest turns that fit the model's
 * token budget, counted with a real tokenizer (o200k_base, the encoding of
 * the GPT-4o family), not characters / 4.
 */
import { countTokens } from "gpt-tokenizer/encoding/o200k_base";
import type { PromptMessage } from "./model.ts";

/** What the chat format adds per message around its content (role and separators), as OpenAI counts it. */
const PER_MESSAGE = 4;

export function messageTokens(message: PromptMessage): number {
  return countTokens(message.content) + PER_MESSAGE;
}

/**
 * How many stored messages could fit at most: each costs at least the
 * per-message overhead, so the database never needs to return more.
 */
export function mostMessagesThatFit(budget: number): number {
  return Math.ceil(budget / PER_MESSAGE);
}

/**
 * The system prompt and the newest messages of `history` (oldest first, the
 * new user message last) whose tokens add up to at most `budget`. The newest
 * message is always kept: the caller checks it fits before storing it.
 */
export function fitToBudget(
  system: PromptMessage,
  history: PromptMessage[],
  budget: number,
): { messages: PromptMessage[]; tokens: number } {
  let tokens = messageTokens(system);
  const kept: PromptMessage[] = [];
  for (let i = history.length - 1; i >= 0; i--) {
    const cost = messageTokens(history[i]!);
    if (kept.length > 0 && tokens + cost > budget) break;
    tokens += cost;
    kept.push(history[i]!);
  }
  return { messages: [system, ...kept.reverse()], tokens };
}
