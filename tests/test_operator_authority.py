"""What the operator function refuses, and its read-only twin, on the RDS-like server.

The function's authority is its own configuration (dbops/authority.py, set by the program in
its environment): this stack's database, its deploying login, its three logins with their
groups and secrets, whether data may be destroyed, and its access. Each event below is
one the issue found the old handler running (drop_schema with destruction forbidden, a
foreign group, an unrelated role, another database, another secret, an unknown
operation); each is refused as ``invalid``, naming what it asked for, and the database and
its roles are exactly as before, passwords included. The reader runs every read that
refresh and verify need as ``swipesavvy_analytics``, refuses every other operation, and
that login itself cannot write.
"""

from __future__ import annotations

import json
import uuid
from types import SimpleNamespace

import psycopg
import pytest
from psycopg import sql
from rds_helpers import put_secret
from test_operator_handler import LOGIN_GROUPS, SEED_ARGS, call, deployed_for, planned_migrations, result_of

from dbops.authority import AUTHORITY_ENV, DATABASE_KEYS, Authority
from dbops.connection import connect
from dbops.logins import LoginSpec, ensure_login
from dbops.migrations import apply_migrations, load_migrations
from dbops.operations import OPERATIONS, READ_OPERATIONS, run_operation
from dbops.operator_handler import RECORD, handler

READER = "swipesavvy_analytics"


def database_state(rds) -> dict:
    """Everything an event could have changed: the objects in every schema of this database
    and of ``postgres``, the ledger, the flags, and every role with its attributes,
    memberships and password verifier (read as the superuser)."""
    state = {}
    for dbname in (rds.dbname, "postgres"):
        with psycopg.connect(rds.server.superuser_dsn, dbname=dbname) as conn:
            state[dbname] = conn.execute(
                "SELECT n.nspname, c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') ORDER BY 1, 2"
            ).fetchall()
    with psycopg.connect(rds.server.superuser_dsn, dbname=rds.dbname) as conn:
        state["ledger"] = conn.execute(
            "SELECT name, checksum FROM swipesavvy_meta.schema_migrations ORDER BY 1"
        ).fetchall()
        state["flags"] = conn.execute(
            "SELECT key, enabled, rollout_percentage FROM feature_flags ORDER BY 1"
        ).fetchall()
        state["roles"] = conn.execute(
            "SELECT rolname, rolcanlogin, rolcreatedb, rolcreaterole, rolconnlimit, rolpassword FROM pg_authid"
            " ORDER BY 1"
        ).fetchall()
        state["members"] = conn.execute(
            "SELECT r.rolname, g.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member"
            " JOIN pg_roles g ON g.oid = m.roleid ORDER BY 1, 2"
        ).fetchall()
    return state


@pytest.fixture
def deployed(rds_database):
    """The stack after `pulumi up`: migrated, its three logins created from their secrets,
    and an unrelated role with powers of its own that the stack does not manage."""
    rds = rds_database
    secrets, passwords = {}, {}
    with connect(rds.master_dsn) as conn:
        apply_migrations(conn, load_migrations())
        for login, group in LOGIN_GROUPS.items():
            passwords[login] = f"pw-{uuid.uuid4().hex}"
            secrets[login] = put_secret(
                f"swipesavvy/staging/db/{login}-{rds.dbname}", {"username": login, "password": passwords[login]}
            )
            ensure_login(conn, LoginSpec(login, group, connection_limit=5), passwords[login])
        unrelated = f"unrelated_{uuid.uuid4().hex[:8]}"
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEDB CREATEROLE").format(sql.Identifier(unrelated)))
    connection = rds.connection(port=float(rds.server.port))
    deployment = SimpleNamespace(
        rds=rds,
        connection=connection,
        secrets=secrets,
        passwords=passwords,
        unrelated=unrelated,
        writer=deployed_for(connection, secrets=secrets, allow_data_destruction=False),
        reader=deployed_for(connection, secrets=secrets, access="read", reader_login=READER),
    )
    try:
        yield deployment
    finally:
        with connect(rds.master_dsn) as conn:
            for role in (unrelated, "swipesavvy_monitor"):
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def foreign_secret() -> str:
    return put_secret(f"swipesavvy/other/db/x-{uuid.uuid4().hex[:8]}", {"username": "x", "password": "other-pw"})


def login_args(deployed, **overrides) -> dict:
    """create_login's arguments as LoginRole sends them for swipesavvy_backend."""
    return {
        "name": "swipesavvy_backend",
        "group": "swipesavvy_readwrite",
        "connection_limit": 50.0,
        "statement_timeout_ms": 0.0,
        "password_secret_arn": deployed.secrets["swipesavvy_backend"],
        **overrides,
    }


REFUSALS = {
    # id: (operation, args, connection changes, extra event fields, the refusal's words)
    "drop-without-permission": (
        "drop_schema",
        {},
        {},
        {},
        "drop_schema destroys data, which this stack does not allow (database.allowDataDestruction is false);"
        " nothing was changed",
    ),
    "foreign-group": (
        "create_login",
        {"group": "pg_read_server_files"},
        {},
        {},
        "group 'pg_read_server_files' is not swipesavvy_backend's group 'swipesavvy_readwrite' as this stack"
        " declares it; nothing was changed",
    ),
    "unmanaged-role-create": ("create_login", {"name": "{unrelated}", "group": "swipesavvy_readonly"}, {}, {}, None),
    "unmanaged-role-drop": ("drop_login", {"name": "{unrelated}"}, {}, {}, None),
    "unmanaged-role-read": ("read_login", {"name": "{unrelated}"}, {}, {}, None),
    "foreign-database": (
        "migrate",
        {"migrations": "{planned}"},
        {"dbname": "postgres"},
        {},
        "database 'postgres' at {host}:{port} is not this operator's database '{dbname}' at {host}:{port};"
        " nothing was changed",
    ),
    "foreign-host": ("read_schema", {}, {"host": "db.elsewhere.example"}, {}, "is not this operator's database"),
    "foreign-login-secret": (
        "create_login",
        {"password_secret_arn": "{foreign}"},
        {},
        {},
        "secret '{foreign}' is not swipesavvy_backend's secret as this stack declares it; nothing was changed",
    ),
    "foreign-master-secret": (
        "unseed",
        {},
        {"password_secret_arn": "{foreign}"},
        {},
        "secret '{foreign}' is not {master}'s secret as this stack declares it; nothing was changed",
    ),
    "foreign-connection-role": (
        "migrate",
        {"migrations": "{planned}"},
        {"user": "{unrelated}"},
        {},
        "role '{unrelated}' is not this database's deploying login '{master}'; nothing was changed",
    ),
    "verify-as-unmanaged-role": (
        "verify_login",
        {"may_write": True},
        {"user": "{unrelated}"},
        {},
        "role '{unrelated}' is not a login this stack manages",
    ),
    "unknown-operation": ("grant_superuser", {}, {}, {}, "unknown operation 'grant_superuser'; known: migrate,"),
    "unlimited-connections": (
        "create_login",
        {"connection_limit": -1},
        {},
        {},
        "connection_limit -1 is not swipesavvy_backend's connection_limit 50 as this stack declares it;"
        " nothing was changed",
    ),
    "more-connections": ("create_login", {"connection_limit": 5000.0}, {}, {}, "connection_limit 5000.0 is not"),
    "other-statement-timeout": (
        "create_login",
        {"statement_timeout_ms": 1.0},
        {},
        {},
        "statement_timeout_ms 1.0 is not swipesavvy_backend's statement_timeout_ms 0 as this stack declares it;"
        " nothing was changed",
    ),
    "invoker-claimed": (
        "apply_flags",
        {"flags": {"dark_mode": {"enabled": False, "rollout_percentage": 0.0}}, "actor": "x", "invoker": "lambda x"},
        {},
        {},
        "args.invoker is not the caller's to set: the operator records who invoked it",
    ),
    "event-names-a-database": (
        "migrate",
        {"migrations": "{planned}"},
        {},
        {"dbname": "postgres"},
        "the event has fields this operator does not take: dbname;",
    ),
}


def _fill(value, names: dict):
    if isinstance(value, str):
        return names["planned"] if value == "{planned}" else value.format(**names)
    return {key: _fill(item, names) for key, item in value.items()} if isinstance(value, dict) else value


@pytest.mark.parametrize("case", list(REFUSALS))
def test_an_event_beyond_the_stacks_authority_is_refused_and_changes_nothing(deployed, case, capsys):
    operation, args, connection_changes, extra, words = REFUSALS[case]
    rds = deployed.rds
    names = {
        "unrelated": deployed.unrelated,
        "foreign": foreign_secret(),
        "planned": planned_migrations(),
        "master": rds.server.master_user,
        "host": rds.server.host,
        "port": rds.server.port,
        "dbname": rds.dbname,
    }
    if operation in ("create_login",):
        args = login_args(deployed, **args)
    args = _fill(args, names)
    before = database_state(rds)
    answer = call(
        {**deployed.connection, **_fill(connection_changes, names)},
        operation,
        args,
        authority=deployed.writer,
        **extra,
    )
    assert answer["ok"] is False and answer["kind"] == "invalid", answer
    expected = _fill(words, names) if words else f"role '{deployed.unrelated}' is not a login this stack manages"
    assert expected in answer["error"]
    assert database_state(rds) == before
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (record["record"], record["operation"], record["outcome"]) == (RECORD, operation, "invalid")


def test_what_the_stack_declares_is_still_done(deployed):
    """The same events within the authority run: the operator is not merely refusing."""
    rds = deployed.rds
    assert result_of(call(deployed.connection, "create_login", login_args(deployed), authority=deployed.writer)) == {}
    assert result_of(
        call(deployed.connection, "migrate", {"migrations": planned_migrations()}, authority=deployed.writer)
    )
    allowed = deployed_for(deployed.connection, secrets=deployed.secrets, allow_data_destruction=True)
    assert result_of(call(deployed.connection, "drop_schema", authority=allowed)) == {}
    assert rds.scalar("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'") == 0


# --- the read-only path ---------------------------------------------------------------------------


def test_the_reader_answers_every_read_as_its_read_only_login(deployed):
    """refresh's reads of every dynamic resource and verify, through the reader, answer what
    the operator answers (it reads as swipesavvy_analytics, which only reads)."""
    connection = deployed.connection
    result_of(call(connection, "seed", SEED_ARGS, authority=deployed.writer))
    flags = {"keys": ["dark_mode", "community_feed"]}
    reads = [
        ("read_schema", {}),
        ("read_seed", {}),
        ("read_flags", flags),
        *(("read_login", {"name": login}) for login in LOGIN_GROUPS),
        ("verify", {"require_seed": True}),
    ]
    assert {operation for operation, _ in reads} == READ_OPERATIONS
    for operation, args in reads:
        as_reader = result_of(call(connection, operation, args, authority=deployed.reader))
        assert as_reader == result_of(call(connection, operation, args, authority=deployed.writer)), operation
    assert all(r["passed"] for r in result_of(call(connection, "verify", authority=deployed.reader))["results"])


WRITES = {
    "migrate": {"migrations": planned_migrations()},
    "drop_schema": {},
    "seed": SEED_ARGS,
    "unseed": {},
    "apply_flags": {"flags": {"dark_mode": {"enabled": False, "rollout_percentage": 0.0}}, "actor": "pulumi:staging"},
    "create_login": None,  # login_args
    "drop_login": {"name": "swipesavvy_backend"},
    "verify_login": {"may_write": True},
}


def test_the_reader_refuses_every_other_operation(deployed):
    assert set(WRITES) == set(OPERATIONS) - READ_OPERATIONS
    before = database_state(deployed.rds)
    for operation, args in WRITES.items():
        connection = deployed.connection
        if operation == "verify_login":
            connection = {
                **connection,
                "user": "swipesavvy_backend",
                "password_secret_arn": deployed.secrets["swipesavvy_backend"],
            }
        answer = call(connection, operation, args or login_args(deployed), authority=deployed.reader)
        assert answer["ok"] is False and answer["kind"] == "invalid", (operation, answer)
        assert answer["error"].startswith(f"{operation} is not a read; this is the read-only operator"), answer
    assert database_state(deployed.rds) == before


@pytest.mark.parametrize("operation", sorted(set(WRITES) - {"verify_login"}))
def test_the_readers_login_itself_cannot_write(deployed, operation):
    """Behind the refusal, the database refuses too: each change run directly as the
    reader's login fails with a permission error and changes nothing."""
    reader_connection = deployed.reader.connection_as(READER)
    before = database_state(deployed.rds)
    args = WRITES[operation] or login_args(deployed)
    with pytest.raises(Exception) as error:
        run_operation(reader_connection, operation, args)
    assert (
        "permission denied" in str(error.value)
        or "must be owner" in str(error.value)
        or isinstance(error.value.__cause__ or error.value.__context__, psycopg.errors.InsufficientPrivilege)
    ), repr(error.value)
    assert database_state(deployed.rds) == before


# --- the record of every call -----------------------------------------------------------------


def test_every_call_leaves_one_json_line_without_a_secret(deployed, capsys):
    context = SimpleNamespace(aws_request_id="req-0123", get_remaining_time_in_millis=lambda: 900_000)
    args = login_args(deployed)
    result_of(call(deployed.connection, "create_login", args, context=context, authority=deployed.writer))
    call(deployed.connection, "drop_schema", context=context, authority=deployed.writer)
    lines = capsys.readouterr().out.strip().splitlines()
    records = [json.loads(line) for line in lines if line.startswith("{")]
    assert len(records) == 2
    ok, refused = records
    assert set(ok) == {"record", "operation", "arguments_sha256", "outcome", "duration_ms", "request_id"}
    assert (ok["operation"], ok["outcome"], ok["request_id"]) == ("create_login", "ok", "req-0123")
    assert ok["arguments_sha256"] == __import__("hashlib").sha256(json.dumps(args, sort_keys=True).encode()).hexdigest()
    assert ok["duration_ms"] >= 0
    assert (refused["operation"], refused["outcome"]) == ("drop_schema", "invalid")
    assert refused["error"].startswith("drop_schema destroys data")
    everything = "\n".join(lines)
    for password in (*deployed.passwords.values(), deployed.rds.server.master_password):
        assert password not in everything
    assert deployed.secrets["swipesavvy_backend"] not in ok.values()  # the arguments appear only as a digest


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        (None, "this operator has no SWIPESAVVY_OPERATOR_AUTHORITY configuration and refuses every request"),
        ("{not json", "this operator's SWIPESAVVY_OPERATOR_AUTHORITY configuration is unreadable (JSONDecodeError:"),
        (
            '{"access": "admin", "database": {}, "logins": {}, "allow_data_destruction": false}',
            "this operator's SWIPESAVVY_OPERATOR_AUTHORITY configuration is unreadable (KeyError: 'host')",
        ),
        (
            Authority("read", dict.fromkeys(DATABASE_KEYS, "x"), {}, False, "swipesavvy_analytics").to_json(),
            "this operator's SWIPESAVVY_OPERATOR_AUTHORITY configuration names no usable access or login",
        ),
    ],
    ids=["absent", "not-json", "incomplete", "reader-without-its-login"],
)
def test_a_function_without_its_authority_refuses_everything(rds_database, monkeypatch, environment, message):
    if environment is None:
        monkeypatch.delenv(AUTHORITY_ENV, raising=False)
    else:
        monkeypatch.setenv(AUTHORITY_ENV, environment)
    event = {"operation": "read_schema", "connection": rds_database.connection(), "args": {}}
    answer = handler(event, None)
    assert answer["ok"] is False and answer["kind"] == "failed"
    assert answer["error"].startswith(message), answer
