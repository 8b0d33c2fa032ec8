"""The login roles exactly as the Database component declares them, on a real PostgreSQL.

The attributes come from the ``LoginRole`` inputs of the mocked staging run and are applied
by ``dbops.logins.ensure_login`` (what the provider runs), so a change to the component is a
change to what is tested here.
"""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors, sql
from psycopg.conninfo import make_conninfo

from dbops.logins import ensure_login, password_verifier
from dbops.operations import login_spec

PASSWORD = "login-password-0123456789abcdefghijklmn"


@pytest.fixture
def logins(staging, admin_dsn, migrated_dsn):
    """``{role name: dsn}`` for the component's logins, created in the migrated database."""
    specs = [login_spec(r.inputs) for r in staging.of_type("pulumi-python:dynamic/db:LoginRole")]
    with psycopg.connect(migrated_dsn, autocommit=True) as conn:
        for spec in specs:
            ensure_login(conn, spec, PASSWORD)
    yield {spec.name: make_conninfo(migrated_dsn, user=spec.name, password=PASSWORD) for spec in specs}
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        for spec in specs:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(spec.name)))


def test_the_password_reaches_the_server_only_as_a_scram_verifier(migrated_dsn):
    with psycopg.connect(migrated_dsn) as conn:
        verifier = password_verifier(conn, "swipesavvy_backend", PASSWORD)
    assert verifier.startswith("SCRAM-SHA-256$4096:") and PASSWORD not in verifier


def test_analytics_login_reads_and_cannot_write(logins):
    with psycopg.connect(logins["swipesavvy_analytics"], autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM feature_flags").fetchone()[0] == 10
        assert conn.execute("SHOW statement_timeout").fetchone()[0] == "5min"
        for statement in (
            "INSERT INTO merchants (name, category) VALUES ('m', 'food')",
            "UPDATE feature_flags SET enabled = true",
            "DELETE FROM campaigns",
            "TRUNCATE merchants",
            "CREATE TABLE public.x (id int)",
            "CREATE TEMP TABLE x (id int)",
        ):
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute(statement)


def test_backend_login_reads_and_writes(logins):
    with psycopg.connect(logins["swipesavvy_backend"], autocommit=True) as conn:
        conn.execute("INSERT INTO merchants (name, category) VALUES ('Corner Cafe', 'food')")
        conn.execute("UPDATE merchants SET category = 'coffee' WHERE name = 'Corner Cafe'")
        assert conn.execute("SELECT category FROM merchants WHERE name = 'Corner Cafe'").fetchone() == ("coffee",)
        conn.execute("DELETE FROM merchants WHERE name = 'Corner Cafe'")
        conn.execute("UPDATE feature_flags SET enabled = false WHERE key = 'dark_mode'")
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("DROP TABLE merchants")


def test_logins_have_no_privileges_of_their_own(logins, admin_dsn):
    with psycopg.connect(admin_dsn) as conn:
        rows = conn.execute(
            "SELECT rolname, rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolconnlimit FROM pg_roles"
            " WHERE rolname = ANY(%s) ORDER BY rolname",
            (list(logins),),
        ).fetchall()
    assert rows == [
        ("swipesavvy_analytics", False, False, False, False, 10),
        ("swipesavvy_backend", False, False, False, False, 50),
        ("swipesavvy_backend_b", False, False, False, False, 50),
        ("swipesavvy_monitor", False, False, False, False, 5),
        ("swipesavvy_monitor_b", False, False, False, False, 5),
    ]


def test_monitor_login_reads_the_statistics_and_no_data(logins):
    """The Datadog agent's login: pg_monitor through swipesavvy_monitoring, nothing else."""
    with psycopg.connect(logins["swipesavvy_monitor"], autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM pg_stat_activity").fetchone()[0] >= 1
        assert conn.execute("SHOW statement_timeout").fetchone()[0] == "10s"
        for statement in ("SELECT 1 FROM feature_flags", "SELECT 1 FROM reporting.feature_flag_status"):
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute(statement)


def test_backend_login_cannot_delete_flags_or_the_deployment_records(logins):
    with psycopg.connect(logins["swipesavvy_backend"], autocommit=True) as conn:
        for statement in (
            "DELETE FROM feature_flags WHERE key = 'dark_mode'",
            "DELETE FROM swipesavvy_meta.mock_data_seed",
            "DELETE FROM swipesavvy_meta.feature_flag_settings",
            "DELETE FROM swipesavvy_meta.schema_migrations",
        ):
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute(statement)
