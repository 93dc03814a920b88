/**
 * The configuration is one schema: every bad value, a variable's own or a
 * rule between variables, is reported the same way (`VARIABLE: message`,
 * one line each), all of them in one ConfigError.
 */
import assert from "node:assert/strict";
import { ConfigError, parseConfig } from "../../supabase/functions/api/config.ts";

const valid = {
  SUPABASE_DB_URL: "postgres://postgres:postgres@127.0.0.1:5432/postgres",
  SUPABASE_JWKS: '{"keys":[{"kty":"EC"}]}',
  OPENAI_API_KEY: "sk-test",
  CURSOR_SECRET: "a-cursor-secret-of-at-least-32-chars",
};

/** The problems a configuration is refused for, one `[variable, message]` per line. */
function problems(env: Record<string, string | undefined>): [string, string][] {
  try {
    parseConfig(env);
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    const [title, ...lines] = error.message.split("\n");
    assert.equal(title, "invalid configuration:");
    return lines.map((line) => {
      const match = /^ {2}([A-Z][A-Z0-9_]*): (.+)$/.exec(line);
      assert.ok(match, `not "VARIABLE: message": ${JSON.stringify(line)}`);
      return [match[1]!, match[2]!];
    });
  }
  assert.fail("the configuration was accepted");
}

const variables = (env: Record<string, string | undefined>) => problems(env).map(([name]) => name);

Deno.test("configuration: every problem at once, each a line naming its variable", () => {
  assert.deepEqual(
    variables({
      ...valid,
      SUPABASE_DB_URL: "https://example.com",
      DB_POOL_MAX: "0",
      STREAM_PROTOCOL: "xml",
      OPENAI_MODELS_STRICT: "yes",
      HISTORY_TOKEN_BUDGETS: "gpt-4o=many",
      REPLY_MAX_SECONDS: "280",
      OPENAI_MODEL_ALIASES: "fast=o3",
    }),
    [
      "SUPABASE_DB_URL",
      "DB_POOL_MAX",
      "OPENAI_MODELS_STRICT",
      "HISTORY_TOKEN_BUDGETS",
      "STREAM_PROTOCOL",
      // the rules between variables too, in the same run
      "QUOTA_REPLY_SLOT_SECONDS",
      "OPENAI_MODEL_ALIASES",
    ],
  );
});

Deno.test("configuration: QUOTA_REPLY_SLOT_SECONDS must pass REPLY_MAX_SECONDS + 30, as set or by default", () => {
  const slot = [
    "QUOTA_REPLY_SLOT_SECONDS",
    "must be more than REPLY_MAX_SECONDS + 30 (the longest a reply and its save may take)",
  ];
  assert.deepEqual(problems({ ...valid, REPLY_MAX_SECONDS: "270" }), [slot]);
  assert.deepEqual(problems({ ...valid, QUOTA_REPLY_SLOT_SECONDS: "150" }), [slot]);
  assert.equal(parseConfig({ ...valid, REPLY_MAX_SECONDS: "269" }).quotas.replySlotSeconds, 300);
  // a REPLY_MAX_SECONDS that is no number is reported as such, not also as a broken rule
  assert.deepEqual(variables({ ...valid, REPLY_MAX_SECONDS: "soon" }), ["REPLY_MAX_SECONDS"]);
});

Deno.test("configuration: each alias is a name=model pair naming a listed model, every bad one reported", () => {
  const listed = { ...valid, OPENAI_MODELS: "gpt-4o" };
  assert.deepEqual(
    problems({ ...listed, OPENAI_MODEL_ALIASES: "fast=o3, gpt-4o=gpt-4o-mini, cheap=gpt-4o-mini" }),
    [
      [
        "OPENAI_MODEL_ALIASES",
        "fast points at o3, which is neither OPENAI_MODEL nor in OPENAI_MODELS",
      ],
      ["OPENAI_MODEL_ALIASES", "gpt-4o is a listed model; a request naming it gets it as named"],
    ],
  );
  assert.deepEqual(problems({ ...listed, OPENAI_MODEL_ALIASES: "fast, =gpt-4o, a=b=c" }), [
    ["OPENAI_MODEL_ALIASES", 'expected name=model, got "fast"'],
    ["OPENAI_MODEL_ALIASES", 'expected name=model, got "=gpt-4o"'],
    ["OPENAI_MODEL_ALIASES", 'expected name=model, got "a=b=c"'],
  ]);
  // the rule reads valid pairs only: a malformed list is reported for its form alone
  assert.deepEqual(problems({ ...listed, OPENAI_MODEL_ALIASES: "fast, cheap=o3" }), [
    ["OPENAI_MODEL_ALIASES", 'expected name=model, got "fast"'],
  ]);
  const config = parseConfig({
    ...listed,
    OPENAI_MODEL_ALIASES: " fast = gpt-4o ,cheap=gpt-4o-mini",
  });
  assert.deepEqual([...config.model.modelAliases], [["fast", "gpt-4o"], ["cheap", "gpt-4o-mini"]]);
});

Deno.test("configuration: token budgets per model are model=tokens pairs", () => {
  const config = parseConfig({ ...valid, HISTORY_TOKEN_BUDGETS: "gpt-4o=8000, o3-mini = 2000" });
  assert.equal(config.model.historyBudget("gpt-4o"), 8000);
  assert.equal(config.model.historyBudget("o3-mini"), 2000);
  assert.equal(config.model.historyBudget("gpt-4o-mini"), 16_000);
  assert.deepEqual(problems({ ...valid, HISTORY_TOKEN_BUDGETS: "gpt-4o" }), [
    ["HISTORY_TOKEN_BUDGETS", 'expected model=tokens, got "gpt-4o"'],
  ]);
});

Deno.test("configuration: signing keys come from SUPABASE_JWKS or SUPABASE_URL, reported once when neither gives any", () => {
  const { SUPABASE_JWKS: _, ...withoutKeys } = valid;
  const none = [
    "SUPABASE_JWKS",
    "no signing keys to verify tokens with, and no SUPABASE_URL to fetch them from: " +
    "set SUPABASE_JWKS to the project's JWKS, or SUPABASE_URL (Supabase sets both)",
  ];
  assert.deepEqual(problems(withoutKeys), [none]);
  assert.deepEqual(problems({ ...valid, SUPABASE_JWKS: '{"keys":[{"kty":"nope"}]}' }), [none]);
  // a JWKS that is no key set is reported as such, not also as missing keys
  assert.deepEqual(problems({ ...valid, SUPABASE_JWKS: "not json" }), [
    ["SUPABASE_JWKS", 'expected a JSON Web Key Set, {"keys": [...]}'],
  ]);
  assert.deepEqual(variables({ ...withoutKeys, SUPABASE_URL: "not a url" }), ["SUPABASE_URL"]);
  const url = "https://abcdefghijklmnop.supabase.co";
  assert.equal(parseConfig({ ...withoutKeys, SUPABASE_URL: url }).auth.url, url);
});

Deno.test("configuration: SUPABASE_PUBLISHABLE_KEYS, set by the platform, is read leniently", () => {
  const project = { ...valid, SUPABASE_URL: "https://abcdefghijklmnop.supabase.co" };
  const apiKey = (keys: Record<string, string>) => parseConfig({ ...project, ...keys }).auth.apiKey;
  assert.equal(
    apiKey({ SUPABASE_PUBLISHABLE_KEYS: '{"default":"sb_publishable_1"}' }),
    "sb_publishable_1",
  );
  assert.equal(
    apiKey({ SUPABASE_PUBLISHABLE_KEYS: '{"web":"sb_publishable_2"}' }),
    "sb_publishable_2",
  );
  // a shape it does not know falls back to the anon key rather than stopping the function
  for (const keys of ["sb_publishable_3", "[]", "{}", '{"default":7}']) {
    assert.equal(apiKey({ SUPABASE_PUBLISHABLE_KEYS: keys, SUPABASE_ANON_KEY: "anon" }), "anon");
  }
  assert.equal(apiKey({}), undefined);
});
