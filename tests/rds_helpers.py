"""A test database on the RDS-like server, with its secrets in (moto's) Secrets Manager."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import boto3
import psycopg
from psycopg import sql
from tls_postgres import TlsServer

from dbops.connection import connect

MASTER_SECRET_PREFIX = "rds!db-test-"


@dataclass
class RdsDatabase:
    server: TlsServer
    env: dict[str, str]  # AWS settings for provider processes
    dbname: str
    master_secret_arn: str

    @classmethod
    def create(cls, server: TlsServer, env: dict[str, str]) -> RdsDatabase:
        dbname = f"swipesavvy_rds_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(server.superuser_dsn, autocommit=True) as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(dbname), sql.Identifier(server.master_user)
                )
            )
        # RDS-managed master secrets hold username and password.
        arn = put_secret(
            f"{MASTER_SECRET_PREFIX}{dbname}", {"username": server.master_user, "password": server.master_password}
        )
        return cls(server, env, dbname, arn)

    def drop(self) -> None:
        with psycopg.connect(self.server.superuser_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.dbname)))
            for role in ("swipesavvy_backend", "swipesavvy_analytics", "swipesavvy_reader"):
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))

    @property
    def master_dsn(self) -> str:
        return self.server.master_dsn(self.dbname)

    def connection(self, **overrides: Any) -> dict[str, Any]:
        """The ``connection`` input as the Database component declares it, for this database."""
        return {
            "host": self.server.host,
            "port": self.server.port,
            "dbname": self.dbname,
            "user": self.server.master_user,
            "sslmode": "require",
            "password_secret_arn": self.master_secret_arn,
            **overrides,
        }

    def query(self, text: str, params: tuple = ()) -> list[tuple]:
        with connect(self.master_dsn) as conn:
            return conn.execute(text, params).fetchall()

    def execute(self, text: str, params: tuple = ()) -> None:
        with connect(self.master_dsn) as conn:
            conn.execute(text, params)

    def scalar(self, text: str, params: tuple = ()) -> Any:
        return self.query(text, params)[0][0]


def secrets_client():
    return boto3.client("secretsmanager", region_name="us-east-1")


def put_secret(name: str, document: dict) -> str:
    """Create (or overwrite) a secret in the RDS JSON shape; returns its ARN."""
    client = secrets_client()
    try:
        return client.create_secret(Name=name, SecretString=json.dumps(document))["ARN"]
    except client.exceptions.ResourceExistsException:
        return client.put_secret_value(SecretId=name, SecretString=json.dumps(document))["ARN"]


def rotate_password(arn: str, password: str) -> str:
    """Store a new password in the secret, as a rotation does; returns the new version id."""
    client = secrets_client()
    document = json.loads(client.get_secret_value(SecretId=arn)["SecretString"])
    return client.put_secret_value(SecretId=arn, SecretString=json.dumps({**document, "password": password}))[
        "VersionId"
    ]
