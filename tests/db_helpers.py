"""Small helpers shared by the dynamic-provider tests."""

from __future__ import annotations

from psycopg.conninfo import conninfo_to_dict


def connection_of(dsn: str) -> dict:
    """The ``connection`` input the Pulumi resources carry, for a test database's DSN."""
    return {k: v for k, v in conninfo_to_dict(dsn).items() if k in ("host", "port", "dbname", "user", "password")}
