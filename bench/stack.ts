/**
 * The stack every figure measures against, set up once per run: a fresh database with the
 * migrations, a signing key, the stand-in model in its own process, a user with some data,
 * and the API and baseline processes (started on first use).
 */
import { freePort } from "../local/database.ts";
import { createSigningKey, jwksOf, signAccessToken } from "../local/signing_keys.ts";
import { createTestDatabase } from "../tests/support/database.ts";
import { signUp } from "../tests/support/fixtures.ts";
import type { BaselineKind, Bench, Started } from "./figure.ts";
import { type Running, startDenoServer } from "./processes.ts";

/** The stand-in model's models the figures ask for (see local/stand_in_model.ts). */
const MODELS = [
  "chunks-1",
  "chunks-20",
  "chunks-10000",
  "slow-200-50",
  "slow-2-50",
  "slow-80-250-5",
  // reply-cost: about 1k, 4k and 16k characters over about 5 s
  "words-200-25",
  "words-800-6",
  "words-3200-2",
];
const API_ARGS = ["--allow-net", "--allow-env", "supabase/functions/api/index.ts"];

export async function startBench(
  opts: { repeats: number; seconds: number; log: (line: string) => void },
): Promise<Bench & { stop(): Promise<void> }> {
  const running: Running[] = [];
  const stop = async () => {
    for (const process of running.splice(0)) await process.stop();
  };
  try {
    const db = await createTestDatabase();
    const key = await createSigningKey();
    const modelPort = freePort();
    running.push(
      await startDenoServer(["-A", "local/stand_in_model.ts", String(modelPort)], {
        port: modelPort,
        probe: "/v1/models",
      }),
    );
    const modelUrl = `http://127.0.0.1:${modelPort}/v1`;

    const owner = await signUp(db.admin, { email: "bench@example.com" });
    const token = await signAccessToken(key, { id: owner }, { expiresInSeconds: 24 * 3600 });
    const sessions = (await db.admin<{ id: string }[]>`
      insert into public.chat_sessions (user_id, title)
      select ${owner}, 'Session ' || g from generate_series(1, 20) g returning id`).map((r) =>
      r.id
    );
    const historySession = sessions[0]!;
    await db.admin`
      insert into public.messages (chat_session_id, role, content)
      select ${historySession}, case when g % 2 = 1 then 'user' else 'assistant' end,
             'Message number ' || g || ' ' || repeat('lorem ipsum ', 20)
      from generate_series(1, 50) g`;

    const apiEnv = (databaseUrl: string, poolMax: number): Record<string, string> => ({
      SUPABASE_DB_URL: databaseUrl,
      SUPABASE_JWKS: JSON.stringify(jwksOf(key)),
      OPENAI_API_KEY: "bench",
      CURSOR_SECRET: "bench-cursor-secret-of-at-least-32-characters",
      OPENAI_BASE_URL: modelUrl,
      OPENAI_MODEL: "chunks-20",
      OPENAI_MODELS: MODELS.join(","),
      OPENAI_MAX_RETRIES: "0",
      DB_POOL_MAX: String(poolMax),
      // measured: the reply's path; a title request per new session would run beside it
      TITLE_GENERATION: "false",
      // one user runs 500 streams at once here
      QUOTA_MESSAGES_PER_DAY: "0",
      QUOTA_CONCURRENT_STREAMS: "0",
    });
    /** every process a figure starts is also stopped at the end, in case the figure fails */
    const tracked = async (start: Promise<Started>) => {
      const process = await start;
      running.push(process);
      return process;
    };
    const startApi = (
      o: {
        databaseUrl?: string;
        poolMax?: number;
        env?: Record<string, string>;
        args?: string[];
        cwd?: string;
      } = {},
    ) =>
      tracked(startDenoServer(o.args ?? API_ARGS, {
        env: { ...apiEnv(o.databaseUrl ?? db.url, o.poolMax ?? 5), ...o.env },
        probe: "/api/health",
        ...(o.cwd ? { cwd: o.cwd } : {}),
      }));
    const baselineArgs: Record<BaselineKind, string[]> = {
      hello: [],
      floor: [db.url],
      "floor-list": [db.url, owner],
      "floor-history": [db.url, historySession],
    };
    const startBaseline = (kind: BaselineKind) =>
      tracked(
        startDenoServer(["-A", "bench/baselines.ts", kind, "{port}", ...baselineArgs[kind]], {
          probe: "/",
        }),
      );
    const shared = new Map<string, Promise<Running>>();
    const once = (name: string, start: () => Promise<Running>) => {
      if (!shared.has(name)) shared.set(name, start());
      return shared.get(name)!;
    };

    return {
      repeats: opts.repeats,
      seconds: opts.seconds,
      log: opts.log,
      db,
      key,
      modelUrl,
      owner,
      auth: { authorization: `Bearer ${token}` },
      historySession,
      async signUp() {
        const id = await signUp(db.admin);
        return { id, auth: { authorization: `Bearer ${await signAccessToken(key, { id })}` } };
      },
      api: () => once("api", () => startApi()),
      baseline: (kind) => once(kind, () => startBaseline(kind)),
      startApi,
      startBaseline,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
