-- One model call per user message, and one answer per user message.
--
-- A reply in progress is a row of chat_private.reply_slots: the reply's
-- handle. Its id is the id the reply is stored under; it names the session
-- and the user message it answers, and at most one exists per user message,
-- taken in the transaction that stores or finds that message. A concurrent
-- send of the same message id waits on that row's unique key and then finds
-- the reply already being written: the model is called once. Deleting the
-- session deletes the row with it, which frees the reply's slot at once and
-- is what the instance streaming the reply sees when it polls the row.
--
-- A stored reply names the user message it answers (reply_to, unique): a
-- retry after an unfinished reply replaces that reply instead of adding
-- another one.

alter table public.messages add column reply_to uuid references public.messages (id) on delete cascade;

-- Replies stored before this migration: the last assistant message after a
-- user message (and before the next one) is its answer; earlier ones stay
-- unlinked, as history.
update public.messages m
set reply_to = link.user_message_id
from (
  select a.id, u.id as user_message_id,
         row_number() over (partition by u.id order by a.seq desc) as n
  from public.messages a
  cross join lateral (
    select id from public.messages u
    where u.chat_session_id = a.chat_session_id and u.seq < a.seq and u.role = 'user'
    order by u.seq desc
    limit 1
  ) u
  where a.role = 'assistant'
) link
where link.id = m.id and link.n = 1;

alter table public.messages add constraint messages_reply_to_key unique (reply_to);

alter table chat_private.reply_slots
  add column session_id uuid references public.chat_sessions (id) on delete cascade,
  add column user_message_id uuid references public.messages (id) on delete cascade,
  add constraint reply_slots_user_message_id_key unique (user_message_id);

-- ---------------------------------------------------------------------------
-- Begins the reply to one of the caller's user messages: takes its handle
-- (and reply slot), lapsing after p_seconds if never freed. Null when a reply
-- to that message is already being written. p_count_send counts the send for
-- the daily quota: a retry that asks the model again costs a model call, as
-- a new message does (the first send is counted when its message is added).
create function chat_private.begin_reply(
  p_session_id uuid,
  p_user_message_id uuid,
  p_seconds integer,
  p_count_send boolean
)
returns uuid
language plpgsql
security definer
set search_path = ''
as $$
declare
  uid uuid := chat_private.caller_id();
  handle uuid;
begin
  if not exists (
    select 1 from public.messages m
    join public.chat_sessions s on s.id = m.chat_session_id
    where m.id = p_user_message_id and m.role = 'user' and s.id = p_session_id and s.user_id = uid
  ) then
    raise exception 'not a message of the caller''s' using errcode = '42501';
  end if;
  -- a handle whose instance died mid-reply lapses like any reply slot
  delete from chat_private.reply_slots r
  where r.user_message_id = p_user_message_id and r.expires_at <= now();
  -- a concurrent begin for the same message waits here for the other transaction, then finds it
  insert into chat_private.reply_slots (user_id, session_id, user_message_id, expires_at)
  values (uid, p_session_id, p_user_message_id,
          now() + make_interval(secs => greatest(p_seconds, 1)))
  on conflict (user_message_id) do nothing
  returning id into handle;
  if handle is not null and p_count_send then
    insert into chat_private.message_sends (user_id) values (uid);
  end if;
  return handle;
end;
$$;

-- What the instance streaming a reply polls (by primary key, every
-- REPLY_POLL_MS): 'session_deleted' when the session is gone (the reply must
-- stop), 'streaming' while the handle exists, 'released' when it has lapsed.
create function chat_private.reply_state(p_handle uuid, p_session_id uuid)
returns text
language sql
stable
security definer
set search_path = ''
as $$
  with me as (select chat_private.caller_id() as uid)
  select case
    when not exists (
      select 1 from public.chat_sessions s, me where s.id = p_session_id and s.user_id = me.uid
    ) then 'session_deleted'
    when exists (
      select 1 from chat_private.reply_slots r, me where r.id = p_handle and r.user_id = me.uid
    ) then 'streaming'
    else 'released'
  end;
$$;

-- Stores an assistant reply in the caller's session and frees its handle.
-- With p_reply_to, the reply answers that user message and replaces an
-- unfinished earlier answer to it. False when the session is gone (deleted
-- while the reply streamed) or the message has a finished answer already:
-- the handle is freed all the same.
drop function chat_private.save_reply(uuid, uuid, text, text, text, integer, integer, integer, uuid);

create function chat_private.save_reply(
  p_id uuid,
  p_session_id uuid,
  p_content text,
  p_model text,
  p_finish_reason text,
  p_tokens integer,
  p_prompt_tokens integer,
  p_completion_tokens integer,
  p_slot_id uuid,
  p_reply_to uuid default null
)
returns boolean
language plpgsql
security definer
set search_path = ''
as $$
declare
  uid uuid := chat_private.caller_id();
  saved boolean;
begin
  delete from chat_private.reply_slots r where r.id = p_slot_id and r.user_id = uid;
  if not exists (select 1 from public.chat_sessions s where s.id = p_session_id and s.user_id = uid)
  then
    return false;
  end if;
  if p_reply_to is not null and not exists (
    select 1 from public.messages m
    where m.id = p_reply_to and m.chat_session_id = p_session_id and m.role = 'user'
  ) then
    return false;
  end if;
  -- its own statement: the new answer's running total is counted without the one it replaces
  delete from public.messages m
  where m.reply_to = p_reply_to and m.chat_session_id = p_session_id
    and m.finish_reason in ('client_closed', 'model_error', 'timeout', 'max_duration', 'shutdown');
  insert into public.messages (id, chat_session_id, role, content, model, finish_reason,
                               tokens, prompt_tokens, completion_tokens, reply_to)
  values (p_id, p_session_id, 'assistant', p_content, p_model, p_finish_reason,
          p_tokens, p_prompt_tokens, p_completion_tokens, p_reply_to)
  on conflict (reply_to) do nothing
  returning true into saved;
  return coalesce(saved, false);
end;
$$;

-- replies are begun with a handle now
drop function chat_private.take_reply_slot(integer);

revoke execute on all functions in schema chat_private from public, anon;
grant execute on function
  chat_private.begin_reply(uuid, uuid, integer, boolean),
  chat_private.reply_state(uuid, uuid),
  chat_private.save_reply(uuid, uuid, text, text, text, integer, integer, integer, uuid, uuid)
  to authenticated;
