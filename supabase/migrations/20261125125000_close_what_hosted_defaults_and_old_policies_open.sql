-- What a hosted project's default privileges and two leftover policies
-- still opened.
--
-- Hosted Supabase grants all on every sequence created in public to anon and
-- authenticated (supabase/postgres' initial schema sets the default
-- privileges). messages.seq is an identity column: its sequence got
-- usage/select/update for both, so any signed-in user, or anyone with the
-- anon key, held nextval and setval on the conversation order. Only the
-- trigger that numbers messages (security definer) draws from it.
revoke all on sequence public.messages_seq_seq from anon, authenticated;

-- Sessions and messages are created only by chat_private's functions since
-- 20261125121000 revoked the inserts; these policies were left behind and
-- would let a user's inserts through again the moment any grant (a
-- dashboard "grant all", a default privilege) brought insert back.
drop policy "users can create sessions for themselves" on public.chat_sessions;
drop policy "users can add messages to their own sessions" on public.messages;

-- A title the API refuses (blank once trimmed) could still be written
-- directly: a rename through the Data API checked only its length. The
-- characters are those JavaScript's trim() removes, which the API uses.
-- Not valid: enforced from now on, without failing on a title stored before.
alter table public.chat_sessions
  add constraint chat_sessions_title_not_blank
  check (title ~ '[^ \t\n\v\f\r\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]')
  not valid;
