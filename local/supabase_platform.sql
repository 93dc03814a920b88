-- The parts of the Supabase platform our migrations rely on, for a plain
-- Postgres (local dev and tests, where `supabase start` cannot run).
-- Not a migration: Supabase itself provides all of this. Idempotent, and a
-- no-op on a database that already is a Supabase one.

do $bootstrap$
begin
  if to_regrole('supabase_auth_admin') is not null then
    raise notice 'Supabase platform already present: bootstrap skipped';
    return;
  end if;

  -- Roles are cluster-wide: databases bootstrapped at once (parallel tests)
  -- race to create them, so a clash means "try again, it exists now".
  for attempt in 1..10 loop
    begin
      if to_regrole('anon') is null then
        create role anon nologin noinherit;
      end if;
      if to_regrole('authenticated') is null then
        create role authenticated nologin noinherit;
      end if;
      if to_regrole('service_role') is null then
        create role service_role nologin noinherit bypassrls;
      end if;
      if to_regrole('authenticator') is null then
        create role authenticator login noinherit;
      end if;
      grant anon, authenticated, service_role to authenticator;
      exit;
    exception when duplicate_object or unique_violation then
      perform pg_sleep(0.05 * attempt);
    end;
  end loop;

  grant usage on schema public to anon, authenticated, service_role;

  -- What a hosted project grants on everything its migrations create in
  -- public (supabase/postgres' initial schema): all of it, to anon and
  -- authenticated too. Locally as well, so a migration that forgets to
  -- revoke is caught by the tests and not first in production.
  alter default privileges in schema public grant all on tables to anon, authenticated, service_role;
  alter default privileges in schema public grant all on functions to anon, authenticated, service_role;
  alter default privileges in schema public grant all on sequences to anon, authenticated, service_role;

  create schema if not exists auth;
  grant usage on schema auth to anon, authenticated, service_role;

  -- The columns Supabase Auth writes that this project touches.
  create table if not exists auth.users (
    id uuid primary key default gen_random_uuid(),
    aud varchar(255) default 'authenticated',
    role varchar(255) default 'authenticated',
    email varchar(255),
    phone text unique,
    raw_app_meta_data jsonb default '{}'::jsonb,
    raw_user_meta_data jsonb default '{}'::jsonb,
    is_anonymous boolean not null default false,
    created_at timestamptz default now(),
    updated_at timestamptz default now()
  );

  -- A user's sessions, as Supabase Auth keeps them (the columns this project reads).
  create table if not exists auth.sessions (
    id uuid primary key default gen_random_uuid(),
    user_id uuid not null references auth.users (id) on delete cascade,
    created_at timestamptz default now(),
    not_after timestamptz
  );

  -- As Supabase defines them: read the claims PostgREST (and our API) set.
  create or replace function auth.uid() returns uuid
  language sql stable
  as $fn$
    select coalesce(
      nullif(current_setting('request.jwt.claim.sub', true), ''),
      (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
    )::uuid
  $fn$;

  create or replace function auth.role() returns text
  language sql stable
  as $fn$
    select coalesce(
      nullif(current_setting('request.jwt.claim.role', true), ''),
      (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
    )::text
  $fn$;

  create or replace function auth.jwt() returns jsonb
  language sql stable
  as $fn$
    select coalesce(
      nullif(current_setting('request.jwt.claim', true), ''),
      nullif(current_setting('request.jwt.claims', true), '')
    )::jsonb
  $fn$;
end
$bootstrap$;
