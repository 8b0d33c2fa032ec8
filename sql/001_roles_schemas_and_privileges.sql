-- swipesavvy: run-as session
-- Cluster roles, schemas and database-level privileges. This migration runs as the deploying
-- login (not as swipesavvy_owner) because creating roles and revoking PUBLIC's rights
-- on the database and on schema public need the database owner / CREATEROLE, which the
-- object owner role deliberately lacks.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'swipesavvy_readwrite') THEN
        CREATE ROLE swipesavvy_readwrite NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'swipesavvy_readonly') THEN
        CREATE ROLE swipesavvy_readonly NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;
    END IF;
END
$$;

-- Nobody gets to connect or create temp tables by default; only the two groups connect.
DO $$
BEGIN
    EXECUTE format('REVOKE CONNECT, TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO swipesavvy_readwrite, swipesavvy_readonly',
                   current_database());
END
$$;

-- PostgreSQL < 15 lets everyone create in public; close that on every version.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE, CREATE ON SCHEMA public TO swipesavvy_owner;
GRANT USAGE ON SCHEMA public TO swipesavvy_readwrite, swipesavvy_readonly;

-- Views live in their own schema so public keeps exactly the 16 tables the runbook counts
-- (information_schema.tables lists views too). Creating a schema needs CREATE on the
-- database, which the owner role does not get.
CREATE SCHEMA IF NOT EXISTS reporting AUTHORIZATION swipesavvy_owner;
GRANT USAGE ON SCHEMA reporting TO swipesavvy_readwrite, swipesavvy_readonly;
