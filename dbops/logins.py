"""The application's login roles: created, kept as declared, read back and dropped.

Plain psycopg 3, no Pulumi: the ``LoginRole`` dynamic resource and the tests call these.
The password never travels to the server in clear text: libpq turns it into a
SCRAM-SHA-256 verifier on the client (as psql's \\password does), so statement logging
(``log_statement = ddl`` on RDS) records the verifier, not the password.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql

# What an application login never gets. Only a superuser may change the superuser,
# replication and bypass-RLS attributes, so ALTER (by the non-superuser RDS master) leaves
# them as CREATE set them.
_ALTERABLE_ATTRIBUTES = "LOGIN NOCREATEDB NOCREATEROLE INHERIT"
_CREATE_ATTRIBUTES = f"{_ALTERABLE_ATTRIBUTES} NOSUPERUSER NOREPLICATION NOBYPASSRLS"


@dataclass(frozen=True)
class LoginSpec:
    name: str
    group: str  # the group role (created by the migrations) whose privileges it uses
    connection_limit: int
    statement_timeout_ms: int = 0  # 0: the server's default


def password_verifier(conn: psycopg.Connection, role: str, password: str) -> str:
    return conn.pgconn.encrypt_password(password.encode(), role.encode(), b"scram-sha-256").decode()


def _memberships(conn: psycopg.Connection, role: str) -> list[str]:
    rows = conn.execute(
        "SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid"
        " JOIN pg_roles r ON r.oid = m.member WHERE r.rolname = %s ORDER BY 1",
        (role,),
    )
    return [name for (name,) in rows]


def ensure_login(conn: psycopg.Connection, spec: LoginSpec, password: str) -> None:
    """Create the login or bring it back to ``spec``, with ``password``, in one transaction."""
    role = sql.Identifier(spec.name)
    with conn.transaction():
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (spec.name,)).fetchone()
        statement = (
            f"ALTER ROLE {{}} WITH {_ALTERABLE_ATTRIBUTES}" if exists else f"CREATE ROLE {{}} WITH {_CREATE_ATTRIBUTES}"
        )
        conn.execute(
            sql.SQL(statement + " CONNECTION LIMIT {} PASSWORD {}").format(
                role, sql.Literal(spec.connection_limit), sql.Literal(password_verifier(conn, spec.name, password))
            )
        )
        for group in _memberships(conn, spec.name):
            if group != spec.group:  # joined by hand: not what the stack declares
                conn.execute(sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(group), role))
        conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(spec.group), role))
        if spec.statement_timeout_ms:
            conn.execute(
                sql.SQL("ALTER ROLE {} SET statement_timeout = {}").format(
                    role, sql.Literal(str(spec.statement_timeout_ms))
                )
            )
        else:
            conn.execute(sql.SQL("ALTER ROLE {} RESET statement_timeout").format(role))


def read_login(conn: psycopg.Connection, name: str) -> LoginSpec | None:
    """The login as the server holds it now; None when it does not exist."""
    row = conn.execute(
        "SELECT r.rolconnlimit, (SELECT s.setting FROM pg_db_role_setting d, unnest(d.setconfig) s(setting)"
        "  WHERE d.setrole = r.oid AND d.setdatabase = 0 AND s.setting LIKE 'statement\\_timeout=%%')"
        " FROM pg_roles r WHERE r.rolname = %s",
        (name,),
    ).fetchone()
    if row is None:
        return None
    limit, timeout = row
    timeout_value = timeout.split("=", 1)[1] if timeout else "0"
    groups = _memberships(conn, name)
    return LoginSpec(
        name=name,
        group=",".join(groups),
        connection_limit=limit,
        statement_timeout_ms=int(timeout_value) if timeout_value.isdigit() else -1,
    )


def drop_login(conn: psycopg.Connection, name: str) -> None:
    conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))
