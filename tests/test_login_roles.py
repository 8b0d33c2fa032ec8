"""The login roles exactly as the Database component declares them, on a real PostgreSQL.

The attributes come from the ``postgresql.Role`` inputs of the mocked staging run, so a
change to the component is a change to what is tested here.
"""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors, sql
from psycopg.conninfo import make_conninfo
from pulumi_program import unwrap


def create_like_the_component(admin_dsn: str, inputs: dict) -> str:
    """CREATE ROLE with the attributes the pulumi_postgresql provider would set."""
    name = unwrap(inputs["name"])
    flags = [
        "LOGIN" if inputs["login"] else "NOLOGIN",
        "SUPERUSER" if inputs["superuser"] else "NOSUPERUSER",
        "CREATEDB" if inputs["createDatabase"] else "NOCREATEDB",
        "CREATEROLE" if inputs["createRole"] else "NOCREATEROLE",
        "INHERIT" if inputs["inherit"] else "NOINHERIT",
        "REPLICATION" if inputs["replication"] else "NOREPLICATION",
    ]
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))
        conn.execute(
            sql.SQL("CREATE ROLE {} " + " ".join(flags) + " CONNECTION LIMIT {} PASSWORD {}").format(
                sql.Identifier(name),
                sql.Literal(int(inputs["connectionLimit"])),
                sql.Literal(unwrap(inputs["password"])),
            )
        )
        for group in inputs["roles"]:
            conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(group), sql.Identifier(name)))
        if inputs.get("statementTimeout"):
            conn.execute(
                sql.SQL("ALTER ROLE {} SET statement_timeout = {}").format(
                    sql.Identifier(name), sql.Literal(int(inputs["statementTimeout"]))
                )
            )
    return name


@pytest.fixture
def logins(staging, admin_dsn, migrated_dsn):
    """``{role name: dsn}`` for the component's two logins, created in the migrated database."""
    roles = staging.of_type("postgresql:index/role:Role")
    names = [create_like_the_component(admin_dsn, role.inputs) for role in roles]
    yield {name: make_conninfo(migrated_dsn, user=name) for name in names}
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        for name in names:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


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
    ]


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
