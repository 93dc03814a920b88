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
-- per client message id (after the current leaf, or beside the message it
-- edits), the history that fits is read up the branch and the reply is
-- created, all in one statement. The reply streams from the function; as it
-- streams, its writer polls the reply's row and, while someone can re-attach
-- to it, appends its new text as parts (write_partial), which is how another
-- connection follows it (follow_reply) or stops it (request_stop); however it
-- ends, it is stored as an assistant message under
-- the reply's id, a child of the message it answers, and its row goes
-- (save_reply, or release_reply when it cannot be stored). Polling, not
-- LISTEN/NOTIFY: it works behind the transaction pooler.
--
-- The tree (public.messages.parent_id, public.chat_sessions.current_message_id)
-- is written here only: a send places its message and makes its branch
-- current; switch_branch and delete_branch move the current leaf. Each takes
-- the per-user lock a send takes, so two devices working on one conversation
-- are decided one after the other: the last request decided makes its branch
-- current, and every branch is kept.

create schema chat_private;
revoke all on schema chat_private from public;
grant usage on schema chat_private to authenticated, service_role;

-- ---------------------------------------------------------------------------
-- Replies being written. A row is the reply while the model writes it: its id
-- is the id the assistant message is stored under, it names the session and
-- the user message it answers (at most one reply per user message while it is
-- written, so concurrent sends, retries or regenerations of one message make
-- one model call; a regeneration adds another reply once this one is
-- stored), and whether a client asked it to stop or follows it (its text, when
-- it is written, is in reply_parts below). The
-- rows are also what the concurrent-reply quota counts. Saving the reply
-- deletes its row; deleting the session deletes it too, which is what the
-- instance streaming the reply sees at its next write; deleting the branch
-- of its message clears user_message_id, which its writer sees the same way.
--
-- A writer that stops reporting is dead. Its instance reads the row at least
-- every REPLY_POLL_MS (a progress write, or the poll while nobody follows, the
-- model is silent or not yet answering) and moves alive_until on by the lease
-- below whenever less than half of it is left (a narrow HOT update every few
-- seconds, not a row version per poll); a row
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
  -- null once its message's branch is deleted: the reply is not stored, and its writer stops
  user_message_id uuid references public.messages (id) on delete set null,
  -- known when the reply starts, so a client re-attaching needs no progress write to learn them
  model text not null,
  -- the stream protocol the reply was asked for, which a re-attached stream speaks too
  protocol text not null check (protocol in ('text', 'data', 'sse', 'ui')),
  stop_requested boolean not null default false,
  -- set by the first re-attached reader (follow_reply): from then on the writer appends its text
  -- to reply_parts; before, it writes none unless its client left a reply that goes on
  followed boolean not null default false,
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

-- The text of a reply being written, append-only: each progress write inserts
-- only what is new, as a part starting at char_offset (in characters, as
-- Postgres counts them), so the WAL a reply costs grows with its length, not
-- with its length times the writes (rewriting one growing text value rewrote
-- all of it, TOAST included, at every write). The parts are contiguous and in
-- order: the writer is the only one, and writes one part at a time. They go
-- with their reply's row (saved, released, its session deleted). Nothing is
-- written here while nobody can re-attach (replies.followed; write_partial).
create table chat_private.reply_parts (
  reply_id uuid not null references chat_private.replies (id) on delete cascade,
  char_offset integer not null check (char_offset >= 0),
  content text not null,
  primary key (reply_id, char_offset)
);

alter table chat_private.reply_parts enable row level security;
revoke all on table chat_private.reply_parts from anon, authenticated;
grant all on table chat_private.reply_parts to service_role;

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

-- The message a request names (AI SDK 5+'s messageId: the message to edit or
-- to answer again), by its id or by the client's id for it, in one of the
-- caller's sessions (send_message checked whose). A message's id wins over a
-- client id that happens to spell it. A client keeps its own id for a message
-- it edited (AI SDK's sendMessage({ text, messageId })) and shows the new
-- text under it, so a client id whose message holds another text than the
-- client shows (p_content) names the newest edit beside it with that text,
-- if there is one. No row: none.
create function chat_private.named_message(p_session_id uuid, p_ref text, p_content text)
returns table (id uuid, role text, parent_id uuid)
language plpgsql
stable
set search_path = ''
as $$
declare
  by_id uuid;
  found_id uuid;
  found_role text;
  found_parent uuid;
  found_content text;
  by_client boolean;
  edited uuid;
begin
  if p_ref ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
    by_id := p_ref::uuid;
  end if;
  select m.id, m.role, m.parent_id, m.content, m.id is distinct from by_id
  into found_id, found_role, found_parent, found_content, by_client
  from public.messages m
  where m.chat_session_id = p_session_id and (m.id = by_id or m.client_message_id = p_ref)
  order by m.id is not distinct from by_id desc
  limit 1;
  if found_id is null then
    return;
  end if;
  if by_client and found_role = 'user' and p_content <> '' and found_content <> p_content then
    -- its siblings: the session's first messages, or its parent's children
    if found_parent is null then
      select m.id into edited from public.messages m
      where m.chat_session_id = p_session_id and m.parent_id is null
        and m.role = 'user' and m.content = p_content
      order by m.seq desc
      limit 1;
    else
      select m.id into edited from public.messages m
      where m.parent_id = found_parent and m.role = 'user' and m.content = p_content
      order by m.seq desc
      limit 1;
    end if;
    found_id := coalesce(edited, found_id);
  end if;
  return query select found_id, found_role, found_parent;
end;
$$;

-- The newest leaf under a message (itself when nothing follows it): the
-- newest message of its subtree, which has no children, as a child is always
-- numbered after its parent.
create function chat_private.newest_leaf(p_message_id uuid)
returns uuid
language sql
stable
set search_path = ''
as $$
  with recursive subtree (id, seq) as (
    select m.id, m.seq from public.messages m where m.id = p_message_id
    union all
    select c.id, c.seq from subtree t join public.messages c on c.parent_id = t.id
  )
  select t.id from subtree t order by t.seq desc limit 1;
$$;

-- ---------------------------------------------------------------------------
-- Sends a user message, decided once: one row whose outcome says what
-- happened, and what that outcome needs.
--
--   new               stored after the current leaf; the reply is created:
--                     user_message_id, reply_id, untitled, history (the newest
--                     turns of its branch that fit p_history_tokens, oldest
--                     first, this message last)
--   edit              stored beside the user message p_message_id names (same
--                     parent), as new
--   regenerate        another reply to a stored user message, as new: the one
--                     p_message_id names (a reply: the message it answers),
--                     else the request's own message p_client_message_id,
--                     else the current branch's last user message
--   retry             the message was stored by an earlier send with this client
--                     message id and its reply did not finish: asked again, as new
--   replay            that earlier send's reply finished: reply_id and the reply
--                     (content, model, finish_reason, usage), answered again
--   conflict          the client message id holds a different message
--   superseded        a retry of a message that later user messages followed
--   busy              a reply to this very message is being written
--   not_found         the session is another user's
--   message_not_found p_message_id names no message of this session
--   not_a_user_message  p_message_id names a message that cannot be edited
--                     or answered (a system message; a reply to edit)
--   over_daily_quota  p_messages_per_day sends in the last 24 hours; retry_after
--   over_reply_quota  p_concurrent_replies replies being written; retry_after
--
-- Every send that asks the model makes its message's branch current: the
-- last request decided (under the per-user lock) wins; its reply extends the
-- branch when stored, unless another branch was made current meanwhile.
-- p_message_id that names nothing stored but is the request's own message id
-- (an edit of a message whose first send was refused) is a plain send.
--
-- Only a send that asks the model counts against the quotas: a replay is
-- answered even at the limit. A refused send stores nothing. 0 switches a
-- limit off. p_tokens and p_history_tokens count the request's message; a
-- regeneration answers a stored one, whose own stored count replaces it.
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
  p_protocol text,
  p_regenerate boolean default false,
  p_message_id text default null
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
  current_leaf uuid;
  -- the message the request names, and what it is
  named_id uuid;
  named_role text;
  named_parent uuid;
  -- what the send does: 'new', 'edit', 'regenerate' (or a retry, found below)
  mode text := 'new';
  client_id text := p_client_message_id;
  -- the user message the model is asked to answer
  message_id uuid;
  message_tokens_before bigint;
  earlier_content text;
  room bigint := p_history_tokens;
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
  if owner is not null then
    -- the current leaf, held until this send commits: a reply being stored
    -- meanwhile cannot move it from under this send
    select s.current_message_id into current_leaf
    from public.chat_sessions s where s.id = p_session_id
    for update;
  end if;

  -- The message the request names, if any.
  if p_message_id is not null then
    select n.id, n.role, n.parent_id into named_id, named_role, named_parent
    from chat_private.named_message(p_session_id, p_message_id, p_content) n;
    if named_id is null and p_message_id is distinct from p_client_message_id then
      outcome := 'message_not_found';
      return next;
      return;
    end if;
  end if;
  if p_regenerate and named_id is null and p_message_id is null then
    if p_client_message_id is not null then
      -- the request's own last message; one never stored is sent
      select n.id, n.role, n.parent_id into named_id, named_role, named_parent
      from chat_private.named_message(p_session_id, p_client_message_id, p_content) n;
    elsif current_leaf is not null then
      select m.id, m.role, m.parent_id into named_id, named_role, named_parent
      from public.messages m where m.id = current_leaf;
    end if;
  end if;

  if p_regenerate and named_id is not null then
    -- a reply is regenerated by answering its message again
    if named_role = 'assistant' and named_parent is not null then
      select m.id, m.role into named_id, named_role from public.messages m where m.id = named_parent;
    end if;
    if named_role <> 'user' then
      outcome := 'not_a_user_message';
      return next;
      return;
    end if;
    mode := 'regenerate';
    select m.id, m.tokens_before, room + p_tokens - coalesce(m.tokens, octet_length(m.content))
    into message_id, message_tokens_before, room
    from public.messages m where m.id = named_id;
  elsif named_id is not null then
    if named_role <> 'user' then
      outcome := 'not_a_user_message';
      return next;
      return;
    end if;
    mode := 'edit';
    -- an AI SDK client keeps the edited message's id for its edit: the id is the original's
    if client_id = p_message_id then
      client_id := null;
    end if;
  end if;

  if mode <> 'regenerate' and p_content = '' then
    -- a regeneration with no message of its own, in a session with nothing to answer
    outcome := 'message_not_found';
    return next;
    return;
  end if;

  -- a client message id stored before: this send is a retry of that message
  if mode <> 'regenerate' and client_id is not null then
    select m.id, m.tokens_before, m.content
    into message_id, message_tokens_before, earlier_content
    from public.messages m
    where m.chat_session_id = p_session_id and m.client_message_id = client_id;
  end if;
  if mode <> 'regenerate' and message_id is not null then
    if earlier_content <> p_content then
      outcome := 'conflict';
      return next;
      return;
    end if;
    user_message_id := message_id;
    -- a finished reply (a stopped one is finished as the user chose) is answered
    -- again: the newest, when it was regenerated
    select a.id, a.content, a.model, a.finish_reason, a.prompt_tokens, a.completion_tokens
    into reply_id, content, model, finish_reason, prompt_tokens, completion_tokens
    from public.messages a
    where a.reply_to = message_id
      and a.finish_reason in ('stop', 'length', 'content_filter', 'tool_calls', 'stopped')
    order by a.seq desc
    limit 1;
    if found then
      outcome := 'replay';
      return next;
      return;
    end if;
    -- a later user message follows it: one of its children, or anything after
    -- one of its replies
    if exists (
      select 1 from public.messages c
      where c.parent_id = message_id
        and (c.role = 'user' or exists (select 1 from public.messages g where g.parent_id = c.id))
    ) then
      outcome := 'superseded';
      return next;
      return;
    end if;
    mode := 'retry';
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

  if mode in ('new', 'edit') then
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
    -- a new message follows the current leaf; an edit goes beside the message it edits
    insert into public.messages as m
      (chat_session_id, parent_id, role, content, client_message_id, tokens)
    values (p_session_id, case when mode = 'edit' then named_parent else current_leaf end,
            'user', p_content, client_id, p_tokens)
    returning m.id, m.tokens_before into message_id, message_tokens_before;
  end if;
  outcome := mode;
  user_message_id := message_id;

  -- The reply. Under the lock no other send of this user races it; the unique
  -- key makes one reply per message at a time hold whatever happens.
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
  -- the branch this send answers is current, decided last (a new message after the current
  -- leaf was made current by its trigger already: no second write of the session's row)
  update public.chat_sessions s set current_message_id = message_id
  where s.id = p_session_id and s.current_message_id is distinct from message_id;

  -- The newest turns of the message's branch that fit the room the budget
  -- leaves, read up the branch from the message by primary key, stopping at
  -- the first that does not fit: only what fits is read, however long the
  -- session or its branch. A reply that failed before its first word says
  -- nothing to the model. A session this send created has no earlier
  -- turns: its history is this message.
  if owner is null then
    history := json_build_array(json_build_object('role', 'user', 'content', p_content));
  else
    with recursive branch (id, parent_id) as (
      select e.id, e.parent_id from public.messages e where e.id = message_id
      union all
      select p.id, p.parent_id from branch b join public.messages p on p.id = b.parent_id
      where p.tokens_before >= message_tokens_before - room
    )
    select coalesce(
      json_agg(json_build_object('role', m.role, 'content', m.content) order by m.seq), '[]'
    )
    into history
    from branch b join public.messages m on m.id = b.id
    where not (m.role = 'assistant' and m.content = '');
  end if;
  return next;
end;
$$;

-- ---------------------------------------------------------------------------
-- The writer's progress write and poll, one round trip (the instance streaming
-- the reply, the only writer, calls it in order): appends p_delta, when there
-- is one, as the part starting at p_offset (characters), and answers what
-- became of the reply: 'streaming', 'followed' (streaming, and a re-attached
-- reader asked for its text: the writer writes it from now on), 'stopped' (a
-- client asked), 'released' (its row is gone: its writer was taken for dead
-- and what it had written stored) or 'session_deleted' (the reply must stop:
-- its session, or the branch of its message, was deleted; there is nowhere to
-- store it, and its row goes now). Without a delta it is a read, and it moves
-- the writer's lease (alive_until) on only once less than half of it is left:
-- a reply nobody follows costs a read a second and a narrow update every few
-- seconds. A part written twice (a write that failed at the client after it
-- committed, sent again with more text) keeps the longer text.
create function chat_private.write_partial(
  p_id uuid,
  p_session_id uuid,
  p_delta text,
  p_offset integer
)
returns text
language plpgsql
security definer
set search_path = ''
as $$
declare
  uid uuid := chat_private.caller_id();
  stopping boolean;
  answering uuid;
  is_followed boolean;
  renew boolean;
begin
  -- the read takes no lock: a row lock is a write of its own (the tuple's
  -- header, and WAL), which a reply nobody follows would then pay every second
  if p_delta = '' then
    select r.stop_requested, r.user_message_id, r.followed,
           r.alive_until < now() + chat_private.writer_lease() / 2
    into stopping, answering, is_followed, renew
    from chat_private.replies r
    where r.id = p_id and r.user_id = uid;
  else
    -- held (key share) until the part is in, so the row cannot go in between (the part's
    -- foreign key would refuse it)
    select r.stop_requested, r.user_message_id, r.followed,
           r.alive_until < now() + chat_private.writer_lease() / 2
    into stopping, answering, is_followed, renew
    from chat_private.replies r
    where r.id = p_id and r.user_id = uid
    for key share;
    if stopping is not null then
      insert into chat_private.reply_parts as p (reply_id, char_offset, content)
      values (p_id, p_offset, p_delta)
      on conflict (reply_id, char_offset) do update set content = excluded.content
      where char_length(excluded.content) > char_length(p.content);
    end if;
  end if;
  if renew then
    update chat_private.replies r set alive_until = now() + chat_private.writer_lease()
    where r.id = p_id;
  end if;
  if not exists (
    select 1 from public.chat_sessions s where s.id = p_session_id and s.user_id = uid
  ) then
    return 'session_deleted';
  end if;
  if stopping is not null and answering is null then
    delete from chat_private.replies r where r.id = p_id;
    return 'session_deleted';
  end if;
  if stopping is null then
    return 'released';
  end if;
  return case when stopping then 'stopped' when is_followed then 'followed' else 'streaming' end;
end;
$$;

-- Stores a reply as an assistant message under its id, in the caller's
-- session, a child of the user message it answers (p_reply_to), and deletes
-- its row (which frees it for the quota). The message may have other
-- answers: a regeneration is stored beside them; an unfinished earlier answer
-- that nothing followed is replaced (a retry). Stored while its message is
-- the current leaf, it extends the current branch (the insert's trigger).
-- False when the session or the message is gone (deleted while the reply
-- streamed) or the reply was stored already: the row goes all the same.
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
  unfinished uuid[];
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
  select array_agg(m.id) into unfinished
  from public.messages m
  where m.reply_to = p_reply_to and m.chat_session_id = p_session_id
    and m.finish_reason in ('client_closed', 'model_error', 'timeout', 'max_duration', 'shutdown')
    and not exists (select 1 from public.messages c where c.parent_id = m.id);
  if unfinished is not null then
    -- the current branch ending in a replaced answer ends at its message, which this one extends
    update public.chat_sessions s set current_message_id = p_reply_to
    where s.id = p_session_id and s.current_message_id = any (unfinished);
    delete from public.messages m where m.id = any (unfinished);
  end if;
  insert into public.messages (id, chat_session_id, parent_id, role, content, model,
                               finish_reason, tokens, prompt_tokens, completion_tokens, reply_to)
  values (p_id, p_session_id, coalesce(p_reply_to, '00000000-0000-0000-0000-000000000000'),
          'assistant', p_content, p_model, p_finish_reason, p_tokens, p_prompt_tokens,
          p_completion_tokens, p_reply_to)
  on conflict (id) do nothing
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
-- text written from character p_after on, 'stored' with the stored reply from
-- p_after on (its row gone; protocol null), or 'gone' (nothing is being
-- written; or the reply followed was not stored: its session deleted).
-- text_length is where the text read ends (the next p_after). A reader reads
-- only what it has not received: the part holding p_after, cut, and those
-- after it. p_after null reads no text of a streaming reply (a stop waiting
-- for it to end; a re-attach learning what streams) and the whole of a stored
-- one. Reading text (p_after not null) marks the reply followed, so its
-- writer starts writing its text: until then it writes none.
create function chat_private.follow_reply(
  p_session_id uuid,
  p_id uuid default null,
  p_after integer default null
)
returns table (
  state text,
  id uuid,
  user_message_id uuid,
  model text,
  protocol text,
  content text,
  text_length integer,
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
  reply chat_private.replies%rowtype;
  first_part integer;
begin
  -- a dead writer's reply is stored now, so a follower reads how it ended
  perform chat_private.store_dead_replies();
  select r.* into reply
  from chat_private.replies r
  where r.session_id = p_session_id and r.user_id = uid and r.expires_at > now()
    and (p_id is null or r.id = p_id)
  order by r.expires_at desc
  limit 1;
  if found then
    if p_after is null then
      return query select 'streaming', reply.id, reply.user_message_id, reply.model,
                          reply.protocol, null::text, null::integer, null::text, null::integer,
                          null::integer;
      return;
    end if;
    if not reply.followed then
      update chat_private.replies r set followed = true where r.id = reply.id;
    end if;
    -- the part p_after falls in (or the first), by the primary key
    select max(p.char_offset) into first_part
    from chat_private.reply_parts p
    where p.reply_id = reply.id and p.char_offset <= p_after;
    return query
      select 'streaming', reply.id, reply.user_message_id, reply.model, reply.protocol,
             coalesce(string_agg(substr(p.content, greatest(p_after - p.char_offset, 0) + 1), ''
                                 order by p.char_offset), ''),
             greatest(coalesce(max(p.char_offset + char_length(p.content)), 0), p_after),
             null::text, null::integer, null::integer
      from chat_private.reply_parts p
      where p.reply_id = reply.id and p.char_offset >= coalesce(first_part, 0);
    return;
  end if;
  if p_id is not null then
    return query
      select 'stored', m.id, m.reply_to, m.model, null::text,
             substr(m.content, coalesce(p_after, 0) + 1), char_length(m.content),
             m.finish_reason, m.prompt_tokens, m.completion_tokens
      from public.messages m
      join public.chat_sessions s on s.id = m.chat_session_id
      where m.id = p_id and s.id = p_session_id and s.user_id = uid;
    if found then
      return;
    end if;
  end if;
  return query select 'gone', null::uuid, null::uuid, null::text, null::text, null::text,
                      null::integer, null::text, null::integer, null::integer;
end;
$$;

-- Stores the replies of the caller's whose writers are dead (silent past
-- alive_until) or that ran past expires_at: what each had written becomes the
-- reply, marked `shutdown` (the worker stopped before the reply was finished),
-- through save_reply, which also deletes the row (and its parts). What it had
-- written is its parts: only the text written while someone could re-attach
-- (a follower, or its client gone from a reply that goes on); a reply nobody
-- could have come back for is stored empty, `shutdown` all the same. Called
-- first by every function that reads or counts replies, so none of them sees
-- a ghost: every send, stop and follower's poll. Nearly always there is none,
-- so a plain index probe answers that first; only a dead reply opens the
-- locking loop (a third of the function's server time per send, 147 to 99 µs,
-- by track_functions over 1,500 sends).
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
  if not exists (
    select 1 from chat_private.replies r
    where r.user_id = uid and (r.alive_until <= now() or r.expires_at <= now())
  ) then
    return;
  end if;
  for dead in
    select r.id, r.session_id, r.model, r.user_message_id,
           (select coalesce(string_agg(p.content, '' order by p.char_offset), '')
            from chat_private.reply_parts p where p.reply_id = r.id) as written
    from chat_private.replies r
    where r.user_id = uid and (r.alive_until <= now() or r.expires_at <= now())
    for update skip locked
  loop
    if dead.user_message_id is null then
      -- the branch it answered was deleted: there is nowhere to store it
      delete from chat_private.replies r where r.id = dead.id;
    else
      perform chat_private.save_reply(dead.id, dead.session_id, dead.written, dead.model,
                                      'shutdown', null, null, null, dead.user_message_id);
    end if;
  end loop;
end;
$$;

-- ---------------------------------------------------------------------------
-- The current branch, moved by hand. Both take the per-user lock a send takes,
-- so a switch and a send are decided one after the other.

-- Makes the branch through p_message_id current, to its newest leaf (the
-- message itself when nothing follows it). Answers the new current leaf, or
-- why not: 'session_not_found' (not the caller's), 'message_not_found' (not
-- a message of that session).
create function chat_private.switch_branch(p_session_id uuid, p_message_id uuid)
returns table (outcome text, current_message_id uuid)
language plpgsql
security definer
set search_path = ''
as $$
declare
  uid uuid := chat_private.caller_id();
begin
  perform pg_advisory_xact_lock(hashtextextended(uid::text, 7));
  if not exists (
    select 1 from public.chat_sessions s where s.id = p_session_id and s.user_id = uid
  ) then
    outcome := 'session_not_found';
    return next;
    return;
  end if;
  if not exists (
    select 1 from public.messages m where m.id = p_message_id and m.chat_session_id = p_session_id
  ) then
    outcome := 'message_not_found';
    return next;
    return;
  end if;
  outcome := 'switched';
  current_message_id := chat_private.newest_leaf(p_message_id);
  update public.chat_sessions s set current_message_id = switch_branch.current_message_id
  where s.id = p_session_id;
  return next;
end;
$$;

-- Deletes p_message_id and everything after it (its subtree: a branch), in
-- one statement (a cascade from message to message would nest as deep as the
-- branch is long). A reply being written in it stops (write_partial). When
-- the current leaf was in it, the current branch moves to the newest leaf
-- under the deleted message's parent (the parent itself when nothing else
-- follows it), or, for a first message, to the session's newest message.
-- Answers how many messages went and the current leaf, or why not, as
-- switch_branch.
create function chat_private.delete_branch(p_session_id uuid, p_message_id uuid)
returns table (outcome text, deleted integer, current_message_id uuid)
language plpgsql
security definer
set search_path = ''
as $$
declare
  uid uuid := chat_private.caller_id();
  parent uuid;
  current_in_it boolean;
begin
  perform pg_advisory_xact_lock(hashtextextended(uid::text, 7));
  select s.current_message_id into current_message_id
  from public.chat_sessions s where s.id = p_session_id and s.user_id = uid
  for update;
  if not found then
    outcome := 'session_not_found';
    return next;
    return;
  end if;
  select m.parent_id into parent
  from public.messages m where m.id = p_message_id and m.chat_session_id = p_session_id;
  if not found then
    outcome := 'message_not_found';
    current_message_id := null;
    return next;
    return;
  end if;
  -- whether the current leaf is in the subtree: p_message_id is on its branch
  with recursive branch (id, parent_id) as (
    select m.id, m.parent_id from public.messages m where m.id = delete_branch.current_message_id
    union all
    select p.id, p.parent_id from branch b join public.messages p on p.id = b.parent_id
  )
  select exists (select 1 from branch b where b.id = p_message_id) into current_in_it;
  with recursive subtree (id) as (
    select p_message_id
    union all
    select c.id from subtree t join public.messages c on c.parent_id = t.id
  )
  delete from public.messages m using subtree t where m.id = t.id;
  get diagnostics deleted = row_count;
  if current_in_it then
    if parent is null then
      select m.id into current_message_id from public.messages m
      where m.chat_session_id = p_session_id
      order by m.seq desc
      limit 1;
    else
      current_message_id := chat_private.newest_leaf(parent);
    end if;
    update public.chat_sessions s set current_message_id = delete_branch.current_message_id
    where s.id = p_session_id;
  end if;
  outcome := 'deleted';
  return next;
end;
$$;

-- ---------------------------------------------------------------------------
-- Who may call what: authenticated (the function's own transactions) calls
-- the API above; the helpers run only inside it. Postgres lets public execute
-- every new function, and a per-schema default cannot take that back, hence
-- the explicit revoke.

revoke execute on all functions in schema chat_private from public, anon, authenticated;
grant execute on function
  chat_private.send_message(uuid, text, text, integer, integer, integer, integer, integer, text, text,
                            boolean, text),
  chat_private.switch_branch(uuid, uuid),
  chat_private.delete_branch(uuid, uuid),
  chat_private.write_partial(uuid, uuid, text, integer),
  chat_private.save_reply(uuid, uuid, text, text, text, integer, integer, integer, uuid),
  chat_private.release_reply(uuid),
  chat_private.request_stop(uuid),
  chat_private.follow_reply(uuid, uuid, integer)
  to authenticated;
