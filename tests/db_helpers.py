"""Small helpers shared by the dynamic-provider tests that call providers directly."""

from __future__ import annotations

from psycopg.conninfo import conninfo_to_dict
from rds_helpers import put_secret


def connection_of(dsn: str) -> dict:
    """The ``connection`` input the Pulumi resources carry, for a test database's DSN: its
    password, if any, goes to (moto's) Secrets Manager, as the master password is in RDS."""
    params = conninfo_to_dict(dsn)
    connection = {k: v for k, v in params.items() if k in ("host", "port", "dbname", "user", "sslmode")}
    if params.get("password"):
        connection["password_secret_arn"] = put_secret(
            f"swipesavvy-test/{params.get('dbname')}", {"username": params.get("user"), "password": params["password"]}
        )
    return connection
