-- Server-owned facts stay server-owned. Supabase's Data API (PostgREST,
-- GraphQL) serves the public schema to every signed-in user as role
-- authenticated, so whatever that role may write there, any user can write
-- with one supabase-js call. From here on a signed-in user may directly only
-- read their own profile, sessions and messages, rename their own sessions
-- and delete them. Everything that costs (a session, a message, a reply
-- slot) or that the server vouches for (the role of a message, token
-- counts, running totals, usage, model, finish reason, quota counters) is
-- written through the security definer functions of chat_private.
--
-- chat_private must never be added to the Data API's exposed schemas
-- (config.toml [api] schemas, or the dashboard's "Exposed schemas"). The
-- function's own transactions run as authenticated (every request runs as
-- its caller, under RLS), so that role may execute these functions; each
-- one still takes the caller's identity from auth.uid() and refuses to run
-- inside a Data API request (PostgREST sets request.method), so exposing the
-- schema by mistake would not open it.

create schema chat_private;
revoke all on schema chat_private from public;
grant usage on schema chat_private to authenticated;
-- Postgres lets public execute every new function: not here
alter default privileges in schema chat_private revoke execute on functions from public;

-- ---------------------------------------------------------------------------
-- What a signed-in user may still do directly (README: "The Data API").
-- Revoking a table privilege revokes its column grants too.

revoke insert on table public.chat_sessions from authenticated;
revoke insert on table public.messages from authenticated;

-- ---------------------------------------------------------------------------
-- Reply slots: held while a reply streams, freed however it ends. Each slot
-- carries when it lapses on its own (a worker killed mid-reply frees
-- nothing), which is also the longest anyone waits for a slot.

alter table public.reply_slots set schema chat_private;
drop policy "users can see their own reply slots" on chat_private.reply_slots;
drop policy "users can take reply slots for themselves" on chat_private.reply_slots;
drop policy "users can free their own reply slots" on chat_private.reply_slots;
revoke all on table chat_private.reply_slots from anon, authenticated;
alter table chat_private.reply_slots
  add column expires_at timestamptz,
  alter column user_id drop default;
-- slots taken before this migration lapse as they did: 15 minutes after they started
update chat_private.reply_slots set expires_at = started_at + interval '15 minutes';
alter table chat_private.reply_slots alter column expires_at set not null;
drop index chat_private.reply_slots_user_id_started_at_idx;
create index reply_slots_user_id_expires_at_idx on chat_private.reply_slots (user_id, expires_at);

-- ---------------------------------------------------------------------------
-- Messages sent, per user, for the rolling daily quota. Kept apart from the
-- history, so deleting sessions does not give the quota back; pruned past
-- 24 hours as the user sends.

create table chat_private.message_sends (
  user_id uuid not null references public.profiles (id) on delete cascade,
  sent_at timestamptz not null default now()
);

create index message_sends_user_id_sent_at_idx on chat_private.message_sends (user_id, sent_at);

-- no policy: nobody but the functions below (and service_role) reads or writes it
alter table chat_private.message_sends enable row level security;
revoke all on table chat_private.message_sends from anon, authenticated;

insert into chat_private.message_sends (user_id, sent_at)
select s.user_id, m.created_at
from public.messages m
join public.chat_sessions s on s.id = m.chat_session_id
where m.role = 'user' and m.created_at > now() - interval '24 hours';

-- the quota was counted from messages along this index; it is not any more
drop index public.messages_user_messages_created_at_idx;

-- ---------------------------------------------------------------------------
-- The functions. Security definer: they write what the caller's grants do
-- not reach, so each decides ownership itself, from auth.uid().

-- The signed-in caller, outside any Data API request; refuses anything else.
-- Runs inside the functions below (as their owner), never called directly.
create function chat_private.caller_id()
returns uuid
language plpgsql
stable
set search_path = ''
as $$
declare
  uid uuid := (select auth.uid());
begin
  if coalesce(current_setting('request.method', true), '') <> '' then
    raise exception 'chat_private is not part of the Data API' using errcode = '42501';
  end if;
  if uid is null then
    raise exception 'not signed in' using errcode = '42501';
  end if;
  return uid;
end;
$$;

-- Creates the caller's session with this id; another user's id is left alone.
create function chat_private.open_session(p_session_id uuid)
returns void
language sql
security definer
set search_path = ''
as $$
  insert into public.chat_sessions (id, user_id)
  values (p_session_id, chat_private.caller_id())
  on conflict (id) do nothing;
$$;

-- Stores a user message in the caller's session, once per client message id,
-- and counts it for the daily quota. No row: not the caller's session, or the
-- client message id is taken.
create function chat_private.add_user_message(
  p_session_id uuid,
  p_content text,
  p_client_message_id text,
  p_tokens integer
)
returns table (id uuid, seq bigint, role text, content text)
language sql
security definer
set search_path = ''
as $$
  with me as (
    select chat_private.caller_id() as uid
  ), inserted as (
    insert into public.messages as m (chat_session_id, role, content, client_message_id, tokens)
    select s.id, 'user', p_content, p_client_message_id, p_tokens
    from public.chat_sessions s, me
    where s.id = p_session_id and s.user_id = me.uid
    on conflict (chat_session_id, client_message_id) do nothing
    returning m.id, m.seq, m.role, m.content, m.created_at
  ), counted as (
    insert into chat_private.message_sends (user_id, sent_at)
    select me.uid, inserted.created_at from inserted, me
  ), pruned as (
    delete from chat_private.message_sends d
    using me
    where d.user_id = me.uid and d.sent_at <= now() - interval '24 hours'
  )
  select inserted.id, inserted.seq, inserted.role, inserted.content from inserted;
$$;

-- Stores an assistant reply in the caller's session and frees its reply
-- slot. False when the session is gone (deleted while the reply streamed):
-- the slot is freed all the same.
create function chat_private.save_reply(
  p_id uuid,
  p_session_id uuid,
  p_content text,
  p_model text,
  p_finish_reason text,
  p_tokens integer,
  p_prompt_tokens integer,
  p_completion_tokens integer,
  p_slot_id uuid
)
returns boolean
language sql
security definer
set search_path = ''
as $$
  with me as (
    select chat_private.caller_id() as uid
  ), freed as (
    delete from chat_private.reply_slots r using me where r.id = p_slot_id and r.user_id = me.uid
  ), saved as (
    insert into public.messages (id, chat_session_id, role, content, model, finish_reason,
                                 tokens, prompt_tokens, completion_tokens)
    select p_id, s.id, 'assistant', p_content, p_model, p_finish_reason,
           p_tokens, p_prompt_tokens, p_completion_tokens
    from public.chat_sessions s, me
    where s.id = p_session_id and s.user_id = me.uid
    returning 1
  )
  select exists (select 1 from saved);
$$;

-- Takes a reply slot for the caller; it lapses after p_seconds if never freed.
create function chat_private.take_reply_slot(p_seconds integer)
returns uuid
language sql
security definer
set search_path = ''
as $$
  insert into chat_private.reply_slots (user_id, expires_at)
  values (chat_private.caller_id(), now() + make_interval(secs => greatest(p_seconds, 1)))
  returning id;
$$;

-- Frees one of the caller's reply slots (a reply that ended without a save).
create function chat_private.free_reply_slot(p_slot_id uuid)
returns void
language sql
security definer
set search_path = ''
as $$
  delete from chat_private.reply_slots where id = p_slot_id and user_id = chat_private.caller_id();
$$;

-- What the caller has used of their quotas, under a per-user lock held to the
-- end of the transaction, so concurrent sends of one user are counted one
-- after another. day_frees_in: seconds until the count falls below
-- p_messages_per_day (when the oldest send that keeps it there leaves the
-- window); slot_frees_in: seconds until the first running slot lapses.
create function chat_private.quota_use(p_messages_per_day integer)
returns table (sent_today integer, day_frees_in integer, streaming integer, slot_frees_in integer)
language plpgsql
security definer
set search_path = ''
as $$
declare
  uid uuid := chat_private.caller_id();
  sent integer;
  keeping timestamptz;
begin
  perform pg_advisory_xact_lock(hashtextextended(uid::text, 7));
  delete from chat_private.message_sends d
  where d.user_id = uid and d.sent_at <= now() - interval '24 hours';
  delete from chat_private.reply_slots r where r.user_id = uid and r.expires_at <= now();
  select count(*) into sent from chat_private.message_sends d where d.user_id = uid;
  select d.sent_at into keeping from chat_private.message_sends d
  where d.user_id = uid
  order by d.sent_at
  offset greatest(sent - greatest(p_messages_per_day, 1), 0)
  limit 1;
  -- waits are measured from now, not from when the transaction began (the lock may have waited)
  return query
  select sent,
         coalesce(ceil(extract(epoch from keeping + interval '24 hours' - clock_timestamp())), 0)::integer,
         (select count(*)::integer from chat_private.reply_slots r where r.user_id = uid),
         coalesce(ceil(extract(epoch from
           (select min(r.expires_at) from chat_private.reply_slots r where r.user_id = uid)
           - clock_timestamp()
         )), 0)::integer;
end;
$$;

revoke execute on all functions in schema chat_private from public, anon;
grant execute on function
  chat_private.open_session(uuid),
  chat_private.add_user_message(uuid, text, text, integer),
  chat_private.save_reply(uuid, uuid, text, text, text, integer, integer, integer, uuid),
  chat_private.take_reply_slot(integer),
  chat_private.free_reply_slot(uuid),
  chat_private.quota_use(integer)
  to authenticated;
grant all on all tables in schema chat_private to service_role;
grant usage on schema chat_private to service_role;
