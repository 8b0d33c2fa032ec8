"""``python -m ops ... --stack NAME``: the database a stack deployed, found in its outputs.

A fake ``pulumi`` first on PATH prints the outputs. The database is real (the RDS-like
server, its master password in moto's Secrets Manager); the operator path sends each
request through ``dbops.operator_client.invoke_operator`` to ``dbops.operator_handler.handler``
in this process, standing in for Lambda (the operator and its reader, each with the
authority the program gives it): the request and the answer cross as JSON bytes.
"""

from __future__ import annotations

import io
import json
import os
import socket
import sys
import threading
import uuid
from contextlib import redirect_stdout
from dataclasses import replace

import psycopg
import pytest
from rds_helpers import put_secret

from components.config import PROJECT_ROOT
from dbops import operator_client, operator_handler, transport
from dbops.authority import AUTHORITY_ENV, Authority, ManagedLogin
from dbops.connection import connect
from dbops.logins import LoginSpec, ensure_login
from dbops.migrations import load_migrations
from dbops.operator_handler import handler
from ops.cli import EXIT_FAILED, EXIT_LOCKED, EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE, main
from seed.generator import SeedParameters, expected_counts
from seed.loader import SEED_LOCK_KEY

STACK = "staging"
OPERATOR_ARN = "arn:aws:lambda:us-east-1:123456789012:function:swipesavvy-staging-db-operator"
READER_ARN = "arn:aws:lambda:us-east-1:123456789012:function:swipesavvy-staging-db-reader"
PULUMI_ARGV = ["stack", "output", "--json", "--show-secrets=false", "--stack", STACK]
FAKE_PULUMI = """\
#!{python}
import json, os, sys
with open(os.environ["FAKE_PULUMI_LOG"], "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
if os.environ.get("FAKE_PULUMI_STDERR"):
    sys.stderr.write(os.environ["FAKE_PULUMI_STDERR"])
    sys.exit(int(os.environ["FAKE_PULUMI_EXIT"]))
with open(os.environ["FAKE_PULUMI_OUTPUTS"]) as outputs:
    sys.stdout.write(outputs.read())
"""


class FakePulumi:
    def __init__(self, directory, monkeypatch):
        self.directory, self.monkeypatch = directory, monkeypatch
        self.log, self.outputs = directory / "calls.jsonl", directory / "outputs.json"
        monkeypatch.setenv("FAKE_PULUMI_LOG", str(self.log))
        monkeypatch.setenv("FAKE_PULUMI_OUTPUTS", str(self.outputs))

    def set_outputs(self, outputs: dict) -> None:
        self.outputs.write_text(json.dumps(outputs, indent=4))

    def fail(self, stderr: str, exit_code: int = 255) -> None:
        self.monkeypatch.setenv("FAKE_PULUMI_STDERR", stderr)
        self.monkeypatch.setenv("FAKE_PULUMI_EXIT", str(exit_code))

    def calls(self) -> list[list[str]]:
        return [json.loads(line) for line in self.log.read_text().splitlines()] if self.log.exists() else []


@pytest.fixture
def pulumi(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "pulumi"
    script.write_text(FAKE_PULUMI.format(python=sys.executable))
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("SWIPESAVVY_DSN", raising=False)
    return FakePulumi(tmp_path, monkeypatch)


class InProcessLambda:
    """What the operator client needs of a Lambda client, answered by the handler here, as
    the operator or its reader, each configured as the program deploys it for ``connection``."""

    def __init__(self, rds_database):
        self.events: list[dict] = []
        self.invoked: list[str] = []  # the function each event went to
        self.log = io.StringIO()  # the function's log: what the operations print
        self.rds_database = rds_database
        self.deploy(rds_database.connection())

    def deploy(self, connection: dict) -> None:
        logins = {
            login: ManagedLogin(group, app_login_secret(self.rds_database, login)[0], connection_limit=5)
            for login, group in {**APP_LOGINS, "swipesavvy_monitor": "swipesavvy_monitoring"}.items()
        }
        writer = Authority("write", connection, logins)
        self.authorities = {OPERATOR_ARN: writer, READER_ARN: replace(writer, access="read", reader_login=READER)}

    def get_function(self, FunctionName):
        assert FunctionName in self.authorities
        return {"Configuration": {"State": "Active"}}

    def invoke(self, FunctionName, InvocationType, Payload):
        assert InvocationType == "RequestResponse"
        event = json.loads(Payload)
        self.events.append(event)
        self.invoked.append(FunctionName)
        saved = os.environ.get(AUTHORITY_ENV)
        os.environ[AUTHORITY_ENV] = self.authorities[FunctionName].to_json()
        try:
            with redirect_stdout(self.log):
                answer = handler(event, None)
        finally:
            os.environ.pop(AUTHORITY_ENV) if saved is None else os.environ.update({AUTHORITY_ENV: saved})
        return {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(answer).encode())}


@pytest.fixture
def operator(rds_database, monkeypatch):
    """Operations go through the operator only: the direct path would fail the test."""
    lam = InProcessLambda(rds_database)
    real = operator_client.invoke_operator
    monkeypatch.setattr(transport, "invoke_operator", lambda arn, request: real(arn, request, client=lam))
    monkeypatch.setattr(transport, "run_operation", lambda *_: pytest.fail("ran directly, not through the operator"))
    monkeypatch.setattr(operator_handler, "_sleep", lambda _s: None)  # the reader's login retried at once
    return lam


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str, *secrets: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err and all(secret not in err for secret in secrets)
    return lines[0]


APP_LOGINS = {"swipesavvy_backend": "swipesavvy_readwrite", "swipesavvy_analytics": "swipesavvy_readonly"}
READER = "swipesavvy_analytics"


def app_login_secret(rds_database, login: str) -> tuple[str, str]:
    """(ARN, password) of ``login``'s secret for this database, in moto, as the stack stores it."""
    password = f"pw-{rds_database.dbname}-{login}"
    document = {"engine": "postgres", "username": login, "password": password, "dbname": rds_database.dbname}
    return put_secret(f"swipesavvy/staging/db/{login}-{rds_database.dbname}", document), password


def create_app_logins(rds_database) -> None:
    """The two application logins with their secrets' passwords, as LoginRole creates them (after migrate)."""
    with connect(rds_database.master_dsn) as conn:
        for login, group in APP_LOGINS.items():
            ensure_login(conn, LoginSpec(login, group, connection_limit=5), app_login_secret(rds_database, login)[1])


def stack_outputs(rds_database, operator_arn: str | None = None, **connection_changes) -> dict:
    """The stack's outputs as `pulumi stack output --json` prints them."""
    outputs = {
        "db_address": rds_database.server.host,
        "db_port": rds_database.server.port,
        "db_name": rds_database.dbname,
        "db_master_secret_arn": rds_database.master_secret_arn,
        "db_app_secret_arns": {login: app_login_secret(rds_database, login)[0] for login in APP_LOGINS},
        "db_connection": rds_database.connection(**connection_changes),
    }
    if operator_arn:
        outputs["db_operator_arn"] = operator_arn
        outputs["db_reader_arn"] = READER_ARN
    return outputs


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- the same commands, the same output, through either transport ---------------------------


@pytest.mark.parametrize("transport", ["direct", "operator"])
def test_migrate_seed_verify_unseed_from_the_stack_outputs(rds_database, pulumi, capsys, request, transport):
    lam = request.getfixturevalue("operator") if transport == "operator" else None
    pulumi.set_outputs(stack_outputs(rds_database, OPERATOR_ARN if lam else None))
    label = (
        f"{rds_database.server.master_user}@{rds_database.server.host}:{rds_database.server.port}/{rds_database.dbname}"
    )
    password = rds_database.server.master_password
    migrations = [m.name for m in load_migrations()]

    code, out, err = run(capsys, "db", "migrate", "--stack", STACK)
    assert code == EXIT_OK, err
    assert out.splitlines() == [f"applied {name}" for name in migrations] + [
        f"{len(migrations)} migration(s) applied to {label}; 0 were already applied"
    ]
    assert pulumi.calls() == [PULUMI_ARGV]
    code, out, _ = run(capsys, "db", "migrate", "--stack", STACK)
    assert out == f"nothing to apply: all {len(migrations)} migrations already applied to {label}\n"

    params = SeedParameters(scale=0.02)
    total = sum(expected_counts(params).values())
    code, out, err = run(capsys, "db", "seed", "--stack", STACK, "--scale", "0.02")
    assert code == EXIT_OK, err
    assert f"seeded {total:,} rows (scale 0.02, rng seed {params.rng_seed}, anchor " in out
    assert f") into {label} in " in out and "replacing" not in out
    assert out.splitlines()[0].split() == ["table", "rows"]
    code, out, _ = run(capsys, "db", "seed", "--stack", STACK, "--scale", "0.02")
    assert code == EXIT_OK and f"already seeded (scale 0.02, rng seed {params.rng_seed}" in out
    code, out, _ = run(capsys, "db", "seed", "--stack", STACK, "--scale", "0.03")
    assert code == EXIT_OK and f", replacing {total:,} earlier mock rows" in out

    create_app_logins(rds_database)
    code, stack_out, err = run(capsys, "verify", "--stack", STACK, "--require-seed")
    assert code == EXIT_OK, err
    code, dsn_out, _ = run(capsys, "verify", "--dsn", rds_database.master_dsn, "--require-seed")
    master_rows = dsn_out.splitlines()[:-1]  # the same checklist, then the logins' rows
    login_rows = stack_out.splitlines()[len(master_rows) : -1]
    assert [line.split()[:2] for line in stack_out.splitlines()[: len(master_rows)]] == [
        line.split()[:2] for line in master_rows
    ]
    assert [line.split()[:2] for line in login_rows] == [
        ["✓", "backend_verify"], ["✓", "backend_reads"], ["✓", "backend_writes"],
        ["✓", "analytics_verify"], ["✓", "analytics_reads"], ["✓", "analytics_read_only"],
    ]  # fmt: skip
    assert "INSERT refused: permission denied for table feature_flag_usage" in stack_out
    assert f"checks passed on {label}" in stack_out

    code, out, err = run(capsys, "db", "unseed", "--stack", STACK)
    assert code == EXIT_OK, err
    assert (
        out.splitlines()[-1]
        == f"removed {sum(expected_counts(SeedParameters(scale=0.03)).values()):,} mock rows from {label}"
    )
    assert password not in out + err
    assert rds_database.scalar("SELECT count(*) FROM campaigns") == 0

    if lam:
        calls = [
            (arn.rsplit("-", 1)[1], event["operation"]) for arn, event in zip(lam.invoked, lam.events, strict=True)
        ]

        def read(operation: str) -> list[tuple[str, str]]:
            # Until the stack's logins exist the reader cannot log in: the read falls back.
            return [("reader", operation), ("operator", operation)]

        assert calls == [
            *read("read_schema"), ("operator", "migrate"), *read("read_schema"), ("operator", "migrate"),
            *read("read_seed"), ("operator", "seed"), *read("read_seed"), ("operator", "seed"),
            *read("read_seed"), ("operator", "seed"),
            ("reader", "verify"), ("operator", "verify_login"), ("operator", "verify_login"), ("operator", "unseed"),
        ]  # fmt: skip
        for event in lam.events:
            assert set(event) == {"operation", "connection", "args", "lock_timeout_s"}
            login = event["connection"]["user"]
            if event["operation"] == "verify_login":  # as the login, with its own secret
                expected = rds_database.connection(
                    user=login, password_secret_arn=app_login_secret(rds_database, login)[0]
                )
                assert event["args"] == {"may_write": login == "swipesavvy_backend", "require_seed": True}
            else:
                expected = rds_database.connection()
            assert event["connection"] == expected  # names the secret, holds no password
            assert password not in json.dumps(event) and "pw-" not in json.dumps(event)
        assert "applied 001_roles_schemas_and_privileges (" in lam.log.getvalue()


@pytest.mark.parametrize("transport", ["direct", "operator"])
def test_verify_failure_is_the_checklist_and_one_line(rds_database, pulumi, capsys, request, transport):
    if transport == "operator":
        request.getfixturevalue("operator")
    pulumi.set_outputs(stack_outputs(rds_database, OPERATOR_ARN if transport == "operator" else None))
    assert run(capsys, "db", "migrate", "--stack", STACK)[0] == EXIT_OK
    create_app_logins(rds_database)
    rds_database.execute("CREATE TABLE public.stray (id int)")
    code, out, err = run(capsys, "verify", "--stack", STACK)
    assert code == EXIT_FAILED
    assert "✗ tables" in out
    # A table the logins have no privilege on is still one they see (the catalog, not
    # information_schema): their checklists fail the same way.
    assert one_line_error(err) == "error: verify failed: tables, backend_verify, analytics_verify"


def test_connect_host_and_port_override_the_outputs_for_a_tunnel(rds_database, pulumi, capsys):
    pulumi.set_outputs(stack_outputs(rds_database, host="10.40.3.17", port=_closed_port()))
    code, _, err = run(capsys, "db", "migrate", "--stack", STACK, "--connect-host", "127.0.0.1", "--connect-port", "1")
    assert code == EXIT_UNAVAILABLE and "127.0.0.1:1" in one_line_error(err)
    code, out, err = run(
        capsys, "db", "migrate", "--stack", STACK, "--connect-host", "127.0.0.1",
        "--connect-port", str(rds_database.server.port),
    )  # fmt: skip
    assert code == EXIT_OK, err
    assert f"applied to {rds_database.server.master_user}@127.0.0.1:{rds_database.server.port}/" in out


@pytest.mark.parametrize("transport", ["direct", "operator"])
def test_an_analytics_login_that_can_write_fails_verify(rds_database, pulumi, capsys, request, transport):
    if transport == "operator":
        request.getfixturevalue("operator")
    pulumi.set_outputs(stack_outputs(rds_database, OPERATOR_ARN if transport == "operator" else None))
    assert run(capsys, "db", "migrate", "--stack", STACK)[0] == EXIT_OK
    create_app_logins(rds_database)
    rds_database.execute("GRANT swipesavvy_readwrite TO swipesavvy_analytics")  # a hand-made mistake
    code, out, err = run(capsys, "verify", "--stack", STACK)
    assert code == EXIT_FAILED
    assert "INSERT ALLOWED" in next(line for line in out.splitlines() if line.startswith("✗ analytics_read_only"))
    assert "✓ backend_writes" in out
    assert one_line_error(err) == "error: verify failed: analytics_read_only"
    assert rds_database.scalar("SELECT count(*) FROM feature_flag_usage") == 0  # the probes left nothing


@pytest.mark.parametrize(
    ("arns", "message"),
    [
        (None, "has no usable db_app_secret_arns output (swipesavvy_backend, swipesavvy_analytics)"),
        ({"swipesavvy_backend": "[secret]", "swipesavvy_analytics": "[secret]"}, "is not a Secrets Manager ARN"),
    ],
    ids=["missing", "masked"],
)
def test_a_stack_without_usable_login_secrets_is_a_usage_error(rds_database, pulumi, capsys, arns, message):
    outputs = stack_outputs(rds_database)
    outputs["db_app_secret_arns"] = arns
    pulumi.set_outputs(outputs)
    code, _, err = run(capsys, "verify", "--stack", STACK)
    assert code == EXIT_USAGE and message in one_line_error(err)


def test_an_unreadable_login_secret_is_exit_3(rds_database, pulumi, capsys):
    outputs = stack_outputs(rds_database)
    outputs["db_app_secret_arns"]["swipesavvy_analytics"] += "-gone"
    pulumi.set_outputs(outputs)
    assert run(capsys, "db", "migrate", "--stack", STACK)[0] == EXIT_OK
    create_app_logins(rds_database)
    code, _, err = run(capsys, "verify", "--stack", STACK)
    assert code == EXIT_UNAVAILABLE and "ResourceNotFoundException" in one_line_error(err)


# --- bounded lock waits ---------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["direct", "operator"])
def test_another_seeders_lock_is_waited_for_then_given_up(rds_database, pulumi, capsys, request, transport):
    if transport == "operator":
        request.getfixturevalue("operator")
    pulumi.set_outputs(stack_outputs(rds_database, OPERATOR_ARN if transport == "operator" else None))
    assert run(capsys, "db", "migrate", "--stack", STACK)[0] == EXIT_OK
    with psycopg.connect(rds_database.master_dsn, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (SEED_LOCK_KEY,))
        # Were the wait unbounded, the unseed would succeed once this releases the lock (and
        # the test would not hang): only a wait of minutes would reach it, however busy the machine.
        safety_valve = threading.Timer(300, other.execute, ("SELECT pg_advisory_unlock(%s)", (SEED_LOCK_KEY,)))
        safety_valve.start()
        code, _, err = run(capsys, "db", "unseed", "--stack", STACK, "--lock-timeout", "0.5")
        safety_valve.cancel()
    assert code == EXIT_LOCKED
    assert one_line_error(err).startswith("error: gave up after 0.5 s waiting for a lock another session holds")


# --- failures: one line, the README's exit codes --------------------------------------------


def test_without_the_pulumi_cli_is_a_usage_error(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    code, _, err = run(capsys, "verify", "--stack", STACK)
    assert code == EXIT_USAGE
    assert "Pulumi CLI, which is not on PATH" in one_line_error(err)


@pytest.mark.parametrize(
    ("stderr", "exit_code", "message"),
    [
        (
            "error: no stack named 'staging' found\n",
            EXIT_USAGE,
            "error: stack 'staging' not found: no stack named 'staging' found (fix: `pulumi stack ls` lists the stacks)",
        ),
        (
            "Logging in...\nerror: PULUMI_ACCESS_TOKEN must be set for login during non-interactive CLI sessions\n",
            EXIT_UNAVAILABLE,
            "error: cannot read the outputs of stack 'staging': PULUMI_ACCESS_TOKEN must be set for login "
            "during non-interactive CLI sessions",
        ),
    ],
    ids=["no-such-stack", "not-logged-in"],
)
def test_pulumi_failures_are_one_line(pulumi, capsys, stderr, exit_code, message):
    pulumi.fail(stderr)
    code, _, err = run(capsys, "db", "migrate", "--stack", STACK)
    assert code == exit_code
    assert one_line_error(err) == message


@pytest.mark.parametrize(
    "outputs",
    [{}, {"db_connection": "[secret]"}, {"db_connection": {"host": "h", "port": 5432, "dbname": "d", "user": "u"}}],
    ids=["none", "masked", "no-secret-arn"],
)
def test_a_stack_without_a_usable_connection_output_is_a_usage_error(pulumi, capsys, outputs):
    pulumi.set_outputs(outputs)
    code, _, err = run(capsys, "verify", "--stack", STACK)
    assert code == EXIT_USAGE
    assert "has no usable db_connection output" in one_line_error(err)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["verify", "--stack", STACK, "--dsn", "host=x"], "--dsn and --stack are alternatives"),
        (
            ["verify", "--connect-host", "127.0.0.1", "--dsn", "host=x"],
            "--connect-host and --connect-port go with --stack",
        ),
        (["db", "seed", "--stack", STACK, "--force"], "--force is not available with --stack"),
        (["db", "unseed", "--stack", STACK, "--connect-port", "0"], "--connect-port: must be a port number"),
    ],
)
def test_conflicting_options_are_usage_errors(pulumi, capsys, argv, message):
    code, _, err = run(capsys, *argv)
    assert code == EXIT_USAGE
    assert message in one_line_error(err)
    assert pulumi.calls() == []


def test_a_tunnel_override_with_an_operator_is_a_usage_error(rds_database, pulumi, operator, capsys):
    pulumi.set_outputs(stack_outputs(rds_database, OPERATOR_ARN))
    code, _, err = run(capsys, "verify", "--stack", STACK, "--connect-host", "127.0.0.1")
    assert code == EXIT_USAGE and "runs database operations through its operator function" in one_line_error(err)
    assert operator.events == []


def test_an_unreachable_database_through_the_operator_is_exit_3(rds_database, pulumi, operator, capsys):
    port = _closed_port()
    operator.deploy(rds_database.connection(port=port))  # the stack's database, unreachable from the operator
    pulumi.set_outputs(stack_outputs(rds_database, OPERATOR_ARN, port=port))
    code, _, err = run(capsys, "verify", "--stack", STACK)
    assert code == EXIT_UNAVAILABLE
    assert "cannot connect to" in one_line_error(err, rds_database.server.master_password)


def test_a_refused_login_directly_is_exit_3_without_the_password(rds_database, pulumi, capsys, monkeypatch):
    from rds_helpers import rotate_password

    wrong = f"wrong-{uuid.uuid4().hex}"
    rotate_password(rds_database.master_secret_arn, wrong)
    pulumi.set_outputs(stack_outputs(rds_database))
    code, _, err = run(capsys, "verify", "--stack", STACK)
    assert code == EXIT_UNAVAILABLE
    assert "password authentication failed" in one_line_error(err, wrong, rds_database.server.master_password)


def test_an_unreadable_secret_directly_is_exit_3(rds_database, pulumi, capsys):
    pulumi.set_outputs(stack_outputs(rds_database, password_secret_arn=rds_database.master_secret_arn + "-gone"))
    code, _, err = run(capsys, "verify", "--stack", STACK)
    assert code == EXIT_UNAVAILABLE
    assert "ResourceNotFoundException" in one_line_error(err)


def test_the_module_entry_point_with_a_stack(rds_database, pulumi, tmp_path):
    """``python -m ops`` as the operator runs it: the fake pulumi found on PATH, one line on failure."""
    import subprocess

    pulumi.set_outputs(stack_outputs(rds_database, port=_closed_port()))
    result = subprocess.run(
        [sys.executable, "-m", "ops", "verify", "--stack", STACK],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == EXIT_UNAVAILABLE, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: cannot connect to")


# --- a read-only run (pull-request previews, drift checks) ---------------------------------------


def test_a_read_only_run_reads_through_the_reader_and_refuses_changes_before_invoking(
    rds_database, pulumi, operator, capsys, monkeypatch
):
    pulumi.set_outputs(stack_outputs(rds_database, OPERATOR_ARN))
    assert run(capsys, "db", "migrate", "--stack", STACK)[0] == EXIT_OK
    create_app_logins(rds_database)
    monkeypatch.setenv(transport.READ_ONLY_ENV, "true")
    invoked = len(operator.events)

    code, _, err = run(capsys, "db", "unseed", "--stack", STACK)
    assert code == EXIT_USAGE
    assert one_line_error(err) == (
        "error: unseed needs the function that may change the database, and SWIPESAVVY_DB_READ_ONLY is set: "
        "this run may only read "
        "(read_flags, read_login, read_schema, read_seed, verify); nothing was invoked"
    )
    assert len(operator.events) == invoked
    # verify's checklist is a read: the reader answers it; the logins' own checks (which
    # connect as each login) are skipped, saying so.
    code, out, err = run(capsys, "verify", "--stack", STACK)
    assert code == EXIT_OK, err
    assert err == "the logins' own checks are skipped: SWIPESAVVY_DB_READ_ONLY is set\n"
    assert "backend_" not in out and out.splitlines()[-1].startswith("all ")
    calls = [
        (arn.rsplit("-", 1)[1], event["operation"])
        for arn, event in zip(operator.invoked, operator.events, strict=True)
    ]
    assert calls[invoked:] == [("reader", "verify")]


def test_a_read_only_run_never_falls_back_to_the_operator(rds_database, pulumi, operator, capsys, monkeypatch):
    """The reader cannot log in (its login is not there yet): a read-only run fails, one
    line, rather than reading through the function that may change the database."""
    pulumi.set_outputs(stack_outputs(rds_database, OPERATOR_ARN))
    monkeypatch.setenv(transport.READ_ONLY_ENV, "true")
    code, _, err = run(capsys, "db", "migrate", "--stack", STACK)
    assert code == EXIT_UNAVAILABLE
    assert "password authentication failed for user" in one_line_error(err)
    assert operator.invoked == [READER_ARN]
