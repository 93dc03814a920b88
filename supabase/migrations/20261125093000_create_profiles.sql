-- Profiles: one row per auth user, created and kept in step by triggers on
-- auth.users so that application tables can reference a public table.
-- A sign-up must never fail because of these triggers: users without an
-- email (phone, anonymous) get a profile with a null email, and an email that
-- another profile already holds is stored as null rather than aborting.

create table public.profiles (
  id uuid primary key references auth.users (id) on delete cascade,
  email text unique,
  created_at timestamptz not null default now()
);

alter table public.profiles enable row level security;

create policy "users can read their own profile"
  on public.profiles for select to authenticated
  using (id = (select auth.uid()));

-- Profiles are written only by the triggers below, never by clients.
revoke all on table public.profiles from anon, authenticated;
grant select on table public.profiles to authenticated;
grant all on table public.profiles to service_role;

create function public.handle_new_user()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  begin
    insert into public.profiles (id, email) values (new.id, new.email);
  exception when unique_violation then
    -- another profile holds this email (SSO users can share one): keep the
    -- sign-up working and leave the email out.
    insert into public.profiles (id, email) values (new.id, null)
    on conflict (id) do nothing;
  end;
  return new;
end;
$$;

create function public.handle_user_email_change()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  begin
    update public.profiles set email = new.email where id = new.id;
  exception when unique_violation then
    update public.profiles set email = null where id = new.id;
  end;
  return new;
end;
$$;

-- Trigger functions are not an API: nobody calls them directly.
revoke execute on function public.handle_new_user() from public, anon, authenticated;
revoke execute on function public.handle_user_email_change() from public, anon, authenticated;

create trigger on_auth_user_created
  after insert on auth.users
  for each row execute function public.handle_new_user();

create trigger on_auth_user_email_changed
  after update of email on auth.users
  for each row
  when (old.email is distinct from new.email)
  execute function public.handle_user_email_change();
