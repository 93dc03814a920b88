/** Small request helpers so tests read as what they do. */
import type { TestApi, TestUser } from "./api.ts";

export function send(
  api: TestApi,
  user: TestUser | undefined,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Response> {
  return Promise.resolve(api.app.request(path, {
    method,
    headers: {
      ...user?.auth,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
      ...headers,
    },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  }));
}

/** Sends a user message and reads the whole streamed reply. */
export async function chat(
  api: TestApi,
  user: TestUser,
  sessionId: string,
  content: string,
  opts: { id?: string; protocol?: string; model?: string; history?: unknown[] } = {},
): Promise<{ status: number; headers: Headers; body: string }> {
  const query = opts.protocol ? `?protocol=${opts.protocol}` : "";
  const response = await send(api, user, "POST", `/api/sessions/${sessionId}${query}`, {
    messages: [...(opts.history ?? []), {
      role: "user",
      content,
      ...(opts.id ? { id: opts.id } : {}),
    }],
    ...(opts.model ? { model: opts.model } : {}),
  });
  const body = await response.text();
  await api.idle();
  return { status: response.status, headers: response.headers, body };
}

export async function json(
  response: Response | Promise<Response>,
  // deno-lint-ignore no-explicit-any -- tests inspect arbitrary JSON bodies
): Promise<{ status: number; body: any }> {
  const r = await response;
  return { status: r.status, body: await r.json() };
}

/**
 * Reads a streamed body until what arrived contains `marker`, and returns what arrived; throws
 * if the stream ends first (rather than waiting forever).
 */
export async function readUntil(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  marker: string,
): Promise<string> {
  const decoder = new TextDecoder();
  let received = "";
  while (!received.includes(marker)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the stream ended before ${JSON.stringify(marker)}:\n${received}`);
    received += decoder.decode(value, { stream: true });
  }
  return received;
}

/** Messages of a session as stored, read past RLS. */
export async function stored(api: TestApi, sessionId: string) {
  return [
    ...await api.db.admin<
      {
        id: string;
        role: string;
        content: string;
        finish_reason: string | null;
        model: string | null;
        client_message_id: string | null;
      }[]
    >`select id, role, content, finish_reason, model, client_message_id from public.messages
    where chat_session_id = ${sessionId} order by seq`,
  ];
}
