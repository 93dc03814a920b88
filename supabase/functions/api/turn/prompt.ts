/**
 * Building a turn's prompt: the model that serves it, and whether the new
 * message fits that model's budget beside the system prompt. What room is
 * left goes to the history, which the store reads newest first.
 */
import type { Config } from "../config.ts";
import { ApiError } from "../errors.ts";
import type { PromptMessage } from "../model.ts";
import { acceptedNames, resolveModel } from "../model_names.ts";
import {
  contentTokensUpTo,
  fewestContentTokens,
  messageTokens,
  perMessageTokens,
} from "../token_budget.ts";

export interface PromptPlan {
  /** the model that serves the request: what gets recorded and reported, whatever was asked for */
  model: string;
  system: PromptMessage;
  /** the new message's own tokens, stored with it */
  tokens: number;
  /** room for the history, in tokens: the budget less the system prompt and the new message */
  historyTokens: number;
}

/** The model and the room for a new message; 422 for a model not served, 413 for a message that cannot fit. */
export async function planPrompt(
  config: Config["model"],
  message: { content: string; model: string | undefined },
): Promise<PromptPlan> {
  const model = resolveModel(config, message.model);
  if (model === undefined) {
    throw new ApiError(422, [{
      loc: ["body", "model"],
      msg: `model not available; choose one of: ${acceptedNames(config).join(", ")}`,
      type: "enum",
    }]);
  }
  const system: PromptMessage = { role: "system", content: config.systemPrompt };
  const budget = config.historyBudget(model);
  const tooLong = (tokens: string) =>
    new ApiError(
      413,
      `The message is too long for ${model}: ${tokens} tokens with the system prompt, the budget is ${budget}`,
    );
  // a message that cannot fit is refused from its length alone, or once counting passes the
  // budget: counting a huge message whole is the costly part
  const fewest = fewestContentTokens(message.content) + 2 * perMessageTokens;
  if (fewest > budget) throw tooLong(`at least ${fewest}`);
  const overhead = await messageTokens(system) + perMessageTokens;
  const counted = await contentTokensUpTo(message.content, budget - overhead);
  const needed = overhead + counted.count;
  if (needed > budget) throw tooLong(counted.complete ? String(needed) : `at least ${needed}`);
  return { model, system, tokens: counted.count, historyTokens: budget - needed };
}

/** What the model is asked: the system prompt, then the stored history that fits, the new message last. */
export function promptOf(plan: PromptPlan, history: PromptMessage[]): PromptMessage[] {
  return [plan.system, ...history];
}
