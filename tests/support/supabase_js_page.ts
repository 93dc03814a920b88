/// <reference lib="dom" />
/**
 * A page of a Supabase app calling the API as such apps do: `supabase.functions.invoke`
 * of the real `@supabase/supabase-js`, from another origin, through the project's
 * functions URL (`/functions/v1/api/*`, a local stand-in of the gateway). The client
 * turns on the two options whose headers a preflight must allow: `region` (x-region)
 * and `tracePropagation` (traceparent, tracestate, baggage), with the OpenTelemetry API
 * and a propagator writing W3C trace context, as a traced app has. Bundled for the
 * browser by tests/clients/supabase_js_browser.test.ts.
 */
import "@supabase/supabase-js/tracing";
import { propagation } from "@opentelemetry/api";
import { createClient } from "@supabase/supabase-js";

const params = new URL(location.href).searchParams;

// An active, sampled trace as a tracing SDK's W3C propagator reports it.
propagation.setGlobalPropagator({
  inject(_context, carrier, setter) {
    setter.set(carrier, "traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    setter.set(carrier, "tracestate", "vendor=opaque");
    setter.set(carrier, "baggage", "app=chat");
  },
  extract: (context) => context,
  fields: () => ["traceparent", "tracestate", "baggage"],
});

const supabase = createClient(params.get("project")!, "sb_publishable_test", {
  tracePropagation: { enabled: true },
  accessToken: () => Promise.resolve(params.get("token")),
});

const show = (name: string, value: unknown) => {
  document.body.dataset[name] = typeof value === "string" ? value : JSON.stringify(value);
};

document.getElementById("run")!.addEventListener("click", async () => {
  const session = params.get("session")!;
  try {
    // a JSON route: invoke parses the answer
    const listed = await supabase.functions.invoke("api/sessions", {
      method: "GET",
      region: "us-east-1" as never,
    });
    if (listed.error) throw listed.error;
    show("listed", listed.data);
    // a send, streamed: Accept: text/event-stream makes invoke hand back the Response
    const sent = await supabase.functions.invoke(`api/sessions/${session}`, {
      method: "POST",
      body: { messages: [{ role: "user", content: params.get("text") }] },
      headers: { accept: "text/event-stream" },
      region: "us-east-1" as never,
    });
    if (sent.error) throw sent.error;
    const reader = (sent.data as Response).body!.pipeThrough(new TextDecoderStream()).getReader();
    let events = "";
    for (let next = await reader.read(); !next.done; next = await reader.read()) {
      events += next.value;
    }
    show("events", events);
    // an error answer: a FunctionsHttpError whose context is our Response
    const missing = await supabase.functions.invoke(`api/sessions/${crypto.randomUUID()}`, {
      method: "GET",
    });
    show("refused", await (missing.error as { context: Response }).context.json());
  } catch (error) {
    show("error", String(error));
  }
  show("done", "yes");
});
