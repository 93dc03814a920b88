-- Replies that outlive their connection: resume and stop, with Postgres alone.
--
-- A reply in progress is its handle, a row of chat_private.reply_slots (see
-- 20261125123000). The instance streaming it now also appends what the model
-- has written to that row (at most every REPLY_PERSIST_MS, one short update
-- that is also its poll), so any connection, device or instance can follow
-- the reply by reading the row, and then the stored message once the handle
-- is gone. A stop is a flag on the row, which the streaming instance sees at
-- its next write or poll: it ends the model call and stores the reply as
-- `stopped`. Polling, not LISTEN/NOTIFY: it works behind the transaction pooler.

alter table chat_private.reply_slots
  add column partial text not null default '',
  add column model text,
  add column stop_requested boolean not null default false;

alter table public.messages drop constraint messages_finish_reason_check;

alter table public.messages add constraint messages_finish_reason_check check (
  finish_reason in (
    'stop', 'length', 'content_filter', 'tool_calls',
    'client_closed', 'model_error', 'timeout', 'max_duration', 'shutdown', 'stopped'
  )
);

-- ---------------------------------------------------------------------------
-- Appends p_delta to a reply in progress (the instance streaming it, the only
-- writer, calls it in order) and answers what reply_state answers, plus
-- 'stopped' when a stop was asked for: one round trip is both the write and
-- the poll.
create function chat_private.write_partial(
  p_handle uuid,
  p_session_id uuid,
  p_delta text,
  p_model text
)
returns text
language plpgsql
security definer
set search_path = ''
as $$
declare
  uid uuid := chat_private.caller_id();
  stopping boolean;
begin
  update chat_private.reply_slots r
  set partial = r.partial || p_delta, model = p_model
  where r.id = p_handle and r.user_id = uid
  returning r.stop_requested into stopping;
  if not exists (
    select 1 from public.chat_sessions s where s.id = p_session_id and s.user_id = uid
  ) then
    return 'session_deleted';
  end if;
  if stopping is null then
    return 'released';
  end if;
  return case when stopping then 'stopped' else 'streaming' end;
end;
$$;

-- Asks the reply in progress in one of the caller's sessions to stop. Returns
-- the reply's id (the id it will be stored under), or null when none streams.
create function chat_private.request_stop(p_session_id uuid)
returns uuid
language sql
security definer
set search_path = ''
as $$
  update chat_private.reply_slots r
  set stop_requested = true
  where r.session_id = p_session_id and r.user_id = chat_private.caller_id()
    and r.expires_at > now()
  returning r.id;
$$;

-- What a re-attaching client reads, by session (p_handle null: the reply in
-- progress, if any) or by the handle it follows: 'streaming' with the text so
-- far, 'stored' with the stored reply (its handle gone), or 'gone' (nothing
-- streams; or the reply followed was not stored: its session deleted).
create function chat_private.follow_reply(p_session_id uuid, p_handle uuid default null)
returns table (
  state text,
  id uuid,
  user_message_id uuid,
  model text,
  content text,
  finish_reason text,
  prompt_tokens integer,
  completion_tokens integer
)
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  uid uuid := chat_private.caller_id();
begin
  return query
    select 'streaming', r.id, r.user_message_id, r.model, r.partial,
           null::text, null::integer, null::integer
    from chat_private.reply_slots r
    where r.session_id = p_session_id and r.user_id = uid and r.expires_at > now()
      and (p_handle is null or r.id = p_handle)
    order by r.expires_at desc
    limit 1;
  if found then
    return;
  end if;
  if p_handle is not null then
    return query
      select 'stored', m.id, m.reply_to, m.model, m.content,
             m.finish_reason, m.prompt_tokens, m.completion_tokens
      from public.messages m
      join public.chat_sessions s on s.id = m.chat_session_id
      where m.id = p_handle and s.id = p_session_id and s.user_id = uid;
    if found then
      return;
    end if;
  end if;
  return query select 'gone', null::uuid, null::uuid, null::text, null::text,
                      null::text, null::integer, null::integer;
end;
$$;

revoke execute on all functions in schema chat_private from public, anon;
grant execute on function
  chat_private.write_partial(uuid, uuid, text, text),
  chat_private.request_stop(uuid),
  chat_private.follow_reply(uuid, uuid)
  to authenticated;
