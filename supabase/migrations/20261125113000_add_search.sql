-- Full-text search over a user's sessions: titles and message contents, each
-- with a stored tsvector and a GIN index. The 'simple' configuration does not
-- stem, so it treats every language alike (conversations are multilingual).

alter table public.chat_sessions
  add column search tsvector generated always as (to_tsvector('simple', title)) stored;

create index chat_sessions_search_idx on public.chat_sessions using gin (search);

alter table public.messages
  add column search tsvector generated always as (to_tsvector('simple', content)) stored;

create index messages_search_idx on public.messages using gin (search);
