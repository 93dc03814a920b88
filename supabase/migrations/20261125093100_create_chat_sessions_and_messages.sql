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
-- A conversation is a tree: each message names the one it follows
-- (parent_id), and a session names the leaf of its current branch
-- (current_message_id). Editing a message or asking for another reply adds a
-- sibling; nothing is deleted but by an explicit request, which deletes a
-- subtree. Where each message goes and which branch is current are the
-- server's to say: chat_private writes both (docs/design.md, "The tree").
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
  -- the leaf of the session's current branch (null: no messages). A foreign
  -- key below, once messages exists; written only by chat_private's functions
  -- and the trigger that extends the current branch.
  current_message_id uuid,
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
  -- the message this one follows: null for a first message (a session may
  -- have several: editing its first message adds another). An insert that
  -- names no parent (a manual insert, a test's fixture) is appended after the
  -- session's newest message, as every message was before the tree: the
  -- default is a placeholder the insert trigger replaces, never stored.
  -- Deleting a message deletes its subtree: that is how a branch is deleted.
  parent_id uuid default '00000000-0000-0000-0000-000000000000'
    references public.messages (id) on delete cascade,
  -- the client's own message id (AI SDK ids are not UUIDs), for idempotent retries
  client_message_id text check (char_length(client_message_id) between 1 and 200),
  -- the user message an assistant reply answers, which is also its parent. A
  -- message may have several answers (each regeneration adds a sibling); a
  -- retry after an unfinished answer replaces that one instead
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
  -- what the messages before this one on its branch (its ancestors) cost in
  -- a prompt: their tokens (or size in bytes when written without a count,
  -- which no tokenization exceeds) plus 4 each for the chat format. Counted
  -- from the parent when the message is written, so the newest turns that fit
  -- a budget are read walking up the branch and no further.
  tokens_before bigint not null,
  -- what an assistant reply cost, as the model reported it
  prompt_tokens integer check (prompt_tokens >= 0),
  completion_tokens integer check (completion_tokens >= 0),
  -- what search matches in a message
  search tsvector generated always as (to_tsvector('simple', content)) stored,
  created_at timestamptz not null default now(),
  -- where an imported message came from (POST /api/imports, written by
  -- chat_private.import_conversations); null for every message written here.
  -- Usage (GET /api/usage) counts the replies written here, not imported ones.
  imported_from text check (imported_from in ('chatgpt', 'openwebui')),
  constraint messages_user_content_not_empty check (role <> 'user' or content <> ''),
  constraint messages_finish_reason_only_for_assistant
    check (role = 'assistant' or finish_reason is null),
  constraint messages_usage_only_for_assistant
    check (role = 'assistant' or (prompt_tokens is null and completion_tokens is null)),
  constraint messages_session_seq_key unique (chat_session_id, seq),
  constraint messages_session_client_message_id_key unique (chat_session_id, client_message_id),
  constraint messages_reply_is_child_of_its_message check (reply_to is null or reply_to = parent_id)
);

-- A message's children in the order they were written: its replies and edits
-- side by side (siblings), the newest leaf under a message, a subtree to
-- delete. A branch is read up from its leaf by primary key.
create index messages_parent_id_seq_idx on public.messages (parent_id, seq);
-- the first messages of a session (siblings with no parent)
create index messages_session_roots_idx on public.messages (chat_session_id, seq)
  where parent_id is null;
-- the answers to a message (and what deleting it cascades to)
create index messages_reply_to_idx on public.messages (reply_to) where reply_to is not null;

-- A session's current leaf. A message of the session's own (the functions
-- that write it check); deleting it clears the pointer, and chat_private's
-- delete_branch moves it to what remains first.
alter table public.chat_sessions
  add constraint chat_sessions_current_message_id_fkey
  foreign key (current_message_id) references public.messages (id) on delete set null;
-- what that clearing looks up for every message deleted
create index chat_sessions_current_message_id_idx on public.chat_sessions (current_message_id);

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

-- Messages are history: never edited, removed only with their session or
-- their branch, and written by chat_private's functions (no insert policy, as
-- for sessions): where a message hangs in the tree is the server's to say.
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

-- Every message moves its session to the top of the list; one added under
-- the current leaf extends the current branch (a reply saved while its
-- message is current, a message sent after the current leaf; the first
-- message of a session). Elsewhere (an edit, a reply to a branch the user
-- has left) it leaves the current branch alone.
create function public.touch_chat_session()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  update public.chat_sessions
  set updated_at = greatest(updated_at, clock_timestamp()),
      current_message_id = case when current_message_id is not distinct from new.parent_id
                                then new.id else current_message_id end
  where id = new.chat_session_id;
  return null;
end;
$$;

-- Places a message in its session's tree, numbers it, and counts what the
-- messages before it on its branch cost.
create function public.count_tokens_before()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  total bigint;
begin
  -- one message at a time per session, so the conversation order (seq) is the
  -- order messages are committed in; another user's session is not locked
  perform 1 from public.chat_sessions s
  where s.id = new.chat_session_id
    and (s.user_id = (select auth.uid()) or (select auth.uid()) is null)
  for update;
  if new.parent_id = '00000000-0000-0000-0000-000000000000' then
    -- no parent named: after the session's newest message (none: a first message)
    select m.id into new.parent_id from public.messages m
    where m.chat_session_id = new.chat_session_id
    order by m.seq desc
    limit 1;
  end if;
  if new.parent_id is not null then
    select p.tokens_before + coalesce(p.tokens, octet_length(p.content)) + 4
    into total
    from public.messages p
    where p.id = new.parent_id and p.chat_session_id = new.chat_session_id;
    if not found then
      raise exception 'a message follows a message of its own session'
        using errcode = '23503';
    end if;
  end if;
  new.tokens_before := coalesce(total, 0);
  -- numbered after the lock, and after its parent: along a branch, seq is conversation order
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
