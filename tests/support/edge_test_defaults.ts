/**
 * Loaded before each test file when the suite runs under the Edge Runtime's
 * Deno 2.1.4 (`deno task test:edge`): it gives `Deno.test` the defaults the
 * suite is written for. Deno 2.9 runs tests without the op and resource
 * sanitizers; 2.1.4 turns them on, and they fail any test that shares a
 * connection pool or a stand-in server with the next test of its file, as
 * these suites do on purpose (one app per file). A test's own options still
 * win. Deno has no flag for this, hence the wrapper.
 */
type Definition = Deno.TestDefinition;
type Fn = Definition["fn"];
type Options = Partial<Definition>;

const original = Deno.test;

function definition(args: unknown[]): Definition {
  let name: string | undefined;
  let fn: Fn | undefined;
  let options: Options = {};
  for (const arg of args) {
    if (typeof arg === "string") name = arg;
    else if (typeof arg === "function") fn = arg as Fn;
    else if (arg && typeof arg === "object") options = arg as Options;
  }
  fn ??= options.fn;
  if (!fn) throw new TypeError("Deno.test needs a test function");
  return {
    sanitizeOps: false,
    sanitizeResources: false,
    ...options,
    name: name ?? options.name ?? fn.name,
    fn,
  };
}

const withDefaults = (...args: unknown[]) => original(definition(args));
withDefaults.ignore = (...args: unknown[]) => original({ ...definition(args), ignore: true });
withDefaults.only = (...args: unknown[]) => original({ ...definition(args), only: true });

// typed read-only, but a writable property at run time
Object.defineProperty(Deno, "test", { value: withDefaults });
