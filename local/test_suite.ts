/**
 * `deno task test`: the whole suite, recording every response the API gives
 * (`tests/support/responses.ts`), then the check of those responses against
 * the OpenAPI document (`tests/contract/responses_check.ts`). Runs inside
 * `with_postgres.ts`, which provides the database server. Arguments go to the
 * suite's `deno test` (e.g. a filter); the check runs only after a whole-suite run.
 */
const dir = await Deno.makeTempDir({ prefix: "chat-api-responses-" });
const env = { API_RESPONSES_DIR: dir };
const run = async (args: string[]) =>
  (await new Deno.Command(Deno.execPath(), { args, env }).spawn().status).code;

let code = 1;
try {
  code = await run(["test", "-A", "--parallel", ...(Deno.args.length ? Deno.args : ["tests/"])]);
  if (code === 0 && Deno.args.length === 0) {
    code = await run(["test", "-A", "tests/contract/responses_check.ts"]);
  }
} finally {
  await Deno.remove(dir, { recursive: true });
}
Deno.exit(code);
