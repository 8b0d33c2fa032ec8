"""Opening PostgreSQL connections for the CLI, the dynamic providers and the tests.

One place turns a DSN or a connection mapping into a psycopg connection and turns
libpq's multi-line failures into one line that never contains the password.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

APPLICATION_NAME = "swipesavvy-ops"
CONNECT_TIMEOUT_SECONDS = 10


class DatabaseUnavailable(Exception):
    """The database could not be reached or refused the login; the message is one line."""


class InvalidConnectionString(ValueError):
    """The DSN itself is malformed; the message is one line."""


def conninfo_from_mapping(connection: Mapping[str, Any]) -> str:
    """Build a libpq conninfo from the ``connection`` mapping the Pulumi resources carry.

    Keys: host, port, dbname, user, password, sslmode (all but host/dbname/user optional).
    """
    params = {
        k: connection[k]
        for k in ("host", "port", "dbname", "user", "password", "sslmode")
        if connection.get(k) not in (None, "")
    }
    return make_conninfo(**params)


def describe(conninfo: str) -> str:
    """``user@host:port/dbname`` for messages: never the password."""
    params = conninfo_to_dict(conninfo)
    host = params.get("host") or "localhost"
    port = params.get("port") or 5432
    return f"{params.get('user', '?')}@{host}:{port}/{params.get('dbname', '?')}"


def _one_line(error: psycopg.Error) -> str:
    """The most specific line of a libpq error: the server's FATAL text when there is one."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    for line in reversed(lines):
        if "FATAL:" in line:
            return line.split("FATAL:", 1)[1].strip()
    if not lines:
        return type(error).__name__
    # 'connection failed: connection to server at "h", port 1 failed: Connection refused'
    return lines[0].rsplit("failed: ", 1)[-1]


def connect(conninfo: str, *, autocommit: bool = True) -> psycopg.Connection:
    """Connect or raise DatabaseUnavailable with a one-line reason naming the target."""
    try:
        return psycopg.connect(
            conninfo,
            autocommit=autocommit,
            application_name=APPLICATION_NAME,
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
        )
    except psycopg.OperationalError as error:
        raise DatabaseUnavailable(f"cannot connect to {describe(conninfo)}: {_one_line(error)}") from None
    except psycopg.ProgrammingError as error:  # malformed DSN
        raise InvalidConnectionString(f"invalid connection string: {_one_line(error)}") from None
