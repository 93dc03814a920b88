/** Users and data created the way Supabase creates them, through the superuser connection. */
import type postgres from "postgres";
import type { Claims } from "../../supabase/functions/api/database.ts";

export async function signUp(
  admin: postgres.Sql,
  user: { email?: string | null; phone?: string | null; anonymous?: boolean } = {},
): Promise<string> {
  const email = user.email === undefined ? `${crypto.randomUUID()}@example.com` : user.email;
  const [row] = await admin<{ id: string }[]>`
    insert into auth.users (email, phone, is_anonymous)
    values (${email}, ${user.phone ?? null}, ${user.anonymous ?? false})
    returning id`;
  return row!.id;
}

export function userClaims(userId: string): Claims {
  return { sub: userId, role: "authenticated", aud: "authenticated" };
}

export const anonClaims: Claims = { role: "anon" };

export async function createSession(
  admin: postgres.Sql,
  userId: string,
  title = "A session",
): Promise<string> {
  const [row] = await admin<{ id: string }[]>`
    insert into public.chat_sessions (user_id, title) values (${userId}, ${title}) returning id`;
  return row!.id;
}

export async function addMessage(
  admin: postgres.Sql,
  sessionId: string,
  role: "user" | "assistant" | "system",
  content: string,
): Promise<string> {
  const [row] = await admin<{ id: string }[]>`
    insert into public.messages (chat_session_id, role, content)
    values (${sessionId}, ${role}, ${content}) returning id`;
  return row!.id;
}

/** The SQLSTATE of the error `work` fails with, or undefined when it succeeds. */
export async function sqlState(work: () => Promise<unknown>): Promise<string | undefined> {
  try {
    await work();
    return undefined;
  } catch (error) {
    if (error && typeof error === "object" && "code" in error) return String(error.code);
    throw error;
  }
}

/**
 * Adds many alternating user/assistant messages to a session at once, in
 * batches: `content(i)` writes the i-th (0-based), `tokens(content)` its
 * count (null: as a client that stores none).
 */
export async function addConversation(
  admin: postgres.Sql,
  sessionId: string,
  count: number,
  content: (i: number) => string,
  tokens: (content: string) => number | null = () => null,
): Promise<void> {
  const rows = Array.from({ length: count }, (_, i) => {
    const text = content(i);
    return {
      chat_session_id: sessionId,
      role: i % 2 ? "assistant" : "user",
      content: text,
      tokens: tokens(text),
    };
  });
  for (let i = 0; i < rows.length; i += 1000) {
    await admin`insert into public.messages ${admin(rows.slice(i, i + 1000))}`;
  }
}
