-- Chat sessions and their messages, owned through RLS.
-- A message belongs to the owner of its session; ownership is decided by
-- Postgres from the caller's verified claims, never by application code.

create table public.chat_sessions (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null default auth.uid() references public.profiles (id) on delete cascade,
  title text not null
    default 'New Chat - ' || to_char(now() at time zone 'utc', 'YYYY-MM-DD HH24:MI:SS')
    check (char_length(title) between 1 and 200),
  created_at timestamptz not null default now(),
  -- last conversation activity: moved by a trigger whenever a message is added
  updated_at timestamptz not null default now()
);

-- serves a user's session list, most recently active first, ties by id
create index chat_sessions_user_id_updated_at_id_idx
  on public.chat_sessions (user_id, updated_at desc, id desc);

alter table public.chat_sessions enable row level security;

create policy "users can read their own sessions"
  on public.chat_sessions for select to authenticated
  using (user_id = (select auth.uid()));

create policy "users can create sessions for themselves"
  on public.chat_sessions for insert to authenticated
  with check (user_id = (select auth.uid()));

create policy "users can rename their own sessions"
  on public.chat_sessions for update to authenticated
  using (user_id = (select auth.uid()))
  with check (user_id = (select auth.uid()));

create policy "users can delete their own sessions"
  on public.chat_sessions for delete to authenticated
  using (user_id = (select auth.uid()));

revoke all on table public.chat_sessions from anon, authenticated;
grant select, delete on table public.chat_sessions to authenticated;
-- timestamps belong to the database; only the title can change afterwards
grant insert (id, user_id, title) on table public.chat_sessions to authenticated;
grant update (title) on table public.chat_sessions to authenticated;
grant all on table public.chat_sessions to service_role;

create table public.messages (
  id uuid primary key default gen_random_uuid(),
  chat_session_id uuid not null references public.chat_sessions (id) on delete cascade,
  -- conversation order that stays stable when timestamps tie
  seq bigint generated always as identity,
  role text not null check (role in ('user', 'assistant', 'system')),
  -- Postgres text cannot hold a NUL byte, so no check is needed for that
  content text not null,
  -- the client's own message id (AI SDK ids are not UUIDs), for idempotent retries
  client_message_id text check (char_length(client_message_id) between 1 and 200),
  -- the model that wrote an assistant reply
  model text check (char_length(model) between 1 and 200),
  -- how an assistant reply ended: the model's own finish reasons, or ours
  finish_reason text check (
    finish_reason in (
      'stop', 'length', 'content_filter', 'tool_calls',
      'client_closed', 'model_error', 'timeout'
    )
  ),
  created_at timestamptz not null default now(),
  constraint messages_user_content_not_empty check (role <> 'user' or content <> ''),
  constraint messages_finish_reason_only_for_assistant check (role = 'assistant' or finish_reason is null),
  constraint messages_session_seq_key unique (chat_session_id, seq),
  constraint messages_session_client_message_id_key unique (chat_session_id, client_message_id)
);

alter table public.messages enable row level security;

create policy "users can read messages of their own sessions"
  on public.messages for select to authenticated
  using (
    exists (
      select 1 from public.chat_sessions s
      where s.id = chat_session_id and s.user_id = (select auth.uid())
    )
  );

create policy "users can add messages to their own sessions"
  on public.messages for insert to authenticated
  with check (
    exists (
      select 1 from public.chat_sessions s
      where s.id = chat_session_id and s.user_id = (select auth.uid())
    )
  );

-- Messages are history: never edited, removed only with their session.
revoke all on table public.messages from anon, authenticated;
grant select on table public.messages to authenticated;
grant insert (id, chat_session_id, role, content, client_message_id, model, finish_reason)
  on table public.messages to authenticated;
grant all on table public.messages to service_role;

-- Security definer: the caller may only rename sessions, but every message
-- they are allowed to add (RLS has already checked it) moves its session.
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

revoke execute on function public.touch_chat_session() from public, anon, authenticated;

create trigger on_message_added
  after insert on public.messages
  for each row execute function public.touch_chat_session();
