-- Two more ways a reply can end, both decided by the function rather than the
-- model: `max_duration` (cut at REPLY_MAX_SECONDS, inside the platform's wall
-- clock) and `shutdown` (the worker serving it was retired mid-reply). What
-- was streamed up to then is kept either way.

alter table public.messages drop constraint messages_finish_reason_check;

alter table public.messages add constraint messages_finish_reason_check check (
  finish_reason in (
    'stop', 'length', 'content_filter', 'tool_calls',
    'client_closed', 'model_error', 'timeout', 'max_duration', 'shutdown'
  )
);
