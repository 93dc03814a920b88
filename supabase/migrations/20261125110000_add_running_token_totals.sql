-- A running token total per message, so the newest turns that fit a token
-- budget are one index range, however long the session: tokens_before is
-- what every earlier message of the session costs in a prompt (its tokens,
-- or its size in bytes when it was written without a count, which no
-- tokenization exceeds, plus 4 for the chat format around each message).

alter table public.messages add column tokens_before bigint;

update public.messages m
set tokens_before = running.before
from (
  select id,
         coalesce(sum(coalesce(tokens, octet_length(content)) + 4) over (
           partition by chat_session_id order by seq
           rows between unbounded preceding and 1 preceding
         ), 0) as before
  from public.messages
) running
where m.id = running.id;

alter table public.messages alter column tokens_before set not null;

create index messages_session_tokens_before_idx
  on public.messages (chat_session_id, tokens_before);

-- Security definer: the total depends on messages and a lock the caller's
-- grants do not reach; the caller cannot set tokens_before (no grant), only
-- this trigger does.
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
  -- user's session is not locked (RLS refuses that insert right after this trigger)
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

revoke execute on function public.count_tokens_before() from public, anon, authenticated;

create trigger on_message_counted
  before insert on public.messages
  for each row execute function public.count_tokens_before();
