-- Generated titles, recorded usage, and token counts for budgeted history.
-- title_set_by says who wrote a session's title, so a generated title never
-- overwrites one the user chose, even when the rename lands first.
-- prompt_tokens / completion_tokens record what each assistant reply cost,
-- as the model reported it. tokens is a message's own token count, stored
-- when it is written, so the history that fits a budget is chosen in SQL.

alter table public.chat_sessions
  add column title_set_by text not null default 'default'
    check (title_set_by in ('default', 'model', 'user'));

grant update (title_set_by) on table public.chat_sessions to authenticated;

alter table public.messages
  add column tokens integer check (tokens >= 0),
  add column prompt_tokens integer check (prompt_tokens >= 0),
  add column completion_tokens integer check (completion_tokens >= 0),
  add constraint messages_usage_only_for_assistant
    check (role = 'assistant' or (prompt_tokens is null and completion_tokens is null));

grant insert (tokens, prompt_tokens, completion_tokens) on table public.messages to authenticated;
