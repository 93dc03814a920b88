/** The edge function deploys unchanged: it stands alone with its own import map, and fails fast on bad config. */
import assert from "node:assert/strict";
import { parseConfig } from "../../supabase/functions/api/config.ts";

const functionDir = new URL("../../supabase/functions/api/", import.meta.url);

/**
 * A copy of the function's folder outside the repository, as the CLI mounts it: any import
 * reaching past the folder fails, and no root deno.json or lockfile is seen (so this also runs
 * under the Edge Runtime's Deno 2.1.4, which cannot read the root lockfile).
 */
async function functionCopy(): Promise<string> {
  const copy = await Deno.makeTempDir();
  await new Deno.Command("cp", { args: ["-r", `${functionDir.pathname}.`, copy] }).output();
  return copy;
}

Deno.test("the function type-checks alone, with only the import map supabase/config.toml names for it", async () => {
  const config = await Deno.readTextFile(new URL("../../supabase/config.toml", import.meta.url));
  assert.match(config, /\[functions\.api\][^[]*import_map = "\.\/functions\/api\/deno\.json"/);
  assert.match(config, /\[functions\.api\][^[]*verify_jwt = false/);
  const copy = await functionCopy();
  const check = await new Deno.Command(Deno.execPath(), {
    args: ["check", "--config", "deno.json", "index.ts"],
    cwd: copy,
    stdout: "piped",
    stderr: "piped",
  }).output();
  await Deno.remove(copy, { recursive: true });
  assert.equal(check.code, 0, new TextDecoder().decode(check.stderr));
});

Deno.test("every npm import of the function is pinned to an exact version", async () => {
  const { imports } = JSON.parse(await Deno.readTextFile(new URL("deno.json", functionDir)));
  for (const [name, target] of Object.entries(imports as Record<string, string>)) {
    assert.match(target, /^npm:\/?(@[\w.-]+\/)?[\w.-]+@\d+\.\d+\.\d+\/?$/, `${name} -> ${target}`);
  }
});

Deno.test("bad configuration fails at start with a message naming each variable", () => {
  assert.throws(() => parseConfig({}), (error: Error) => {
    for (const name of ["SUPABASE_DB_URL", "SUPABASE_JWKS", "OPENAI_API_KEY", "CURSOR_SECRET"]) {
      assert.match(error.message, new RegExp(name));
    }
    return true;
  });
  const valid = {
    SUPABASE_DB_URL: "postgres://postgres:postgres@127.0.0.1:5432/postgres",
    SUPABASE_JWKS: '{"keys":[{"kty":"EC"}]}',
    OPENAI_API_KEY: "sk-test",
    CURSOR_SECRET: "a-cursor-secret-of-at-least-32-chars",
  };
  assert.throws(() => parseConfig({ ...valid, SUPABASE_JWKS: "not json" }), /SUPABASE_JWKS/);
  assert.throws(() => parseConfig({ ...valid, STREAM_PROTOCOL: "xml" }), /STREAM_PROTOCOL/);
  assert.throws(() => parseConfig({ ...valid, MAX_BODY_BYTES: "ten" }), /MAX_BODY_BYTES/);
  // cursors have a secret of their own: none, or a guessable one, stops the start
  const { CURSOR_SECRET: _, ...withoutCursorSecret } = valid;
  assert.throws(() => parseConfig(withoutCursorSecret), /CURSOR_SECRET: required/);
  assert.throws(
    () => parseConfig({ ...valid, CURSOR_SECRET: "short" }),
    /CURSOR_SECRET: too short/,
  );
  const config = parseConfig({ ...valid, OPENAI_MODELS: "gpt-4o, o3-mini" });
  assert.deepEqual([...config.model.allowedModels], ["gpt-4o-mini", "gpt-4o", "o3-mini"]);
  assert.equal(config.maxBodyBytes, 4 * 1024 * 1024);
  assert.equal(config.streamProtocol, "data");
  assert.equal(config.model.strictModels, false);
  assert.throws(
    () => parseConfig({ ...valid, OPENAI_MODEL_ALIASES: "gpt-3.5-turbo=gpt-4o" }),
    /OPENAI_MODEL_ALIASES: gpt-3.5-turbo points at gpt-4o, which is neither/,
  );
  assert.throws(() => parseConfig({ ...valid, OPENAI_MODEL_ALIASES: "gpt-3.5-turbo" }), /ALIASES/);
  assert.throws(
    () => parseConfig({ ...valid, OPENAI_MODEL_ALIASES: "gpt-4o-mini=gpt-4o-mini" }),
    /OPENAI_MODEL_ALIASES: gpt-4o-mini is a listed model/,
  );
  assert.throws(() => parseConfig({ ...valid, OPENAI_MODELS_STRICT: "yes" }), /MODELS_STRICT/);
  assert.deepEqual(config.corsOrigins, ["*"]);
});

Deno.test("the function refuses to start without its configuration, naming what is missing", async () => {
  const copy = await functionCopy();
  const run = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", "--allow-env", "index.ts"],
    cwd: copy,
    clearEnv: true,
    env: {
      PATH: Deno.env.get("PATH") ?? "",
      HOME: Deno.env.get("HOME") ?? "",
      DENO_DIR: Deno.env.get("DENO_DIR") ?? "",
      DENO_TLS_CA_STORE: Deno.env.get("DENO_TLS_CA_STORE") ?? "",
    },
    stdout: "piped",
    stderr: "piped",
  }).output();
  await Deno.remove(copy, { recursive: true });
  assert.notEqual(run.code, 0);
  assert.match(new TextDecoder().decode(run.stderr), /SUPABASE_DB_URL/);
});
