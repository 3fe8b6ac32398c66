-- The agent's database with two roles (psql script; safe to run again):
--   owner  owns the database, the schema and every table: it runs the migrations
--          (`devops-agent db init` with MIGRATION_DATABASE_URL), and nothing else.
--   agent  the service's role: SELECT/INSERT/UPDATE/DELETE on the tables the owner makes
--          (ours and LangGraph's checkpoint tables), sequences for bigserial, nothing more.
--          It owns nothing, so it cannot ALTER, DROP or disable the append-only triggers
--          on approval_actions, and as a non-superuser it cannot
--          SET session_replication_role = replica to skip them.
-- Run as a superuser (or a role with CREATEROLE and CREATEDB), connected to any database:
--   psql -v owner=devops_agent_owner -v agent=devops_agent -v db=devops_agent \
--        -v owner_password="$(cat secrets/db_owner_password)" \
--        -v agent_password="$(cat secrets/db_agent_password)" -f deploy/postgres/roles.sql
-- Passwords are optional (leave them out where the server trusts or uses other methods).
\set ON_ERROR_STOP on

SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'owner') AS make_owner,
       NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'agent') AS make_agent,
       NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') AS make_db \gset
\if :make_owner
CREATE ROLE :"owner" LOGIN;
\endif
\if :make_agent
CREATE ROLE :"agent" LOGIN;
\endif
-- Neither may bypass anything: no superuser, no role or database creation, no replication,
-- no row-security bypass (re-asserted on every run, in case someone widened them).
ALTER ROLE :"owner" NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
ALTER ROLE :"agent" NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT;
\if :{?owner_password}
ALTER ROLE :"owner" PASSWORD :'owner_password';
\endif
\if :{?agent_password}
ALTER ROLE :"agent" PASSWORD :'agent_password';
\endif

\if :make_db
CREATE DATABASE :"db" OWNER :"owner";
\else
ALTER DATABASE :"db" OWNER TO :"owner";
\endif
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
GRANT CONNECT ON DATABASE :"db" TO :"agent";

\connect :"db"
-- The schema belongs to the owner; nobody else may create anything in it.
ALTER SCHEMA public OWNER TO :"owner";
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO :"agent";

-- An install migrated before the roles were split: hand its objects to the owner.
SELECT format('ALTER TABLE public.%I OWNER TO %I', c.relname, :'owner')
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') \gexec
SELECT format('ALTER VIEW public.%I OWNER TO %I', c.relname, :'owner')
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'public' AND c.relkind = 'v' \gexec
SELECT format('ALTER FUNCTION public.%I(%s) OWNER TO %I', p.proname,
              pg_get_function_identity_arguments(p.oid), :'owner')
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'public' \gexec

-- What the owner creates from now on (migrations, LangGraph's set-up) the agent may use...
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO :"agent";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public
    GRANT USAGE, SELECT ON SEQUENCES TO :"agent";
-- ...and so may it what already exists.
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO :"agent";
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO :"agent";
-- The audit trail takes new rows only; the triggers refuse the rest in any case.
SELECT to_regclass('public.approval_actions') IS NOT NULL AS has_audit \gset
\if :has_audit
REVOKE UPDATE, DELETE, TRUNCATE ON approval_actions FROM :"agent";
\endif
SELECT to_regclass('public.decision_refusals') IS NOT NULL AS has_refusals \gset
\if :has_refusals
REVOKE UPDATE, DELETE, TRUNCATE ON decision_refusals FROM :"agent";
\endif
