-- Importing a user's history from another chat app (POST /api/imports).
--
-- The function reads the export file, applies the import's rules (which
-- nodes become messages, the current branch, timestamps) and counts every
-- message's tokens; this function stores the result, all of it or nothing,
-- in one transaction: a session per conversation, its messages as a tree
-- (parent_id), its current leaf (current_message_id), titles and
-- timestamps. Imported messages are ordinary messages from then on (read,
-- searched, exported, continued, budgeted like any other), written only here:
-- users cannot write messages through the Data API.
--
-- Each conversation is imported once per user and source: a retried import
-- (the same file again, a connection lost before the answer) finds what the
-- earlier one stored and adds nothing. Deleting an imported session lets it
-- be imported again.
--
-- An import calls no model, so it does not count against the daily send
-- quota; it has a rolling daily quota of its own, in messages, so that
-- storage stays bounded however many requests a user makes.

-- Imported messages are marked where they came from
-- (public.messages.imported_from, with the table).

-- ---------------------------------------------------------------------------
-- What was imported, per user: the key that makes an import idempotent, and
-- the log its daily quota counts. A row outlives its session (session_id
-- becomes null) so that deleting sessions does not give the quota back; such
-- rows are pruned past the quota's 24 hours.

create table chat_private.imports (
  id bigint generated always as identity primary key,
  user_id uuid not null references public.profiles (id) on delete cascade,
  source text not null check (source in ('chatgpt', 'openwebui')),
  -- the conversation's id in the export file
  source_id text not null check (char_length(source_id) between 1 and 200),
  session_id uuid references public.chat_sessions (id) on delete set null,
  messages integer not null check (messages >= 0),
  imported_at timestamptz not null default now()
);

-- one live session per source conversation: the retry's lookup, and the
-- guarantee should anything else ever write here
create unique index imports_user_id_source_source_id_key
  on chat_private.imports (user_id, source, source_id) where session_id is not null;
-- the quota's window
create index imports_user_id_imported_at_idx on chat_private.imports (user_id, imported_at);
create index imports_session_id_idx on chat_private.imports (session_id);

alter table chat_private.imports enable row level security;
revoke all on table chat_private.imports from anon, authenticated;
grant all on table chat_private.imports to service_role;

-- ---------------------------------------------------------------------------
-- Imports p_conversations (from p_source) for the caller. Each element:
--
--   source_id   the conversation's id in the export
--   title       null: the default title rule, at the conversation's time
--   created_at, updated_at   seconds since the epoch, or null (now); a
--               future time is taken as now
--   current     the index of the current leaf in messages, or null
--   messages    parents before children, each: parent (an index, or null
--               for a root), role, content, tokens, created_at (seconds, or
--               null), model, finish_reason (assistant only)
--
-- Answers one row: outcome 'imported' with sessions (per conversation, in
-- order: source_id, id, title, status 'imported' or 'already_imported',
-- messages stored); or 'over_daily_quota' with retry_after; or
-- 'over_quota_alone' when the import's new messages alone pass the daily
-- quota (it can never go through whole). Refused imports store nothing.
-- 0 switches the quota off.
create function chat_private.import_conversations(
  p_source text,
  p_conversations jsonb,
  p_messages_per_day integer
)
returns table (outcome text, retry_after integer, sessions jsonb)
language plpgsql
security definer
set search_path = ''
as $$
declare
  uid uuid := chat_private.caller_id();
  conversation jsonb;
  existing uuid;
  new_session uuid;
  session_created timestamptz;
  ids uuid[];
  stored integer;
  adding integer;
  imported integer;
  lapses timestamptz;
begin
  -- One import of a user's at a time: a retry racing the first waits for it and
  -- finds what it stored; the quota is counted one import after another. Not the
  -- send's lock: an import does not hold up the user's messages.
  perform pg_advisory_xact_lock(hashtextextended(uid::text, 8));
  sessions := '[]';

  -- the messages this import adds: conversations imported before add none
  select coalesce(sum(jsonb_array_length(c.value -> 'messages')), 0) into adding
  from jsonb_array_elements(p_conversations) c
  where not exists (
    select 1 from chat_private.imports i
    where i.user_id = uid and i.source = p_source and i.source_id = c.value ->> 'source_id'
      and i.session_id is not null
  );
  if p_messages_per_day > 0 and adding > 0 then
    if adding > p_messages_per_day then
      outcome := 'over_quota_alone';
      return next;
      return;
    end if;
    delete from chat_private.imports i
    where i.user_id = uid and i.session_id is null and i.imported_at <= now() - interval '24 hours';
    select coalesce(sum(i.messages), 0) into imported
    from chat_private.imports i
    where i.user_id = uid and i.imported_at > now() - interval '24 hours';
    if imported + adding > p_messages_per_day then
      -- until enough of the last 24 hours' imports have left the window
      select w.imported_at into lapses
      from (
        select i.imported_at,
               sum(i.messages) over (order by i.imported_at, i.id) as leaving
        from chat_private.imports i
        where i.user_id = uid and i.imported_at > now() - interval '24 hours'
      ) w
      where imported - w.leaving + adding <= p_messages_per_day
      order by w.imported_at
      limit 1;
      outcome := 'over_daily_quota';
      retry_after := chat_private.seconds_until(lapses + interval '24 hours');
      return next;
      return;
    end if;
  end if;

  for conversation in select c.value from jsonb_array_elements(p_conversations) c loop
    select i.session_id into existing
    from chat_private.imports i
    where i.user_id = uid and i.source = p_source
      and i.source_id = conversation ->> 'source_id' and i.session_id is not null;
    if existing is not null then
      sessions := sessions || (
        select jsonb_build_object('source_id', conversation ->> 'source_id', 'id', s.id,
                                  'title', s.title, 'status', 'already_imported', 'messages', 0)
        from public.chat_sessions s where s.id = existing
      );
      continue;
    end if;

    stored := jsonb_array_length(conversation -> 'messages');
    -- parents come first, so every parent is stored before its children
    if exists (
      select 1 from jsonb_array_elements(conversation -> 'messages') with ordinality m (value, n)
      where (m.value ->> 'parent')::integer not between 0 and m.n - 2
    ) or (conversation ->> 'current')::integer not between 0 and stored - 1 then
      raise exception 'import: a parent must come before its children, and current be a message'
        using errcode = '22023';
    end if;
    ids := array(select gen_random_uuid() from generate_series(1, stored));
    session_created := least(coalesce(to_timestamp((conversation ->> 'created_at')::float8), now()),
                             now());
    insert into public.chat_sessions (user_id, title, title_set_by, created_at, updated_at)
    values (
      uid,
      coalesce(conversation ->> 'title',
               'New Chat - ' || to_char(session_created at time zone 'utc', 'YYYY-MM-DD HH24:MI:SS')),
      case when conversation ->> 'title' is null then 'default' else 'user' end,
      session_created,
      session_created
    )
    returning id into new_session;

    -- in order, one statement: each row's running total is counted from its parent's
    insert into public.messages (id, chat_session_id, parent_id, role, content, tokens, model,
                                 finish_reason, reply_to, created_at, imported_from)
    select ids[m.n], new_session, ids[p.parent + 1], p.role, p.content, p.tokens, p.model,
           p.finish_reason,
           -- an assistant reply answers the user message it follows
           case when p.role = 'assistant'
                 and conversation -> 'messages' -> p.parent ->> 'role' = 'user'
                then ids[p.parent + 1] end,
           least(coalesce(to_timestamp(p.created_at), session_created), now()),
           p_source
    from jsonb_array_elements(conversation -> 'messages') with ordinality m (value, n)
    cross join lateral jsonb_to_record(m.value) as p (
      parent integer, role text, content text, tokens integer, model text, finish_reason text,
      created_at float8
    )
    order by m.n;

    -- after the messages, whose trigger moves updated_at to now
    update public.chat_sessions s
    set updated_at = greatest(s.created_at, least(
          coalesce(to_timestamp((conversation ->> 'updated_at')::float8), s.created_at), now())),
        current_message_id = ids[(conversation ->> 'current')::integer + 1]
    where s.id = new_session;
    insert into chat_private.imports (user_id, source, source_id, session_id, messages)
    values (uid, p_source, conversation ->> 'source_id', new_session, stored);
    sessions := sessions || (
      select jsonb_build_object('source_id', conversation ->> 'source_id', 'id', s.id,
                                'title', s.title, 'status', 'imported', 'messages', stored)
      from public.chat_sessions s where s.id = new_session
    );
  end loop;
  outcome := 'imported';
  return next;
end;
$$;

revoke execute on function chat_private.import_conversations(text, jsonb, integer)
  from public, anon, authenticated;
grant execute on function chat_private.import_conversations(text, jsonb, integer)
  to authenticated;
