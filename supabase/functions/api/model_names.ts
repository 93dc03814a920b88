/**
 * Which model serves a request that names one. Clients name models the
 * operator may not run: the original frontend sends `gpt-3.5-turbo-0125` or
 * `gpt-4o-mini` whatever the deployment uses. By default such a name is
 * served by the default model (never by a model the operator did not list);
 * with `OPENAI_MODELS_STRICT=true` only listed names and aliases are accepted.
 */

export interface ModelNames {
  /** OPENAI_MODEL: serves requests that name no model, or (not strict) an unlisted one */
  defaultModel: string;
  /** OPENAI_MODEL and OPENAI_MODELS: served as named */
  allowedModels: ReadonlySet<string>;
  /** OPENAI_MODEL_ALIASES: a name a client sends, and the listed model that serves it */
  modelAliases: ReadonlyMap<string, string>;
  /** OPENAI_MODELS_STRICT: an unlisted name is refused rather than served by the default */
  strictModels: boolean;
}

/** The model that serves the request, or undefined when a strict list refuses the name. */
export function resolveModel(names: ModelNames, requested: string | undefined): string | undefined {
  if (requested === undefined) return names.defaultModel;
  if (names.allowedModels.has(requested)) return requested;
  const alias = names.modelAliases.get(requested);
  if (alias !== undefined) return alias;
  return names.strictModels ? undefined : names.defaultModel;
}

/** Every name a request may send under a strict list, for the 422 that refuses another. */
export function acceptedNames(names: ModelNames): string[] {
  return [...names.allowedModels, ...names.modelAliases.keys()];
}
