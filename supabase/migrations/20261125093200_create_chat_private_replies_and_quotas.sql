-- The server's own facts and the only ways to write them: schema chat_private.
--
-- Everything that costs (a session, a message, a reply) or that the server
-- vouches for (the role of a message, token counts, usage, model, finish
-- reason, quota counters) is written through the security definer functions
-- below. Each takes the caller from auth.uid(), so it writes only the
-- caller's own sessions, and refuses to run inside a Data API request.
--
-- chat_private must never be added to the Data API's exposed schemas
-- (config.toml [api] schemas, or the dashboard's "Exposed schemas"). The
-- function's own transactions run as authenticated (every request runs as
-- its caller, under RLS), so that role may execute these functions; as each
-- refuses a Data API request (PostgREST sets request.method), exposing the
-- schema by mistake would not open them.
--
-- The story of a send (send_message): under a per-user lock, the quotas are
-- counted, the session is created if new, the user message is stored once
-- per client message id, the history that fits is read and the reply is
-- created, all in one statement. The reply streams from the function; as it
-- streams, its text is appended to the reply's row (write_partial), which is
-- how another connection follows it (follow_reply) or stops it
-- (request_stop); however it ends, it is stored as an assistant message under
-- the reply's id and its row goes (save_reply, or release_reply when it
-- cannot be stored). Polling, not LISTEN/NOTIFY: it works behind the
-- transaction pooler.

create schema chat_private;
revoke all on schema chat_private from public;
grant usage on schema chat_private to authenticated, service_role;

-- ---------------------------------------------------------------------------
-- Replies being written. A row is the reply while the model writes it: its id
-- is the id the assistant message is stored under, it names the session and
-- the user message it answers (at most one reply per user message, so
-- concurrent sends of one message id make one model call), and it holds what
-- the model has written so far and whether a client asked it to stop. The
-- rows are also what the concurrent-reply quota counts. Saving the reply
-- deletes its row; deleting the session deletes it too, which is what the
-- instance streaming the reply sees at its next write.
--
-- A writer that stops reporting is dead. Its instance touches the row at least
-- every REPLY_POLL_MS (a progress write, or the poll while the model is silent
-- or not yet answering), which moves alive_until on by the lease below; a row
-- whose alive_until has passed belongs to a worker killed without warning (an
-- OOM kill, a crashed isolate). Whoever meets such a row first (a send, a
-- re-attach, a stop) stores what it had written as the reply, marked
-- `shutdown`, and deletes it: within seconds nothing shows it as streaming, a
-- retry asks the model again, and the quota has its place back. expires_at
-- (QUOTA_REPLY_SLOT_SECONDS) stays as the outer bound of any reply.

-- How long a writer may stay silent before it is taken for dead: five of its
-- polls at the longest REPLY_POLL_MS allowed (1 s; config.ts), so a busy
-- instance or a slow round trip is not mistaken for a dead one.
create function chat_private.writer_lease()
returns interval
language sql
immutable
set search_path = ''
as $$
  select interval '5 seconds';
$$;

create table chat_private.replies (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references public.profiles (id) on delete cascade,
  session_id uuid not null references public.chat_sessions (id) on delete cascade,
  user_message_id uuid not null references public.messages (id) on delete cascade,
  -- known when the reply starts, so a client re-attaching needs no progress write to learn them
  model text not null,
  -- the stream protocol the reply was asked for, which a re-attached stream speaks too
  protocol text not null check (protocol in ('text', 'data', 'sse', 'ui')),
  partial text not null default '',
  stop_requested boolean not null default false,
  started_at timestamptz not null default now(),
  alive_until timestamptz not null default now() + chat_private.writer_lease(),
  expires_at timestamptz not null,
  constraint replies_user_message_id_key unique (user_message_id)
);

-- a user's replies, by when they lapse: the quota's count and its Retry-After
create index replies_user_id_expires_at_idx on chat_private.replies (user_id, expires_at);

-- no policy: nobody but the functions below (and service_role) reads or writes it
alter table chat_private.replies enable row level security;
revoke all on table chat_private.replies from anon, authenticated;
grant all on table chat_private.replies to service_role;

-- ---------------------------------------------------------------------------
-- Messages sent, per user, for the rolling daily quota: one row per send that
-- asked the model. Kept apart from the history, so deleting sessions does not
-- give the quota back; pruned past 24 hours as the user sends.

create table chat_private.message_sends (
  user_id uuid not null references public.profiles (id) on delete cascade,
  sent_at timestamptz not null default now()
);

create index message_sends_user_id_sent_at_idx on chat_private.message_sends (user_id, sent_at);

alter table chat_private.message_sends enable row level security;
revoke all on table chat_private.message_sends from anon, authenticated;
grant all on table chat_private.message_sends to service_role;

-- ---------------------------------------------------------------------------
-- Helpers, run inside the functions below (as their owner), never called directly.

-- The signed-in caller, outside any Data API request; refuses anything else.
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

-- Whole seconds from now (not from when the transaction began: a lock may
-- have waited) until p_moment, at least 1: a Retry-After.
create function chat_private.seconds_until(p_moment timestamptz)
returns integer
language sql
volatile
set search_path = ''
as $$
  select greatest(ceil(extract(epoch from p_moment - clock_timestamp())), 1)::integer;
$$;

-- ---------------------------------------------------------------------------
-- Sends a user message, decided once: one row whose outcome says what
-- happened, and what that outcome needs.
--
--   new               stored; the reply is created: user_message_id, reply_id,
--                     untitled, history (the newest turns that fit
--                     p_history_tokens, oldest first, this message last)
--   retry             the message was stored by an earlier send with this client
--                     message id and its reply did not finish: asked again, as new
--   replay            that earlier send's reply finished: reply_id and the reply
--                     (content, model, finish_reason, usage), answered again
--   conflict          the client message id holds a different message
--   superseded        a retry of a message that later user messages followed
--   busy              a reply to this very message is being written
--   not_found         the session is another user's
--   over_daily_quota  p_messages_per_day sends in the last 24 hours; retry_after
--   over_reply_quota  p_concurrent_replies replies being written; retry_after
--
-- Only a send that asks the model counts against the quotas: a replay is
-- answered even at the limit. A refused send stores nothing. 0 switches a
-- limit off.
create function chat_private.send_message(
  p_session_id uuid,
  p_content text,
  p_client_message_id text,
  p_tokens integer,
  p_history_tokens integer,
  p_messages_per_day integer,
  p_concurrent_replies integer,
  p_reply_seconds integer,
  p_model text,
  p_protocol text
)
returns table (
  outcome text,
  user_message_id uuid,
  reply_id uuid,
  untitled boolean,
  history json,
  retry_after integer,
  content text,
  model text,
  finish_reason text,
  prompt_tokens integer,
  completion_tokens integer
)
language plpgsql
security definer
set search_path = ''
as $$
declare
  uid uuid := chat_private.caller_id();
  owner uuid;
  -- the user message the model is asked to answer
  message_id uuid;
  message_seq bigint;
  message_tokens_before bigint;
  earlier_content text;
  sent integer;
  lapses timestamptz;
begin
  -- One send of a user's at a time, to the end of the transaction: a burst is
  -- counted one send after another, and a retry finds what an earlier one did.
  perform pg_advisory_xact_lock(hashtextextended(uid::text, 7));

  -- another user's session is not found (and learns nothing); a new id is
  -- created below, once the send goes ahead
  select s.user_id, s.title_set_by = 'default' into owner, untitled
  from public.chat_sessions s where s.id = p_session_id;
  if owner <> uid then
    outcome := 'not_found';
    return next;
    return;
  end if;

  -- a client message id stored before: this send is a retry of that message
  select m.id, m.seq, m.tokens_before, m.content
  into message_id, message_seq, message_tokens_before, earlier_content
  from public.messages m
  where m.chat_session_id = p_session_id and m.client_message_id = p_client_message_id;
  if message_id is not null then
    if earlier_content <> p_content then
      outcome := 'conflict';
      return next;
      return;
    end if;
    user_message_id := message_id;
    -- a finished reply (a stopped one is finished as the user chose) is answered again
    select a.id, a.content, a.model, a.finish_reason, a.prompt_tokens, a.completion_tokens
    into reply_id, content, model, finish_reason, prompt_tokens, completion_tokens
    from public.messages a
    where a.reply_to = message_id
      and a.finish_reason in ('stop', 'length', 'content_filter', 'tool_calls', 'stopped');
    if found then
      outcome := 'replay';
      return next;
      return;
    end if;
    if exists (
      select 1 from public.messages later
      where later.chat_session_id = p_session_id and later.seq > message_seq
        and later.role = 'user'
    ) then
      outcome := 'superseded';
      return next;
      return;
    end if;
  end if;

  -- The quotas, decided here only: this send asks the model.
  delete from chat_private.message_sends d
  where d.user_id = uid and d.sent_at <= now() - interval '24 hours';
  perform chat_private.store_dead_replies();
  if p_messages_per_day > 0 then
    select count(*) into sent from chat_private.message_sends d where d.user_id = uid;
    if sent >= p_messages_per_day then
      -- until enough of the last 24 hours' sends have left the window
      select d.sent_at into lapses from chat_private.message_sends d
      where d.user_id = uid
      order by d.sent_at
      offset sent - p_messages_per_day
      limit 1;
      outcome := 'over_daily_quota';
      retry_after := chat_private.seconds_until(lapses + interval '24 hours');
      return next;
      return;
    end if;
  end if;
  if p_concurrent_replies > 0 then
    select count(*), min(r.expires_at) into sent, lapses
    from chat_private.replies r where r.user_id = uid;
    if sent >= p_concurrent_replies then
      -- until the first reply's row lapses at the latest (it goes the moment its reply
      -- ends, so a retry may succeed sooner)
      outcome := 'over_reply_quota';
      retry_after := chat_private.seconds_until(lapses);
      return next;
      return;
    end if;
  end if;

  if message_id is null then
    outcome := 'new';
    if owner is null then
      insert into public.chat_sessions (id, user_id) values (p_session_id, uid)
      on conflict (id) do nothing;
      if not found then
        -- another user took this id a moment ago
        outcome := 'not_found';
        return next;
        return;
      end if;
      untitled := true;
    end if;
    insert into public.messages as m (chat_session_id, role, content, client_message_id, tokens)
    values (p_session_id, 'user', p_content, p_client_message_id, p_tokens)
    returning m.id, m.seq, m.tokens_before into message_id, message_seq, message_tokens_before;
    user_message_id := message_id;
  else
    outcome := 'retry';
  end if;

  -- The reply. Under the lock no other send of this user races it; the unique
  -- key makes one reply per message hold whatever happens.
  insert into chat_private.replies as r
    (user_id, session_id, user_message_id, model, protocol, expires_at)
  values (uid, p_session_id, message_id, p_model, p_protocol,
          now() + make_interval(secs => greatest(p_reply_seconds, 1)))
  on conflict on constraint replies_user_message_id_key do nothing
  returning r.id into reply_id;
  if reply_id is null then
    -- the reply to this message is alive: asked again when its writer would be known
    -- dead if it stopped reporting now; by then it has finished, is still alive, or is gone
    outcome := 'busy';
    select chat_private.seconds_until(r.alive_until) into retry_after
    from chat_private.replies r where r.user_message_id = message_id;
    return next;
    return;
  end if;
  insert into chat_private.message_sends (user_id) values (uid);

  -- The newest earlier turns that fit the room the budget leaves: one range of
  -- the running total's index, so only what fits is read. A reply that failed
  -- before its first word says nothing to the model, and a retry's unfinished
  -- reply (after its message) is not part of it.
  select coalesce(
    json_agg(json_build_object('role', c.role, 'content', c.content) order by c.seq), '[]'
  )
  into history
  from (
    select e.seq, e.role, e.content from public.messages e
    where e.chat_session_id = p_session_id
      and e.tokens_before >= message_tokens_before - p_history_tokens
      and e.seq < message_seq
      and not (e.role = 'assistant' and e.content = '')
    union all
    select message_seq, 'user', p_content
  ) c;
  return next;
end;
$$;

-- ---------------------------------------------------------------------------
-- Appends p_delta to a reply being written (the instance streaming it, the
-- only writer, calls it in order) and answers what became of the reply, so
-- one round trip is both the write and the poll: 'streaming', 'stopped' (a
-- client asked), 'released' (its row is gone: its writer was taken for dead and
-- what it had written stored) or 'session_deleted' (the reply must stop). Each
-- call is also the writer's sign of life (alive_until).
create function chat_private.write_partial(p_id uuid, p_session_id uuid, p_delta text)
returns text
language plpgsql
security definer
set search_path = ''
as $$
declare
  uid uuid := chat_private.caller_id();
  stopping boolean;
begin
  update chat_private.replies r
  set partial = r.partial || p_delta, alive_until = now() + chat_private.writer_lease()
  where r.id = p_id and r.user_id = uid
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

-- Stores a reply as an assistant message under its id, in the caller's
-- session, and deletes its row (which frees it for the quota). With
-- p_reply_to, the reply answers that user message and replaces an
-- unfinished earlier answer to it. False when the session is gone (deleted
-- while the reply streamed) or the message has a finished answer already:
-- the row goes all the same.
create function chat_private.save_reply(
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

-- Deletes the row of one of the caller's replies that will not be stored.
create function chat_private.release_reply(p_id uuid)
returns void
language sql
security definer
set search_path = ''
as $$
  delete from chat_private.replies r where r.id = p_id and r.user_id = chat_private.caller_id();
$$;

-- Asks the reply being written in one of the caller's sessions to stop (its
-- writer sees it at its next write). Returns the reply's id, or null when
-- none is being written.
create function chat_private.request_stop(p_session_id uuid)
returns uuid
language plpgsql
security definer
set search_path = ''
as $$
declare
  uid uuid := chat_private.caller_id();
  stopping uuid;
begin
  -- a dead writer's reply is stored now: there is nothing left to stop
  perform chat_private.store_dead_replies();
  update chat_private.replies r
  set stop_requested = true
  where r.session_id = p_session_id and r.user_id = uid
  returning r.id into stopping;
  return stopping;
end;
$$;

-- What a re-attaching client reads, by session (p_id null: the reply being
-- written, if any) or by the id of the reply it follows: 'streaming' with the
-- text so far, 'stored' with the stored reply (its row gone; protocol null),
-- or 'gone' (nothing is being written; or the reply followed was not stored:
-- its session deleted).
create function chat_private.follow_reply(p_session_id uuid, p_id uuid default null)
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
security definer
set search_path = ''
as $$
declare
  uid uuid := chat_private.caller_id();
begin
  -- a dead writer's reply is stored now, so a follower reads how it ended
  perform chat_private.store_dead_replies();
  return query
    select 'streaming', r.id, r.user_message_id, r.model, r.protocol, r.partial,
           null::text, null::integer, null::integer
    from chat_private.replies r
    where r.session_id = p_session_id and r.user_id = uid and r.expires_at > now()
      and (p_id is null or r.id = p_id)
    order by r.expires_at desc
    limit 1;
  if found then
    return;
  end if;
  if p_id is not null then
    return query
      select 'stored', m.id, m.reply_to, m.model, null::text, m.content,
             m.finish_reason, m.prompt_tokens, m.completion_tokens
      from public.messages m
      join public.chat_sessions s on s.id = m.chat_session_id
      where m.id = p_id and s.id = p_session_id and s.user_id = uid;
    if found then
      return;
    end if;
  end if;
  return query select 'gone', null::uuid, null::uuid, null::text, null::text, null::text,
                      null::text, null::integer, null::integer;
end;
$$;

-- Stores the replies of the caller's whose writers are dead (silent past
-- alive_until) or that ran past expires_at: what each had written becomes the
-- reply, marked `shutdown` (the worker stopped before the reply was finished),
-- through save_reply, which also deletes the row. Called first by every
-- function that reads or counts replies, so none of them sees a ghost.
create function chat_private.store_dead_replies()
returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  uid uuid := chat_private.caller_id();
  dead record;
begin
  for dead in
    select r.id, r.session_id, r.partial, r.model, r.user_message_id
    from chat_private.replies r
    where r.user_id = uid and (r.alive_until <= now() or r.expires_at <= now())
    for update skip locked
  loop
    perform chat_private.save_reply(dead.id, dead.session_id, dead.partial, dead.model,
                                    'shutdown', null, null, null, dead.user_message_id);
  end loop;
end;
$$;

-- ---------------------------------------------------------------------------
-- Who may call what: authenticated (the function's own transactions) calls
-- the API above; the helpers run only inside it. Postgres lets public execute
-- every new function, and a per-schema default cannot take that back, hence
-- the explicit revoke.

revoke execute on all functions in schema chat_private from public, anon, authenticated;
grant execute on function
  chat_private.send_message(uuid, text, text, integer, integer, integer, integer, integer, text, text),
  chat_private.write_partial(uuid, uuid, text),
  chat_private.save_reply(uuid, uuid, text, text, text, integer, integer, integer, uuid),
  chat_private.release_reply(uuid),
  chat_private.request_stop(uuid),
  chat_private.follow_reply(uuid, uuid)
  to authenticated;
