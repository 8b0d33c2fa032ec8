"""Every dynamic provider driven as the Pulumi engine drives it (tests/engine.py): over gRPC
from a ``python -m pulumi.dynamic`` process started in the project root, with the inputs
the program really declares (the mocked staging run's registrations, ``__provider``
included), against an RDS-like PostgreSQL (TLS only, password auth, a non-superuser
master) whose master password is read from Secrets Manager (moto) when the provider runs.

Each test walks the engine's sequence for one provider: first preview (unknown
connection) -> create -> the second run (no change) -> a changed work input (update) ->
a connection-only change -> replacement -> refresh -> delete. Each runs twice: with a
direct connection, and through the operator functions (``database.access: operator``),
served by a local Lambda API stand-in (tests/fake_lambda.py) that runs the handler: the
operator for the changes, the reader (as swipesavvy_analytics) for refresh, each with the
authority the program gives it in its environment.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from engine import DIFF_NONE, DIFF_SOME, ProviderError, PulumiEngine
from fake_lambda import FakeLambda
from psycopg import sql
from pulumi.runtime.rpc import UNKNOWN
from pulumi_program import PROJECT_ROOT
from rds_helpers import RdsDatabase, put_secret, rotate_password

from dbops.authority import AUTHORITY_ENV, Authority, ManagedLogin
from dbops.connection import connect
from dbops.logins import LoginSpec, ensure_login
from dbops.migrations import load_migrations, migration_checksums
from dbops.operations import READ_OPERATIONS

SCHEMA, SEED, FLAGS, LOGIN = (
    "swipesavvy-db-schema",
    "swipesavvy-db-mock-data",
    "swipesavvy-db-feature-flags",
    "swipesavvy-db-backend",
)
DATABASE_ID = "db-TESTRESOURCE/swipesavvy_staging"


@pytest.fixture(scope="module")
def declared(staging, production):
    """The dynamic resources' inputs as the program registers them, by resource name."""
    resources = [*staging.resources, *production.resources]
    return {r.name: r.inputs for r in resources if r.typ.startswith("pulumi-python:dynamic/")}


OPERATOR_ARN = "arn:aws:lambda:us-east-1:123456789012:function:swipesavvy-staging-db-operator"
READER_ARN = "arn:aws:lambda:us-east-1:123456789012:function:swipesavvy-staging-db-reader"
LOGIN_GROUPS = {
    "swipesavvy_backend": "swipesavvy_readwrite",
    "swipesavvy_analytics": "swipesavvy_readonly",
    "swipesavvy_monitor": "swipesavvy_monitoring",
}
LOGIN_LIMITS = {"swipesavvy_backend": (50, 0), "swipesavvy_analytics": (10, 300_000), "swipesavvy_monitor": (5, 10_000)}
READER_LOGIN = "swipesavvy_analytics"


@dataclass
class Deployment:
    """The test database, reached the way one access mode reaches it."""

    rds: RdsDatabase
    lam: FakeLambda | None = None
    env: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)  # each login's secret ARN
    passwords: dict[str, str] = field(default_factory=dict)
    # Each login's (connection limit, statement timeout) as the stack declares them.
    limits: dict[str, tuple[int, int]] = field(default_factory=lambda: dict(LOGIN_LIMITS))

    def __post_init__(self) -> None:
        for login in LOGIN_GROUPS:
            self.passwords[login] = f"first-password-{login}-0123456789"
            self.secrets[login] = put_secret(
                f"swipesavvy/test/db/{login}-{self.rds.dbname}", {"username": login, "password": self.passwords[login]}
            )
        self.deploy_functions(self.rds.connection())

    def deploy_functions(self, connection: dict, allow_data_destruction: bool = False) -> None:
        """Through the operator: its functions' authority as the program sets it for this
        database and config (an update of the stack updates the functions first)."""
        if not self.lam:
            return
        logins = {
            login: ManagedLogin(group, self.secrets[login], *self.limits[login])
            for login, group in LOGIN_GROUPS.items()
        }
        writer = Authority("write", connection, logins, allow_data_destruction)
        reader = Authority("read", connection, logins, allow_data_destruction, READER_LOGIN)
        for name, authority in (("swipesavvy-staging-db-operator", writer), ("swipesavvy-staging-db-reader", reader)):
            self.lam.configure(name, {AUTHORITY_ENV: authority.to_json()})

    def reader_login_exists(self) -> None:
        """The reader's login, as the stack's LoginRole creates it after the schema."""
        with connect(self.rds.master_dsn) as conn:
            spec = LoginSpec(READER_LOGIN, LOGIN_GROUPS[READER_LOGIN], connection_limit=5)
            ensure_login(conn, spec, self.passwords[READER_LOGIN])

    def inputs(self, declared: dict, name: str, **overrides) -> dict:
        """The program's declared inputs for ``name``, pointed at the test database."""
        inputs = {**declared[name], "connection": self.rds.connection(), "database_id": DATABASE_ID}
        inputs.pop("operator", None)
        inputs.pop("reader", None)
        if self.lam:
            inputs["operator"], inputs["reader"] = OPERATOR_ARN, READER_ARN
        return {**inputs, **overrides}

    def engine(self, name: str, cwd: Path = PROJECT_ROOT) -> PulumiEngine:
        return PulumiEngine({**self.rds.env, **self.env}, f"urn:pulumi:staging::swipesavvy::dynamic:{name}", cwd)

    def assert_transport_used(self) -> None:
        """Through the operator, the operations were invocations of it: every change of the
        operator, every read of the reader (of the operator only after the reader could not
        log in yet), and at least one read answered by the reader."""
        if not self.lam:
            return
        assert self.lam.calls
        previous = None
        for function, operation, ok in self.lam.calls:
            if operation not in READ_OPERATIONS:
                assert function == "swipesavvy-staging-db-operator", (function, operation)
            elif function != "swipesavvy-staging-db-reader":
                assert previous == ("swipesavvy-staging-db-reader", operation, False), (function, operation)
            previous = (function, operation, ok)
        assert ("swipesavvy-staging-db-reader", True) in {(function, ok) for function, _, ok in self.lam.calls}


@pytest.fixture(params=["direct", "operator"])
def deploy(request, rds_database):
    if request.param == "direct":
        yield Deployment(rds_database)
        return
    with FakeLambda() as lam:
        yield Deployment(rds_database, lam, {"AWS_ENDPOINT_URL_LAMBDA": lam.url})


def public_tables(rds) -> int:
    return rds.scalar("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'")


def assert_first_preview_needs_no_database(engine: PulumiEngine, inputs: dict, *unknown_keys: str) -> None:
    """Before the instance exists the connection (and what derives from it) is unknown."""
    assert engine.preview({**inputs, **dict.fromkeys(unknown_keys, UNKNOWN)}) is None
    assert not engine.state.exists


def assert_no_password_in_state(engine: PulumiEngine, *passwords: str) -> None:
    state = repr((engine.state.inputs, engine.state.outputs))
    for password in passwords:
        assert password not in state


# --- DatabaseSchema -------------------------------------------------------------------------


@pytest.fixture
def project_without_last_migration(tmp_path):
    """The project as it was one commit ago: the same code, one migration fewer."""
    for part in ("components", "dbops", "ops", "seed", "sql"):
        shutil.copytree(PROJECT_ROOT / part, tmp_path / part, ignore=shutil.ignore_patterns("__pycache__"))
    last = load_migrations()[-1]
    (tmp_path / "sql" / last.filename).unlink()
    return tmp_path, last.name


def test_database_schema_through_the_engine(declared, deploy, project_without_last_migration):
    rds = deploy.rds
    old_project, last = project_without_last_migration
    engine = deploy.engine(SCHEMA)
    news = deploy.inputs(declared, SCHEMA)
    assert_first_preview_needs_no_database(engine, news, "connection", "database_id")

    # Deployed from the previous commit: every migration but the last.
    old = {**news, "migrations": migration_checksums(load_migrations(old_project / "sql"))}
    if deploy.lam:
        deploy.lam.deploy(old_project)  # the operator runs the code of the commit deployed
    assert engine.up(old, cwd=old_project) == "create"
    assert last not in engine.state.outputs["applied"]
    assert public_tables(rds) == 16
    assert_no_password_in_state(engine, rds.server.master_password)
    deploy.reader_login_exists()  # the stack's logins follow the schema

    # The second run of the same commit changes nothing.
    assert engine.preview(old).changes == DIFF_NONE

    # The current commit: the new migration is the update (the function is updated first).
    if deploy.lam:
        deploy.lam.deploy(PROJECT_ROOT)
    assert engine.preview(news).changes == DIFF_SOME
    assert engine.up(news) == "update"
    assert engine.state.outputs["applied"] == sorted(news["migrations"])
    assert engine.up(news) == "same"

    # A connection-only change (a tunnel) and the delete policy are recorded, no work done.
    applied_at = rds.query("SELECT name, applied_at FROM swipesavvy_meta.schema_migrations ORDER BY 1")
    moved = {**news, "connection": rds.connection(host="localhost"), "allow_data_destruction": True}
    deploy.deploy_functions(moved["connection"], allow_data_destruction=True)
    diff = engine.preview(moved)
    assert diff.changes == DIFF_SOME and list(diff.replaces) == []
    assert engine.up(moved) == "update"
    assert engine.state.outputs["connection"]["host"] == "localhost"
    assert engine.state.outputs["allow_data_destruction"] is True
    assert rds.query("SELECT name, applied_at FROM swipesavvy_meta.schema_migrations ORDER BY 1") == applied_at

    # Refresh sees a migration removed from the ledger by hand; the next preview shows it.
    rds.execute("DELETE FROM swipesavvy_meta.schema_migrations WHERE name = %s", (last,))
    engine.refresh()
    assert last not in engine.state.outputs["applied"]
    assert engine.preview(moved).changes == DIFF_SOME
    rds.execute(
        "INSERT INTO swipesavvy_meta.schema_migrations (version, name, checksum, duration_ms) VALUES (%s, %s, %s, 1)",
        (last[:3], last, news["migrations"][last]),
    )
    engine.refresh()
    assert engine.preview(moved).changes == DIFF_NONE

    # A different database is a replacement: delete first (the schema has a fixed identity).
    replaced = {**moved, "database_id": "db-OTHER/swipesavvy_staging"}
    assert list(engine.preview(replaced).replaces) == ["database_id"]
    assert engine.up(replaced) == "replace"
    assert engine.state.id == "db-OTHER/swipesavvy_staging"

    # Destroy, from state alone: allow_data_destruction was recorded as true, so it drops.
    engine.destroy()
    assert public_tables(rds) == 0
    deploy.assert_transport_used()


def test_schema_delete_keeps_the_data_by_default(declared, deploy):
    engine = deploy.engine(SCHEMA)
    assert engine.up(deploy.inputs(declared, SCHEMA)) == "create"
    engine.destroy()
    assert public_tables(deploy.rds) == 16


def test_an_edited_applied_migration_fails_the_preview_naming_it(declared, deploy):
    engine = deploy.engine(SCHEMA)
    news = deploy.inputs(declared, SCHEMA)
    engine.up(news)
    first = sorted(news["migrations"])[0]
    with pytest.raises(ProviderError, match=rf"^migrations: {first}\.sql changed after it was applied") as error:
        engine.preview({**news, "migrations": {**news["migrations"], first: "0" * 64}})
    assert "\n" not in str(error.value)  # a check failure, one line, not a traceback


# --- the master password rotates --------------------------------------------------------------


def test_a_rotated_master_password_is_read_at_run_time(declared, deploy):
    """RDS rotates the master password every 7 days: refresh, up and destroy after a rotation
    use the new one (read from the secret), and the program's inputs do not change."""
    rds = deploy.rds
    engine = deploy.engine(SCHEMA)
    news = deploy.inputs(declared, SCHEMA, allow_data_destruction=True)
    deploy.deploy_functions(news["connection"], allow_data_destruction=True)
    engine.up(news)
    old_password, new_password = rds.server.master_password, "rotated-" + rds.server.master_password[:20]
    with psycopg.connect(rds.server.superuser_dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                sql.Identifier(rds.server.master_user), sql.Literal(new_password)
            )
        )
    rotate_password(rds.master_secret_arn, new_password)
    try:
        engine.refresh()
        assert engine.up(news) == "same"
        assert_no_password_in_state(engine, old_password, new_password)
        engine.destroy()
    finally:
        with psycopg.connect(rds.server.superuser_dsn, autocommit=True) as conn:
            conn.execute(
                sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                    sql.Identifier(rds.server.master_user), sql.Literal(old_password)
                )
            )
    assert public_tables(rds) == 0


def test_an_unreadable_secret_is_one_line_naming_it(declared, deploy):
    engine = deploy.engine(SCHEMA)
    missing = deploy.rds.master_secret_arn.replace("rds!db-test-", "rds!db-gone-")
    connection = deploy.rds.connection(password_secret_arn=missing)
    deploy.deploy_functions(connection)
    with pytest.raises(ProviderError, match=r"cannot read secret arn:aws:secretsmanager:.*ResourceNotFoundException"):
        engine.up(deploy.inputs(declared, SCHEMA, connection=connection))


# --- MockDataSeed -----------------------------------------------------------------------------


def mock_rows(rds) -> int:
    return rds.scalar("SELECT count(*) FROM campaigns WHERE is_mock")


def loaded_at(rds):
    return rds.scalar("SELECT loaded_at FROM swipesavvy_meta.mock_data_seed")


@pytest.fixture
def migrated(declared, deploy):
    deploy.engine(SCHEMA).up(deploy.inputs(declared, SCHEMA))
    deploy.reader_login_exists()
    return deploy


def test_mock_data_seed_through_the_engine(declared, migrated):
    rds = migrated.rds
    engine = migrated.engine(SEED)
    # The staging stack's inputs (numbers as the engine sends them), at a small scale.
    news = migrated.inputs(declared, SEED, scale=0.02)
    assert isinstance(declared[SEED]["rng_seed"], float)  # 20251228.0 on the wire
    assert_first_preview_needs_no_database(engine, news, "connection", "database_id")

    assert engine.up(news) == "create"
    assert engine.state.outputs["counts"]["campaigns"] == mock_rows(rds) > 0
    first_checksum, first_load = engine.state.outputs["checksum"], loaded_at(rds)
    assert engine.up(news) == "same"

    reseeded = {**news, "rng_seed": 7.0}
    assert engine.preview(reseeded).changes == DIFF_SOME
    assert engine.up(reseeded) == "update"
    assert engine.state.outputs["checksum"] != first_checksum

    # A connection-only change keeps the data as it is.
    load = loaded_at(rds)
    moved = {**reseeded, "connection": rds.connection(host="localhost")}
    migrated.deploy_functions(moved["connection"])
    assert engine.up(moved) == "update"
    assert loaded_at(rds) == load and engine.state.outputs["counts"]["campaigns"] == mock_rows(rds)

    # Refresh sees values changed by hand (counts unchanged): drift, and up reloads.
    rds.execute(
        "UPDATE campaign_analytics_daily SET clicks = clicks + 1 WHERE ctid IN (SELECT ctid FROM campaign_analytics_daily LIMIT 1)"
    )
    engine.refresh()
    assert engine.state.outputs.get("checksum") is None
    assert engine.up(moved) == "update"
    engine.refresh()
    assert engine.up(moved) == "same"

    # Refresh sees the data removed by hand; the next up loads it again.
    rds.execute("DELETE FROM swipesavvy_meta.mock_data_seed")
    rds.execute("DELETE FROM campaigns WHERE is_mock")
    engine.refresh()
    assert engine.state.outputs.get("scale") is None and engine.state.outputs["counts"]["campaigns"] == 0
    assert engine.preview(moved).changes == DIFF_SOME
    assert engine.up(moved) == "update"
    assert mock_rows(rds) == engine.state.outputs["counts"]["campaigns"] > 0
    engine.refresh()
    assert engine.up(moved) == "same"

    # Replacement: the old database's rows go first, then the new load.
    replaced = {**moved, "database_id": "db-OTHER/swipesavvy_staging"}
    assert engine.up(replaced) == "replace"
    assert mock_rows(rds) > 0 and first_load < loaded_at(rds)

    engine.destroy()
    assert mock_rows(rds) == 0
    assert public_tables(rds) == 16  # only the seeded rows went
    migrated.assert_transport_used()


# --- FeatureFlagSettings ------------------------------------------------------------------------


def flag(rds, key: str) -> tuple:
    return rds.query("SELECT enabled, rollout_percentage FROM feature_flags WHERE key = %s", (key,))[0]


def last_audit_actor(rds) -> str:
    return rds.scalar("SELECT changed_by FROM feature_flag_audit_log ORDER BY id DESC LIMIT 1")


def test_feature_flag_settings_through_the_engine(declared, migrated):
    rds = migrated.rds
    engine = migrated.engine(FLAGS)
    news = migrated.inputs(declared, FLAGS)  # production's: advanced_analytics on at 10%
    assert_first_preview_needs_no_database(engine, news, "connection", "database_id")

    assert engine.up(news) == "create"
    assert flag(rds, "advanced_analytics") == (True, 10)
    assert last_audit_actor(rds) == "pulumi:production"
    assert engine.up(news) == "same"

    # The actor is recorded, so the next change is attributed to it.
    renamed = {**news, "actor": "pulumi:production-eu"}
    assert engine.preview(renamed).changes == DIFF_SOME
    assert engine.up(renamed) == "update"
    assert engine.state.outputs["actor"] == "pulumi:production-eu"
    changed = {**renamed, "flags": {"advanced_analytics": {"enabled": True, "rollout_percentage": 50.0}}}
    assert engine.up(changed) == "update"
    assert flag(rds, "advanced_analytics") == (True, 50)
    assert last_audit_actor(rds) == "pulumi:production-eu"

    # A flag edited by hand is drift: refresh shows it, up sets it back.
    rds.execute("UPDATE feature_flags SET rollout_percentage = 80 WHERE key = 'advanced_analytics'")
    engine.refresh()
    assert engine.state.outputs["flags"]["advanced_analytics"]["rollout_percentage"] == 80
    assert engine.up(changed) == "update"
    assert flag(rds, "advanced_analytics") == (True, 50)

    moved = {**changed, "connection": rds.connection(host="localhost")}
    migrated.deploy_functions(moved["connection"])
    assert engine.up(moved) == "update"
    assert engine.up({**moved, "database_id": "db-OTHER/x"}) == "replace"

    engine.destroy()  # flag states are the application's data once set
    assert flag(rds, "advanced_analytics") == (True, 50)
    migrated.assert_transport_used()


# --- LoginRole ----------------------------------------------------------------------------------


def can_login(rds, user: str, password: str) -> bool:
    try:
        with connect(
            rds.server.master_dsn(rds.dbname)
            .replace(rds.server.master_user, user)
            .replace(rds.server.master_password, password)
        ):
            return True
    except Exception:
        return False


def test_login_role_through_the_engine(declared, migrated):
    rds = migrated.rds
    engine = migrated.engine(LOGIN)
    password = "first-password-0123456789abcdefghij"
    secret = put_secret(
        f"swipesavvy/test/db/swipesavvy_backend-{rds.dbname}", {"username": "swipesavvy_backend", "password": password}
    )
    news = migrated.inputs(declared, LOGIN, password_secret_arn=secret, password_version="v1")
    assert_first_preview_needs_no_database(
        engine, news, "connection", "database_id", "password_secret_arn", "password_version"
    )

    assert engine.up(news) == "create"
    assert can_login(rds, "swipesavvy_backend", password)
    assert rds.scalar("SELECT rolconnlimit FROM pg_roles WHERE rolname = 'swipesavvy_backend'") == 50
    assert_no_password_in_state(engine, password, rds.server.master_password)
    assert engine.up(news) == "same"

    # A new password (a new secret version) is an update; the old one stops working.
    version = rotate_password(secret, "second-password-0123456789abcdefghij")
    rotated = {**news, "password_version": version, "connection_limit": 25.0}
    migrated.limits["swipesavvy_backend"] = (25, 0)  # the new limit reaches the functions first
    migrated.deploy_functions(rds.connection())
    assert engine.up(rotated) == "update"
    assert can_login(rds, "swipesavvy_backend", "second-password-0123456789abcdefghij")
    assert not can_login(rds, "swipesavvy_backend", password)
    assert rds.scalar("SELECT rolconnlimit FROM pg_roles WHERE rolname = 'swipesavvy_backend'") == 25

    # Drift: a limit changed and a group joined by hand; refresh shows both, up undoes them.
    rds.execute("ALTER ROLE swipesavvy_backend CONNECTION LIMIT 5")
    rds.execute("GRANT swipesavvy_readonly TO swipesavvy_backend")
    engine.refresh()
    assert engine.state.outputs["connection_limit"] == 5
    assert engine.state.outputs["group"] == "swipesavvy_readonly,swipesavvy_readwrite"
    assert engine.up(rotated) == "update"
    assert rds.scalar("SELECT rolconnlimit FROM pg_roles WHERE rolname = 'swipesavvy_backend'") == 25
    engine.refresh()
    assert engine.up(rotated) == "same"

    moved = {**rotated, "connection": rds.connection(host="localhost")}
    migrated.deploy_functions(moved["connection"])
    assert engine.up(moved) == "update"

    # Dropped by hand: refresh forgets it, up creates it again.
    rds.execute("DROP ROLE swipesavvy_backend")
    engine.refresh()
    assert not engine.state.exists
    assert engine.up(moved) == "create"

    # Another of the stack's logins (one the operator may manage), with its own secret.
    renamed = {
        **moved,
        "name": "swipesavvy_analytics",
        "group": "swipesavvy_readonly",
        "connection_limit": 10.0,  # and its limits as the stack declares them
        "statement_timeout_ms": 300_000.0,
        "password_secret_arn": migrated.secrets["swipesavvy_analytics"],
    }
    assert list(engine.preview(renamed).replaces) == ["name"]
    assert engine.up(renamed) == "replace"
    assert rds.scalar("SELECT count(*) FROM pg_roles WHERE rolname = 'swipesavvy_backend'") == 0

    engine.destroy()
    assert rds.scalar("SELECT count(*) FROM pg_roles WHERE rolname = 'swipesavvy_analytics'") == 0
    migrated.assert_transport_used()
