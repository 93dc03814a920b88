-- Per-user quotas, counted in Postgres: a reply slot is held while a reply
-- streams (freed when it is stored; a slot older than 15 minutes is stale, in
-- case an instance died mid-reply). User messages per rolling 24 hours are
-- counted from messages, along the index below.

create table public.reply_slots (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null default auth.uid() references public.profiles (id) on delete cascade,
  started_at timestamptz not null default now()
);

create index reply_slots_user_id_started_at_idx on public.reply_slots (user_id, started_at);

alter table public.reply_slots enable row level security;

create policy "users can see their own reply slots"
  on public.reply_slots for select to authenticated
  using (user_id = (select auth.uid()));

create policy "users can take reply slots for themselves"
  on public.reply_slots for insert to authenticated
  with check (user_id = (select auth.uid()));

create policy "users can free their own reply slots"
  on public.reply_slots for delete to authenticated
  using (user_id = (select auth.uid()));

revoke all on table public.reply_slots from anon, authenticated;
grant select, delete on table public.reply_slots to authenticated;
grant insert (user_id) on table public.reply_slots to authenticated;
grant all on table public.reply_slots to service_role;

-- a user's messages of the last 24 hours, per session
create index messages_user_messages_created_at_idx
  on public.messages (chat_session_id, created_at) where role = 'user';
