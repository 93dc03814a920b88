-- TEMPORARY (branch `import` only; the lead deletes this file at merge): the
-- columns of the conversation tree (/work/notes/tree_contract.md), which the
-- tree's own migrations define for real, added here only so that the import
-- (20261205110000_import_conversations.sql) can be written and tested
-- against them before both branches meet.
--
-- Besides the two columns and the parent index, two stand-ins of what the
-- tree must change anyway, so the import's trees can be stored here:
-- - a message's running total is counted from its parent when it has one
--   (the contract: tokens_before along the branch);
-- - regenerated replies are siblings answering one user message, so
--   messages.reply_to is no longer unique, and save_reply keeps one
--   finished answer per message without that key.

alter table public.messages
  add column parent_id uuid references public.messages (id) on delete cascade;
create index messages_parent_id_idx on public.messages (parent_id);

alter table public.chat_sessions
  add column current_message_id uuid references public.messages (id) on delete set null;

alter table public.messages drop constraint messages_reply_to_key;
create index messages_reply_to_idx on public.messages (reply_to);

create or replace function public.count_tokens_before()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  total bigint;
begin
  perform 1 from public.chat_sessions s
  where s.id = new.chat_session_id
    and (s.user_id = (select auth.uid()) or (select auth.uid()) is null)
  for update;
  if new.parent_id is not null then
    select m.tokens_before + coalesce(m.tokens, octet_length(m.content)) + 4
    into total
    from public.messages m
    where m.id = new.parent_id;
  else
    select m.tokens_before + coalesce(m.tokens, octet_length(m.content)) + 4
    into total
    from public.messages m
    where m.chat_session_id = new.chat_session_id
    order by m.seq desc
    limit 1;
  end if;
  new.tokens_before := coalesce(total, 0);
  new.seq := nextval(pg_get_serial_sequence('public.messages', 'seq'));
  return new;
end;
$$;

create or replace function chat_private.save_reply(
  p_id uuid,
  p_session_id uuid,
  p_content text,
  p_model text,
  p_finish_reason text,
  p_tokens integer,
  p_prompt_tokens integer,
  p_completion_tokens integer,
  p_reply_to uuid
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
  delete from chat_private.replies r where r.id = p_id and r.user_id = uid;
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
  delete from public.messages m
  where m.reply_to = p_reply_to and m.chat_session_id = p_session_id
    and m.finish_reason in ('client_closed', 'model_error', 'timeout', 'max_duration', 'shutdown');
  if p_reply_to is not null and exists (select 1 from public.messages m where m.reply_to = p_reply_to)
  then
    return false;
  end if;
  insert into public.messages (id, chat_session_id, role, content, model, finish_reason,
                               tokens, prompt_tokens, completion_tokens, reply_to)
  values (p_id, p_session_id, 'assistant', p_content, p_model, p_finish_reason,
          p_tokens, p_prompt_tokens, p_completion_tokens, p_reply_to)
  on conflict do nothing
  returning true into saved;
  return coalesce(saved, false);
end;
$$;
