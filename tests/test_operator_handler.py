"""The operator function's handler (dbops.operator_handler) on a real PostgreSQL.

Events are exactly what the dynamic providers send through ``components.dynamic.run``:
``{"operation", "connection", "args"}`` with the connection as components/data/database.py
declares it (the port a double, as the engine hands it over) and the arguments as the
providers build them from their inputs (numbers as doubles). The function is configured
as the program deploys it for that database (``deployed_for``: its authority in its
environment); what it refuses is tests/test_operator_authority.py. Every answer must survive a
JSON round trip, since Lambda returns JSON; every failure is one line, without a
password or a traceback.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import socket
import threading
import time
import uuid
from types import SimpleNamespace

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from rds_helpers import put_secret, rotate_password

from dbops import operations, operator_handler
from dbops.authority import AUTHORITY_ENV, Authority, ManagedLogin
from dbops.migrations import ADVISORY_LOCK_KEY, LEDGER_SCHEMA, LEDGER_TABLE, load_migrations, migration_checksums
from dbops.operations import OPERATIONS
from dbops.operator_handler import ANSWER_MARGIN_S, handler
from seed.generator import SeedParameters, expected_counts
from seed.loader import SEED_LOCK_KEY, count_mock_rows

SEED = SeedParameters(scale=0.02)
# MockDataSeed's inputs as the engine hands them over: numbers as doubles.
SEED_ARGS = {
    "scale": 0.02,
    "rng_seed": float(SEED.rng_seed),
    "anchor_date": SEED.anchor_date.isoformat(),
    "dataset_version": float(SEED.dataset_version),
}
TRUST_PASSWORD = "ignored-by-trust-auth-Zq8"


def planned_migrations() -> dict[str, str]:
    return migration_checksums(load_migrations())


def connection_for(dsn: str, **overrides) -> dict:
    """The ``connection`` input for a test database of the embedded server (trust auth): its
    secret holds a password the server does not ask for, as the stack's master secret would."""
    params = conninfo_to_dict(dsn)
    arn = put_secret(f"swipesavvy-test/handler-{uuid.uuid4().hex[:8]}", {"username": "x", "password": TRUST_PASSWORD})
    return {
        "host": params.get("host") or "localhost",
        "port": float(params.get("port") or 5432),
        "dbname": params["dbname"],
        "user": params["user"],
        "sslmode": "prefer",
        "password_secret_arn": arn,
        **overrides,
    }


# The stack's logins as the function's authority names them (secrets the tests replace).
LOGIN_GROUPS = {
    "swipesavvy_backend": "swipesavvy_readwrite",
    "swipesavvy_analytics": "swipesavvy_readonly",
    "swipesavvy_monitor": "swipesavvy_monitoring",
}
# Their connection limits and statement timeouts as the stack declares them (Pulumi.staging.yaml).
LOGIN_LIMITS = {"swipesavvy_backend": (50, 0), "swipesavvy_analytics": (10, 300_000), "swipesavvy_monitor": (5, 10_000)}
UNUSED_SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:swipesavvy/test/db/{}-AbCdEf"


def deployed_for(connection: dict, *, secrets: dict[str, str] | None = None, **overrides) -> Authority:
    """The operator's authority as the program configures it for the database ``connection``
    names: the three logins (``secrets``: their ARNs), data destruction allowed unless told."""
    secrets = {login: UNUSED_SECRET.format(login) for login in LOGIN_GROUPS} | (secrets or {})
    fields = {
        "access": "write",
        "database": dict(connection),
        "logins": {
            login: ManagedLogin(group, secrets[login], *LOGIN_LIMITS[login]) for login, group in LOGIN_GROUPS.items()
        },
        "allow_data_destruction": True,
        **overrides,
    }
    return Authority(**fields)


def call(
    connection: dict,
    operation: str,
    args: dict | None = None,
    context=None,
    *,
    authority: Authority | None = None,
    **extra,
) -> dict:
    """The handler's answer to the event a provider sends, checked to be plain JSON, from the
    function deployed with ``authority`` (by default: deployed for ``connection``)."""
    event = {"operation": operation, "connection": connection, "args": args or {}, **extra}
    saved = os.environ.get(AUTHORITY_ENV)
    os.environ[AUTHORITY_ENV] = (authority or deployed_for(connection)).to_json()
    try:
        answer = handler(json.loads(json.dumps(event)), context)
    finally:
        if saved is None:
            os.environ.pop(AUTHORITY_ENV)
        else:
            os.environ[AUTHORITY_ENV] = saved
    assert json.loads(json.dumps(answer)) == answer, answer
    return answer


# Only so that a handler that never answers fails the test instead of hanging CI: what ends a
# wait in these tests is the lock or statement timeout under test, however busy the machine.
HANG_GUARD_S = 300.0


def release_when_waited_for(dsn: str, holder: psycopg.Connection, key: int) -> threading.Thread:
    """Unlocks ``holder``'s advisory lock ``key`` once the server shows a session waiting for it."""

    def release() -> None:
        deadline = time.monotonic() + HANG_GUARD_S
        with psycopg.connect(dsn, autocommit=True) as watcher:
            while time.monotonic() < deadline:
                query = (
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock' AND wait_event = 'advisory'"
                )
                if watcher.execute(query).fetchone()[0]:
                    break
                time.sleep(0.02)
        holder.execute("SELECT pg_advisory_unlock(%s)", (key,))

    thread = threading.Thread(target=release, daemon=True)
    thread.start()
    return thread


def call_bounded(limit_s: float, *call_args, **call_kwargs) -> tuple[dict, float]:
    """``call`` in a thread: the answer and the seconds it took; fails (instead of hanging
    the suite) when the handler is still waiting after ``limit_s``."""
    outcome: dict = {}
    started = time.monotonic()
    worker = threading.Thread(target=lambda: outcome.update(answer=call(*call_args, **call_kwargs)), daemon=True)
    worker.start()
    worker.join(limit_s)
    if worker.is_alive():
        pytest.fail(f"the handler was still waiting after {limit_s} s")
    assert "answer" in outcome, "the handler raised"
    return outcome["answer"], time.monotonic() - started


def result_of(answer: dict) -> dict:
    assert answer["ok"] is True, answer
    assert set(answer) == {"ok", "result"}
    return answer["result"]


def assert_one_line_error(answer: dict, kind: str, *fragments: str, secrets: tuple[str, ...] = ()) -> str:
    assert answer["ok"] is False, answer
    assert set(answer) == {"ok", "error", "kind"}
    assert answer["kind"] == kind, answer
    error = answer["error"]
    assert error and error == " ".join(error.split()), error  # one line, nothing to strip
    assert "Traceback" not in error and 'File "' not in error
    for secret in (TRUST_PASSWORD, *secrets):
        assert secret not in error
    for fragment in fragments:
        assert fragment in error, error
    return error


@pytest.fixture
def migrated(migrated_dsn, secrets_manager):
    return migrated_dsn, connection_for(migrated_dsn)


@pytest.fixture
def empty(empty_dsn, secrets_manager):
    return empty_dsn, connection_for(empty_dsn)


# --- every operation, as the providers call them ------------------------------------------


def test_schema_operations(empty):
    dsn, connection = empty
    names = sorted(planned_migrations())
    assert result_of(call(connection, "read_schema")) == {"migrations": {}}
    assert result_of(call(connection, "migrate", {"migrations": planned_migrations()})) == {"applied": names}
    assert result_of(call(connection, "read_schema")) == {"migrations": planned_migrations()}
    assert result_of(call(connection, "migrate", {"migrations": planned_migrations()})) == {"applied": names}
    assert result_of(call(connection, "drop_schema")) == {}
    assert result_of(call(connection, "read_schema")) == {"migrations": {}}
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT to_regclass('public.feature_flags')").fetchone()[0] is None


def test_seed_operations(migrated):
    dsn, connection = migrated
    seeded = result_of(call(connection, "seed", SEED_ARGS))
    assert seeded["counts"] == expected_counts(SEED)
    assert len(seeded["checksum"]) == 64 and isinstance(seeded["seconds"], float)
    assert result_of(call(connection, "read_seed")) == {
        "scale": 0.02,
        "rng_seed": SEED.rng_seed,
        "anchor_date": SEED.anchor_date.isoformat(),
        "dataset_version": SEED.dataset_version,
        "counts": expected_counts(SEED),
        "checksum": seeded["checksum"],
    }
    assert result_of(call(connection, "seed", SEED_ARGS))["checksum"] == seeded["checksum"]  # a no-op
    assert result_of(call(connection, "unseed")) == {"removed": expected_counts(SEED)}
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert set(count_mock_rows(conn).values()) == {0}
    gone = result_of(call(connection, "read_seed"))
    assert gone["checksum"] is None and gone["scale"] is None and set(gone["counts"].values()) == {0}


def test_flag_operations(migrated):
    dsn, connection = migrated
    flags = {
        "community_feed": {"enabled": True, "rollout_percentage": 25.0},
        "dark_mode": {"enabled": True, "rollout_percentage": 100.0},
    }
    args = {"flags": flags, "actor": "pulumi:staging"}
    assert result_of(call(connection, "apply_flags", args)) == {"changed": ["community_feed"]}
    assert result_of(call(connection, "apply_flags", args)) == {"changed": []}
    assert result_of(call(connection, "read_flags", {"keys": list(flags)})) == {
        "flags": {
            "community_feed": {"enabled": True, "rollout_percentage": 25},
            "dark_mode": {"enabled": True, "rollout_percentage": 100},
        }
    }
    with psycopg.connect(dsn) as conn:
        actors = conn.execute(
            "SELECT changed_by FROM feature_flag_audit_log WHERE flag_key = 'community_feed' AND action <> 'CREATE'"
        ).fetchall()
    assert actors == [("pulumi:staging",)]


OPERATOR_ARN = "arn:aws:lambda:us-east-1:123456789012:function:swipesavvy-staging-db-operator"


def test_the_audit_log_records_who_invoked_the_operator_beside_the_actor_it_claims(migrated):
    """The actor is the event's claim; the invocation (Lambda's function ARN and request id,
    which CloudTrail pairs with the caller's IAM identity) is Lambda's, recorded beside it.
    The client context is the caller's own claim too, and is not used."""
    dsn, connection = migrated
    context = SimpleNamespace(
        invoked_function_arn=OPERATOR_ARN,
        aws_request_id="req-4567",
        identity=None,
        client_context=SimpleNamespace(custom={"actor": "platform-admin"}),
        get_remaining_time_in_millis=lambda: 900_000,
    )
    args = {"flags": {"community_feed": {"enabled": True, "rollout_percentage": 40.0}}, "actor": "platform-admin"}
    assert result_of(call(connection, "apply_flags", args, context)) == {"changed": ["community_feed"]}
    with psycopg.connect(dsn) as conn:
        entry = conn.execute(
            "SELECT changed_by, session_login, reason FROM feature_flag_audit_log WHERE flag_key = 'community_feed'"
            " ORDER BY id DESC LIMIT 1"
        ).fetchone()
    assert entry == (
        "platform-admin",
        connection["user"],
        f"stack config swipesavvy:featureFlags; invoked as lambda {OPERATOR_ARN} request req-4567",
    )


@pytest.mark.parametrize("value", [math.inf, 1e308, 2_147_484, -1, math.nan])
def test_a_lock_timeout_beyond_postgresqls_is_refused_before_any_secret_or_connection(value, monkeypatch):
    def never(*_args, **_kwargs):
        raise AssertionError("a secret was read or a connection made")

    monkeypatch.setattr(operations, "conninfo_for", never)
    monkeypatch.setattr(operations, "connect", never)
    connection = {
        "host": "db.internal",
        "port": 5432.0,
        "dbname": "swipesavvy_staging",
        "user": "swipesavvy_admin",
        "sslmode": "require",
        "password_secret_arn": UNUSED_SECRET.format("swipesavvy_admin"),
    }
    answer = call(connection, "read_schema", lock_timeout_s=value)
    assert answer == {
        "ok": False,
        "kind": "invalid",
        "error": "lock_timeout_s must be a number of seconds from 0 to 2147483 (PostgreSQL's largest lock_timeout),"
        f" got {value!r}",
    }


def test_the_largest_lock_timeout_postgresql_takes_is_accepted(migrated):
    _, connection = migrated
    assert "migrations" in result_of(call(connection, "read_schema", lock_timeout_s=2_147_483))


def test_verify_operation(migrated):
    _, connection = migrated
    results = result_of(call(connection, "verify", {"require_seed": True}))["results"]
    failed = [r["name"] for r in results if not r["passed"]]
    assert failed and all(set(r) == {"name", "passed", "detail"} for r in results)
    assert all(name.startswith("seed") for name in failed)  # the schema checks pass, no seed yet
    result_of(call(connection, "seed", SEED_ARGS))
    results = result_of(call(connection, "verify", {"require_seed": True}))["results"]
    assert [r for r in results if not r["passed"]] == []


def test_login_operations_on_an_rds_like_server(rds_database):
    connection = rds_database.connection(port=float(rds_database.server.port))
    result_of(call(connection, "migrate", {"migrations": planned_migrations()}))
    password = f"pw-{uuid.uuid4().hex}"
    login_arn = put_secret(
        f"swipesavvy/test/db/backend-{uuid.uuid4().hex[:6]}", {"username": "swipesavvy_backend", "password": password}
    )
    # LoginRole's inputs (LOGIN_ARGS), numbers as doubles.
    args = {
        "name": "swipesavvy_backend",
        "group": "swipesavvy_readwrite",
        "connection_limit": 50.0,
        "statement_timeout_ms": 0.0,
        "password_secret_arn": login_arn,
    }
    authority = deployed_for(connection, secrets={"swipesavvy_backend": login_arn})
    assert result_of(call(connection, "create_login", args, authority=authority)) == {}
    with psycopg.connect(make_conninfo(rds_database.master_dsn, user="swipesavvy_backend", password=password)) as conn:
        assert conn.execute("SELECT session_user").fetchone()[0] == "swipesavvy_backend"
    assert result_of(call(connection, "read_login", {"name": "swipesavvy_backend"}, authority=authority)) == {
        "login": {
            "name": "swipesavvy_backend",
            "group": "swipesavvy_readwrite",
            "connection_limit": 50,
            "statement_timeout_ms": 0,
        }
    }
    assert result_of(call(connection, "drop_login", {"name": "swipesavvy_backend"}, authority=authority)) == {}
    assert result_of(call(connection, "read_login", {"name": "swipesavvy_backend"}, authority=authority)) == {
        "login": None
    }


# --- bad events ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "event",
    [
        None,
        "migrate",
        [],
        {},
        {"operation": "migrate", "args": {}},
        {"operation": 3, "connection": {}, "args": {}},
        {"operation": "migrate", "connection": {}, "args": []},
    ],
    ids=["null", "string", "list", "empty", "no-connection", "operation-not-a-string", "args-not-an-object"],
)
def test_malformed_event_is_one_line(event):
    answer = handler(event, None)
    assert_one_line_error(answer, "invalid", "the event must be a JSON object with operation, connection and args")


def test_unknown_operation_is_one_line(migrated):
    _, connection = migrated
    error = assert_one_line_error(call(connection, "vacuum"), "invalid", "unknown operation 'vacuum'")
    assert all(name in error for name in OPERATIONS)


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ({"enabled": "false", "rollout_percentage": 0}, 'flags.community_feed.enabled = "false" is not true or false'),
        ({"enabled": 1, "rollout_percentage": 0}, "flags.community_feed.enabled = 1 is not true or false"),
        (
            {"enabled": True, "rollout_percentage": 25.5},
            "flags.community_feed.rollout_percentage = 25.5 is not an integer from 0 to 100",
        ),
        (
            {"enabled": True, "rollout_percentage": "25"},
            'flags.community_feed.rollout_percentage = "25" is not an integer from 0 to 100',
        ),
        ({"enabled": True}, "flags.community_feed.rollout_percentage = null is not an integer from 0 to 100"),
        ("on", 'flags.community_feed = "on" is not an object with enabled and rollout_percentage'),
    ],
)
def test_flag_settings_are_type_checked_not_coerced(migrated, flag, message):
    """A string "false" is not false: refused in one line, and nothing is changed."""
    dsn, connection = migrated
    args = {"flags": {"dark_mode": {"enabled": False, "rollout_percentage": 0.0}, "community_feed": flag}, "actor": "t"}
    assert assert_one_line_error(call(connection, "apply_flags", args), "invalid") == message
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT enabled FROM feature_flags WHERE key = 'dark_mode'").fetchone() == (True,)


@pytest.mark.parametrize(
    ("operation", "args", "missing"),
    [
        ("migrate", {}, "migrations"),
        ("seed", {k: v for k, v in SEED_ARGS.items() if k != "anchor_date"}, "anchor_date"),
        ("apply_flags", {"flags": {}}, "actor"),
        ("read_flags", {}, "keys"),
        ("create_login", {"name": "swipesavvy_backend"}, "group"),
        ("read_login", {}, "name"),
        ("drop_login", {}, "name"),
    ],
)
def test_missing_argument_is_one_line(migrated, operation, args, missing):
    _, connection = migrated
    assert_one_line_error(call(connection, operation, args), "invalid", f"argument {missing!r} is missing")


@pytest.mark.parametrize(
    ("operation", "args", "connection_change", "fragment"),
    [
        ("read_schema", {}, {"port": "abc"}, "connection.port = 'abc' is not a port number"),
        ("apply_flags", {"flags": ["dark_mode"], "actor": "x"}, {}, 'flags = ["dark_mode"] is not an object of flag'),
        ("seed", {**SEED_ARGS, "anchor_date": "28/12/2025"}, {}, "Invalid isoformat string"),
        ("seed", {**SEED_ARGS, "scale": 1000.0}, {}, "scale must be a number from"),
        ("read_schema", {}, {"sslmode": "sometimes"}, "invalid connection string"),
    ],
    ids=["port", "flags-not-a-map", "anchor-date", "scale", "sslmode"],
)
def test_bad_argument_value_is_one_line(migrated, operation, args, connection_change, fragment):
    _, connection = migrated
    assert_one_line_error(call({**connection, **connection_change}, operation, args), "invalid", fragment)


# --- the database, the secret --------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_unreachable_database_is_one_line(migrated):
    _, connection = migrated
    port = _closed_port()
    answer = call({**connection, "host": "127.0.0.1", "port": float(port)}, "read_schema")
    assert_one_line_error(answer, "unavailable", f"cannot connect to {connection['user']}@127.0.0.1:{port}/", "refused")


def test_refused_login_is_one_line_without_the_password(rds_database, monkeypatch):
    wrong = f"wrong-{uuid.uuid4().hex}"
    rotate_password(rds_database.master_secret_arn, wrong)
    pauses = []
    monkeypatch.setattr(operator_handler, "_sleep", pauses.append)
    answer = call(rds_database.connection(port=float(rds_database.server.port)), "read_schema")
    assert_one_line_error(
        answer, "unavailable", "password authentication failed", secrets=(wrong, rds_database.server.master_password)
    )
    assert pauses == [operator_handler.ROTATION_RETRY_DELAY_S]  # read the secret again once, then gave up


def test_login_refused_during_a_rotation_is_retried_with_the_secret_read_again(rds_database, monkeypatch):
    """The secret read returned the previous version; by the retry, the rotation finished."""
    rotate_password(rds_database.master_secret_arn, "the-previous-password")
    monkeypatch.setattr(
        operator_handler,
        "_sleep",
        lambda _s: rotate_password(rds_database.master_secret_arn, rds_database.server.master_password),
    )
    answer = call(rds_database.connection(port=float(rds_database.server.port)), "read_schema")
    assert result_of(answer) == {"migrations": {}}


@pytest.mark.parametrize("case", ["missing", "no-password-field", "not-an-arn"])
def test_unreadable_secret_is_one_line(migrated, case):
    _, connection = migrated
    if case == "missing":
        arn, fragment = connection["password_secret_arn"] + "-gone", "ResourceNotFoundException"
    elif case == "no-password-field":
        arn = put_secret(f"swipesavvy-test/nopw-{uuid.uuid4().hex[:8]}", {"username": "x"})
        fragment = "has no 'password' field"
    else:
        arn, fragment = "swipesavvy/master", "is not a Secrets Manager secret ARN"
    answer = call({**connection, "password_secret_arn": arn}, "read_schema")
    assert_one_line_error(answer, "unavailable", fragment)


# --- migrations ---------------------------------------------------------------------------


def test_planned_migrations_that_differ_from_the_operators_are_refused(migrated):
    _, connection = migrated
    planned = planned_migrations()
    name = sorted(planned)[2]
    answer = call(connection, "migrate", {"migrations": {**planned, name: "0" * 64}})
    assert_one_line_error(answer, "failed", "sql/ here differs from the planned migrations")


def test_edited_applied_migration_is_refused_naming_the_file(migrated):
    """The ledger says an earlier version of 003 was applied: the runner refuses, by name."""
    dsn, connection = migrated
    name = sorted(planned_migrations())[2]
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"UPDATE {LEDGER_SCHEMA}.{LEDGER_TABLE} SET checksum = %s WHERE name = %s", ("a" * 64, name))
    answer = call(connection, "migrate", {"migrations": planned_migrations()})
    assert_one_line_error(answer, "failed", f"{name}.sql changed after it was applied", "revert the edit")


# --- bounded waits ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operation", "args", "key"),
    [
        ("migrate", {"migrations": planned_migrations()}, ADVISORY_LOCK_KEY),
        ("drop_schema", {}, ADVISORY_LOCK_KEY),
        ("seed", SEED_ARGS, SEED_LOCK_KEY),
        ("unseed", {}, SEED_LOCK_KEY),
    ],
)
def test_a_lock_held_by_another_session_is_waited_for_a_bounded_time(migrated, operation, args, key):
    dsn, connection = migrated
    with psycopg.connect(dsn, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (key,))
        answer, elapsed = call_bounded(HANG_GUARD_S, connection, operation, args, lock_timeout_s=0.5)
    # It answered while the lock was still held: the wait was bounded.
    assert_one_line_error(answer, "locked", "gave up after 0.5 s waiting for a lock another session holds")
    assert elapsed >= 0.5
    with psycopg.connect(dsn, autocommit=True) as conn:  # nothing changed
        assert len(conn.execute(f"SELECT name FROM {LEDGER_SCHEMA}.{LEDGER_TABLE}").fetchall()) == len(
            planned_migrations()
        )
        assert set(count_mock_rows(conn).values()) == {0}


def test_the_default_lock_wait_is_bounded_and_zero_does_not_wait(migrated, monkeypatch):
    dsn, connection = migrated
    monkeypatch.setattr(operator_handler, "LOCK_TIMEOUT_S", 0.3)
    sessions = []  # the PGOPTIONS each operation's session starts with
    real_connect = operations.connect
    monkeypatch.setattr(operations, "connect", lambda *a: sessions.append(os.environ["PGOPTIONS"]) or real_connect(*a))
    with psycopg.connect(dsn, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (SEED_LOCK_KEY,))
        answer, _ = call_bounded(HANG_GUARD_S, connection, "unseed")
        assert_one_line_error(answer, "locked", "gave up after 0.3 s")
        answer, _ = call_bounded(HANG_GUARD_S, connection, "unseed", lock_timeout_s=0)
        assert_one_line_error(answer, "locked", "gave up after 0 s")
    # 0 is PostgreSQL's "wait forever": the smallest wait stands for "do not wait".
    assert [options.split()[:2] for options in sessions] == [["-c", "lock_timeout=300ms"], ["-c", "lock_timeout=1ms"]]


def test_the_operation_proceeds_when_the_lock_is_released_in_time(migrated):
    dsn, connection = migrated
    with psycopg.connect(dsn, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (SEED_LOCK_KEY,))
        released = release_when_waited_for(dsn, other, SEED_LOCK_KEY)
        answer = call(connection, "seed", SEED_ARGS, lock_timeout_s=HANG_GUARD_S)
        released.join()
    assert result_of(answer)["counts"] == expected_counts(SEED)


def test_a_statement_ends_before_the_function_time_limit(migrated):
    """With 0.5 s left after the answer margin, a statement blocked behind another
    session's table lock is cancelled by statement_timeout, not left to the function's kill."""
    dsn, connection = migrated
    context = SimpleNamespace(get_remaining_time_in_millis=lambda: (ANSWER_MARGIN_S + 0.5) * 1000)
    saved = os.environ.get("PGOPTIONS")
    with psycopg.connect(dsn) as other:  # a transaction holding an exclusive lock on feature_flags
        other.execute("LOCK TABLE feature_flags IN ACCESS EXCLUSIVE MODE")
        answer, _ = call_bounded(
            HANG_GUARD_S, connection, "read_flags", {"keys": ["dark_mode"]}, context=context, lock_timeout_s=60
        )
    assert_one_line_error(answer, "failed", "canceling statement due to statement timeout")
    assert os.environ.get("PGOPTIONS") == saved


# --- results and unanticipated failures ---------------------------------------------------


def test_a_result_that_is_not_json_is_one_line(migrated, monkeypatch):
    _, connection = migrated
    monkeypatch.setitem(OPERATIONS, "read_schema", lambda _conn, _args: {"at": datetime.datetime.now()})
    assert_one_line_error(call(connection, "read_schema"), "failed", "its result is not JSON")


def test_an_unanticipated_exception_is_one_line_with_the_traceback_only_in_the_log(migrated, monkeypatch, capsys):
    _, connection = migrated

    def broken(_conn, _args):
        raise RuntimeError("first line\nsecond line")

    monkeypatch.setitem(OPERATIONS, "read_schema", broken)
    assert_one_line_error(call(connection, "read_schema"), "failed", "RuntimeError: first line second line")
    assert "Traceback" in capsys.readouterr().err
