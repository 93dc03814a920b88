-- The GIN indexes on the search vectors serve no query a user can run: `@@`
-- is not leakproof, so under RLS Postgres must check a row's policy before it
-- may apply `@@` to it, and never uses `@@` as an index condition (EXPLAIN as
-- role authenticated picks a sequential scan even with enable_seqscan off).
-- Search instead starts from the caller's sessions, an index range on
-- user_id, and reads their messages by chat_session_id, so it reads only the
-- caller's rows. The indexes only made every message and title write slower.
-- The stored tsvector columns stay: search ranks and matches with them.

drop index public.messages_search_idx;
drop index public.chat_sessions_search_idx;
