-- Chat sessions and their messages: the conversation history, owned through RLS.
--
-- Supabase's Data API (PostgREST, GraphQL) serves the public schema to every
-- signed-in user as role authenticated, so what that role may do here, any
-- user may do with one supabase-js call. The grants below are that contract:
-- a user may read their own sessions and messages, rename their own sessions
-- and delete them, and nothing else. Sessions and messages are written by
-- chat_private's functions (next migration): who wrote a message, what it
-- costs in tokens, its usage, model and ending are facts the server vouches
-- for. Ownership is decided by Postgres from the caller's verified claims,
-- never by application code.
--
-- A hosted project's default privileges grant all on everything created in
-- public to anon and authenticated (supabase/postgres' initial schema): each
-- table, sequence and function below revokes that before granting what it
-- means to.

-- ---------------------------------------------------------------------------
-- Sessions

create table public.chat_sessions (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null default auth.uid() references public.profiles (id) on delete cascade,
  title text not null
    default 'New Chat - ' || to_char(now() at time zone 'utc', 'YYYY-MM-DD HH24:MI:SS')
    check (char_length(title) between 1 and 200),
  created_at timestamptz not null default now(),
  -- last conversation activity: moved by a trigger whenever a message is added
  updated_at timestamptz not null default now(),
  -- who wrote the title, so a generated title never overwrites one the user
  -- chose, even when the rename lands first
  title_set_by text not null default 'default'
    check (title_set_by in ('default', 'model', 'user')),
  -- what search matches in a title; 'simple' does not stem, so it treats
  -- every language alike (conversations are multilingual)
  search tsvector generated always as (to_tsvector('simple', title)) stored,
  -- a title the API refuses (blank once trimmed) cannot be written directly
  -- either; the characters are those JavaScript's trim() removes
  constraint chat_sessions_title_not_blank
    check (title ~ '[^ \t\n\v\f\r\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]')
);

-- serves a user's session list, most recently active first, ties by id; and
-- every policy below, an index range on user_id
create index chat_sessions_user_id_updated_at_id_idx
  on public.chat_sessions (user_id, updated_at desc, id desc);

alter table public.chat_sessions enable row level security;

create policy "users can read their own sessions"
  on public.chat_sessions for select to authenticated
  using (user_id = (select auth.uid()));

create policy "users can rename their own sessions"
  on public.chat_sessions for update to authenticated
  using (user_id = (select auth.uid()))
  with check (user_id = (select auth.uid()));

create policy "users can delete their own sessions"
  on public.chat_sessions for delete to authenticated
  using (user_id = (select auth.uid()));

-- no insert policy: sessions are created by chat_private.send_message, so a
-- grant added by mistake (a dashboard "grant all") still admits no insert
revoke all on table public.chat_sessions from anon, authenticated;
grant select, delete on table public.chat_sessions to authenticated;
-- timestamps belong to the database; only the title can change afterwards
grant update (title, title_set_by) on table public.chat_sessions to authenticated;
grant all on table public.chat_sessions to service_role;

-- ---------------------------------------------------------------------------
-- Messages

create table public.messages (
  id uuid primary key default gen_random_uuid(),
  chat_session_id uuid not null references public.chat_sessions (id) on delete cascade,
  -- conversation order that stays stable when timestamps tie; numbered by the
  -- trigger below, under the session's lock
  seq bigint generated always as identity,
  role text not null check (role in ('user', 'assistant', 'system')),
  -- Postgres text cannot hold a NUL byte, so no check is needed for that
  content text not null,
  -- the client's own message id (AI SDK ids are not UUIDs), for idempotent retries
  client_message_id text check (char_length(client_message_id) between 1 and 200),
  -- the user message an assistant reply answers: one answer per message, so a
  -- retry after an unfinished reply replaces it instead of adding another
  reply_to uuid references public.messages (id) on delete cascade,
  -- the model that wrote an assistant reply
  model text check (char_length(model) between 1 and 200),
  -- how an assistant reply ended: the model's own finish reasons, or ours
  -- (client_closed, model_error, timeout; max_duration: cut at
  -- REPLY_MAX_SECONDS; shutdown: its worker was retired; stopped: a client
  -- asked). What was streamed up to then is kept either way.
  finish_reason text check (
    finish_reason in (
      'stop', 'length', 'content_filter', 'tool_calls',
      'client_closed', 'model_error', 'timeout', 'max_duration', 'shutdown', 'stopped'
    )
  ),
  -- the message's own token count, stored when it is written
  tokens integer check (tokens >= 0),
  -- what every earlier message of the session costs in a prompt: their
  -- tokens (or size in bytes when written without a count, which no
  -- tokenization exceeds) plus 4 each for the chat format. The newest turns
  -- that fit a token budget are then one index range, however long the session.
  tokens_before bigint not null,
  -- what an assistant reply cost, as the model reported it
  prompt_tokens integer check (prompt_tokens >= 0),
  completion_tokens integer check (completion_tokens >= 0),
  -- what search matches in a message
  search tsvector generated always as (to_tsvector('simple', content)) stored,
  created_at timestamptz not null default now(),
  constraint messages_user_content_not_empty check (role <> 'user' or content <> ''),
  constraint messages_finish_reason_only_for_assistant
    check (role = 'assistant' or finish_reason is null),
  constraint messages_usage_only_for_assistant
    check (role = 'assistant' or (prompt_tokens is null and completion_tokens is null)),
  constraint messages_session_seq_key unique (chat_session_id, seq),
  constraint messages_session_client_message_id_key unique (chat_session_id, client_message_id),
  constraint messages_reply_to_key unique (reply_to)
);

-- the history that fits a budget: one range of the running total
create index messages_session_tokens_before_idx
  on public.messages (chat_session_id, tokens_before);

-- No index on the search vectors: `@@` is not leakproof, so under RLS Postgres
-- checks a row's policy before it may apply `@@`, and never uses `@@` as an
-- index condition. Search starts from the caller's sessions (an index range on
-- user_id) and reads their messages by chat_session_id instead.

alter table public.messages enable row level security;

create policy "users can read messages of their own sessions"
  on public.messages for select to authenticated
  using (
    exists (
      select 1 from public.chat_sessions s
      where s.id = chat_session_id and s.user_id = (select auth.uid())
    )
  );

-- Messages are history: never edited, removed only with their session, and
-- written by chat_private's functions (no insert policy, as for sessions).
revoke all on table public.messages from anon, authenticated;
grant select on table public.messages to authenticated;
grant all on table public.messages to service_role;

-- Only the trigger that numbers messages (security definer) draws from the
-- conversation order: nextval and setval are nobody else's.
revoke all on sequence public.messages_seq_seq from anon, authenticated;

-- ---------------------------------------------------------------------------
-- Triggers. Security definer: they write what the caller's grants do not
-- reach (a session's updated_at, the running total). Not an API: nobody
-- calls them directly.

-- Every message moves its session to the top of the list.
create function public.touch_chat_session()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  update public.chat_sessions
  set updated_at = greatest(updated_at, clock_timestamp())
  where id = new.chat_session_id;
  return null;
end;
$$;

-- Numbers a message and counts what the messages before it cost.
create function public.count_tokens_before()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  total bigint;
begin
  -- one message at a time per session, so the running total cannot race; another
  -- user's session is not locked
  perform 1 from public.chat_sessions s
  where s.id = new.chat_session_id
    and (s.user_id = (select auth.uid()) or (select auth.uid()) is null)
  for update;
  select m.tokens_before + coalesce(m.tokens, octet_length(m.content)) + 4
  into total
  from public.messages m
  where m.chat_session_id = new.chat_session_id
  order by m.seq desc
  limit 1;
  new.tokens_before := coalesce(total, 0);
  -- numbered after the lock, so conversation order is the order of the running total
  new.seq := nextval(pg_get_serial_sequence('public.messages', 'seq'));
  return new;
end;
$$;

revoke execute on function public.touch_chat_session() from public, anon, authenticated;
revoke execute on function public.count_tokens_before() from public, anon, authenticated;

create trigger on_message_counted
  before insert on public.messages
  for each row execute function public.count_tokens_before();

create trigger on_message_added
  after insert on public.messages
  for each row execute function public.touch_chat_session();
