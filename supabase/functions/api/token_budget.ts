/**
 * The prompt is the system prompt plus the newest turns that fit the model's
 * token budget, counted with a real tokenizer (o200k_base, the encoding of
 * the GPT-4o family), not characters / 4. Each message's count is stored
 * when it is written, with a running total, so the database reads only the
 * turns that fit.
 */
import type { PromptMessage } from "./model.ts";
import { countTokens, countTokensUpTo, fewestTokens } from "./tokenizer/o200k.ts";

/**
 * What the chat format adds per message around its content (role and
 * separators), as OpenAI counts it. The running total in the database (the
 * trigger function `count_tokens_before`, in the migration
 * create_chat_sessions_and_messages) adds the same 4.
 */
const PER_MESSAGE = 4;

/** A message's own tokens, as stored with it. Yields to other requests while it counts. */
export function contentTokens(content: string): Promise<number> {
  return countTokens(content);
}

/**
 * A new message's own tokens, counted only as far as `limit`: beyond it (`complete` false) the
 * count is a lower bound, enough to refuse the message without the cost of counting all of it.
 */
export function contentTokensUpTo(
  content: string,
  limit: number,
): Promise<{ count: number; complete: boolean }> {
  return countTokensUpTo(content, limit);
}

/** A message's cost in a prompt: its tokens and the chat format's overhead. */
export async function messageTokens(message: PromptMessage): Promise<number> {
  return await contentTokens(message.content) + PER_MESSAGE;
}

/**
 * The fewest tokens a content can count, from its length alone: no token is longer than
 * MAX_TOKEN_BYTES. Lets a message that cannot fit be refused without tokenizing it.
 */
export function fewestContentTokens(content: string): number {
  return fewestTokens(content);
}

export const perMessageTokens = PER_MESSAGE;
