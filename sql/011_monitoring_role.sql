-- swipesavvy: run-as session
-- The group role of the Datadog agent's login (swipesavvy_monitor, created by the stack's
-- login-role path): PostgreSQL's predefined pg_monitor (read the statistics views and
-- settings) and CONNECT, nothing else: no table, schema or function privilege. Runs as the
-- deploying login because creating roles and granting pg_monitor need CREATEROLE (on RDS the
-- master user, whose rds_superuser may grant pg_monitor), which swipesavvy_owner lacks.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'swipesavvy_monitoring') THEN
        CREATE ROLE swipesavvy_monitoring NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;
    END IF;
END
$$;

GRANT pg_monitor TO swipesavvy_monitoring;

DO $$
BEGIN
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO swipesavvy_monitoring', current_database());
END
$$;
