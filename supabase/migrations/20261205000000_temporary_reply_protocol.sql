-- TEMPORARY, branch `reply` only: the lead removes this file at merge. The
-- schema rewrite (issue 16 item 3) records the protocol on the reply's row when
-- the row is created and returns it from follow_reply; until then this file
-- does the same with today's functions, so that the reply module
-- (supabase/functions/api/reply/) can be tested end to end.
--
-- A re-attached stream speaks the protocol its reply was started in, unless
-- the request names one: the row keeps that protocol, written with the reply's
-- progress (as its model is), and follow_reply returns it.

alter table chat_private.reply_slots
  add column protocol text check (protocol in ('text', 'data', 'sse', 'ui'));

-- write_partial, also recording the protocol (the 4-argument one stays, unused)
create function chat_private.write_partial(
  p_handle uuid,
  p_session_id uuid,
  p_delta text,
  p_model text,
  p_protocol text
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
  set partial = r.partial || p_delta, model = p_model, protocol = p_protocol
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

-- follow_reply, with the protocol of a reply in progress (null once stored)
drop function chat_private.follow_reply(uuid, uuid);

create function chat_private.follow_reply(p_session_id uuid, p_handle uuid default null)
returns table (
  state text,
  id uuid,
  user_message_id uuid,
  model text,
  protocol text,
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
    select 'streaming', r.id, r.user_message_id, r.model, r.protocol, r.partial,
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
      select 'stored', m.id, m.reply_to, m.model, null::text, m.content,
             m.finish_reason, m.prompt_tokens, m.completion_tokens
      from public.messages m
      join public.chat_sessions s on s.id = m.chat_session_id
      where m.id = p_handle and s.id = p_session_id and s.user_id = uid;
    if found then
      return;
    end if;
  end if;
  return query select 'gone', null::uuid, null::uuid, null::text, null::text, null::text,
                      null::text, null::integer, null::integer;
end;
$$;

revoke execute on all functions in schema chat_private from public, anon;
grant execute on function
  chat_private.write_partial(uuid, uuid, text, text, text),
  chat_private.follow_reply(uuid, uuid)
  to authenticated;
