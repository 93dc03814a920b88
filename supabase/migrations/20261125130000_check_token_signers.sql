-- Who may have signed a token the Auth server would be asked about.
--
-- On projects whose users hold HS256 tokens (the legacy secret, or mid-migration)
-- only the project's Auth server can check a token's signature, and every forged
-- token it is asked about is a call to Auth. A forger can copy every claim of a
-- real token but the session: a real user's open session id is known only to
-- that user's client. So before asking Auth, the function asks the database
-- whether the user a token names exists and, when the token names a session,
-- whether that session is open (supabase/functions/api/signers.ts). A flood of
-- forged tokens is then refused here, many per round trip, and Auth hears only
-- of signers that exist.
--
-- Called before anyone is signed in, so as `anon`, and granted to anon alone.
-- It says only yes or no to a pair of ids nobody can guess, reads nothing else,
-- and, like every chat_private function, refuses to run in a Data API request.

create function chat_private.live_signers(p_users uuid[], p_sessions uuid[])
returns table (live boolean)
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  if coalesce(current_setting('request.method', true), '') <> '' then
    raise exception 'chat_private is not part of the Data API' using errcode = '42501';
  end if;
  return query
    select exists (select 1 from public.profiles p where p.id = asked.user_id)
           and (asked.session_id is null or exists (
             select 1 from auth.sessions s
             where s.id = asked.session_id and s.user_id = asked.user_id
               and (s.not_after is null or s.not_after > now())
           ))
    from unnest(p_users, p_sessions) with ordinality as asked (user_id, session_id, n)
    order by asked.n;
end;
$$;

revoke execute on function chat_private.live_signers(uuid[], uuid[]) from public;
grant usage on schema chat_private to anon;
grant execute on function chat_private.live_signers(uuid[], uuid[]) to anon;
