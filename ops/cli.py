"""``python -m ops``: the operator's commands, on the same code the Pulumi program runs.

    python -m ops db migrate --dsn DSN     apply pending migrations
    python -m ops db seed --dsn DSN        load the mock data (runbook phase 2), all or nothing
    python -m ops db unseed --dsn DSN      remove the mock data and nothing else
    python -m ops verify --dsn DSN         the runbook's checks as a checklist
    python -m ops sandbox                  all of the above on a throwaway local PostgreSQL
    python -m ops smoke --stack NAME       the runbook's smoke, admin and latency checks over HTTP
    python -m ops rehearse                 the whole deployment on this machine, no cloud account
    python -m ops rollback --stack NAME    deploy an earlier update's commit and config again
    python -m ops review-config --pr N     write a review stack's settings from staging's
    python -m ops snapshots prune --stack NAME   delete a stack's older retained snapshots
    python -m ops drift --stack NAME       what changed outside the stack (preview --refresh, verify)
    python -m ops cost --stack NAME        the stack's monthly cost from its plan (ops/cost_cli.py)

The DSN may also come from ``SWIPESAVVY_DSN`` (keeps the password out of ``ps``), and libpq's
own ``PGPASSWORD``/``~/.pgpass`` work as usual. Instead of a DSN, ``--stack NAME`` takes the
database from the stack's outputs (``pulumi stack output``): ``db_connection``, run through
the operator function ``db_operator_arn`` (reads through its read-only twin ``db_reader_arn``)
when the stack has one, else directly (with
``--connect-host``/``--connect-port`` for a tunnel), as the stack's own resources run them. Exit codes: the EXIT_* constants below, as
the README lists them. Every failure is one line on stderr, never a traceback, and no
message contains the DSN or a password (``report`` scrubs them on the way out).
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, redirect_stdout, suppress
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import psycopg
import yaml
from psycopg import sql
from psycopg.conninfo import make_conninfo

from components.config import NAMESPACE, ConfigError, StackConfig, parse_stack_config
from ops import review, snapshots
from ops.connection import (
    DEFAULT_LOCK_TIMEOUT_S,
    DatabaseUnavailable,
    InvalidConnectionString,
    LockTimeout,
    advisory_lock,
    connect,
    describe,
    raised_during,
    scrub,
)
from ops.cost_cli import add_cost_parser, cost_summary
from ops.db_credentials import CONNECTION_KEYS, PASSWORD_SECRET_KEY, CredentialsUnavailable, port_number
from ops.local_postgres import LocalPostgres, Scratch, ServerUnavailable, start_postgres, terminate_on_sigterm
from ops.login_checks import MAY_WRITE
from ops.migrations import ADVISORY_LOCK_KEY, MigrationError, apply_migrations, load_migrations, migration_checksums
from ops.operator_client import OperatorError
from ops.operator_handler import lock_timed_out
from ops.plan import architecture_dot, plan_dot, plan_groups, plan_lines
from ops.rehearse import (
    BackgroundProgram,
    Criterion,
    Rehearsal,
    phase_lines,
    rehearsal_steps,
    run_steps,
    start_database,
)
from ops.smoke import ADMIN_TOKEN_ENV, API_TOKEN_ENV, Http, Limits, Undo, run_smoke, url_problem
from ops.transport import READ_ONLY_ENV, read_only, run_through
from ops.verify import SCHEMA_CHECKS, run_checks, seed_checks
from seed.generator import SeedParameters
from seed.loader import SEED_LOCK_KEY, SeedError, load_mock_data, unload_mock_data

EXIT_OK = 0  # success
EXIT_FAILED = 1  # a check, migration, seed, preview or up failed, or the login lacks a privilege
EXIT_USAGE = 2  # bad arguments (a malformed DSN, a bad URL...) or a missing prerequisite (pulumi, dot)
EXIT_UNAVAILABLE = 3  # the database, AWS (credentials), the Pulumi backend or embedded PostgreSQL unavailable
EXIT_LOCKED = 4  # gave up waiting for another migrate/seed run's lock; nothing changed
EXIT_NOT_RESTORED = 5  # smoke left an admin change the API did not confirm restored (the message says how)
EXIT_REFUSED = 6  # rollback refused (commit missing or dirty, no config, no such version, declined): nothing deployed
EXIT_DRIFT = 7  # drift: the stack's resources or database differ from what it declares
EXIT_INTERRUPTED = 130  # Ctrl-C: the message says what that left (README's exit-code table)
DSN_ENV = "SWIPESAVVY_DSN"
READ_ONLY_COMMANDS = (["drift"], ["cost"])  # read and print, never write: Ctrl-C leaves nothing changed
SANDBOX_DATABASE = "swipesavvy_sandbox"
PROJECT_ROOT = Path(__file__).resolve().parent.parent  # where Pulumi.yaml is: `pulumi` runs here
PULUMI_TIMEOUT_S = 120
CONNECTION_OUTPUT, OPERATOR_OUTPUT, READER_OUTPUT = "db_connection", "db_operator_arn", "db_reader_arn"
APP_SECRETS_OUTPUT = "db_app_secret_arns"
APP_URL_OUTPUTS = ("api_url", "site_url")
# The operator's failure kinds (ops.operator_handler) as exit codes.
OPERATOR_EXIT_CODES = {"invalid": EXIT_USAGE, "unavailable": EXIT_UNAVAILABLE, "locked": EXIT_LOCKED}


class CommandFailed(Exception):
    """A command that ran and failed; the message is the one line the operator sees."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED):
        super().__init__(message)
        self.exit_code = exit_code


class UsageError(CommandFailed):
    def __init__(self, message: str):
        super().__init__(message, EXIT_USAGE)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one UsageError line instead of usage text + exit."""

    def error(self, message: str):
        raise UsageError(f"{message} (see: {self.prog} --help)")


def resolve_dsn(args: argparse.Namespace) -> str:
    dsn = args.dsn or os.environ.get(DSN_ENV)
    if not dsn:
        raise UsageError(
            f"--dsn is required (or set {DSN_ENV}), e.g. --dsn 'host=... dbname=swipesavvy_staging user=...'"
        )
    return dsn


def _seconds(text: str) -> float:
    """The --lock-timeout value (an argparse ``type``)."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= 86400:
        raise argparse.ArgumentTypeError(f"must be a number of seconds from 0 to 86400, got {text!r}")
    return seconds


@contextmanager
def holding(conn: psycopg.Connection, key: int, args: argparse.Namespace, what: str, holder: str) -> Iterator[None]:
    """The advisory lock ``key``, waiting at most --lock-timeout seconds for ``holder`` to release it."""
    seconds, target = args.lock_timeout, describe(resolve_dsn(args))

    def on_wait() -> None:
        print(f"waiting up to {seconds:g} s for {holder} holding the {what} lock on {target}...", file=sys.stderr)

    try:
        with advisory_lock(conn, key, timeout_s=seconds, on_wait=on_wait):
            yield
    except LockTimeout:
        raise CommandFailed(
            f"gave up after {seconds:g} s: {holder} still holds the {what} lock on {target}; nothing was changed "
            "(fix: retry when it has finished, or raise --lock-timeout)",
            EXIT_LOCKED,
        ) from None


# --- --stack: the database a Pulumi stack deployed, directly or through its operator ---------


@dataclass(frozen=True)
class StackTarget:
    connection: dict[str, Any]  # the stack's db_connection, tunnel overrides applied
    operator_arn: str | None  # the stack's db_operator_arn: operations run in the VPC
    label: str  # user@host:port/dbname, as describe() gives it for a DSN
    reader_arn: str | None = None  # the stack's db_reader_arn: reads run in the VPC, read-only


def pulumi_not_on_path(what: str, alternative: str = "") -> UsageError:
    """The one answer, everywhere, to a missing Pulumi CLI: exit 2, like any missing prerequisite."""
    return UsageError(
        f"{what} the Pulumi CLI, which is not on PATH "
        f"(fix: install it, https://www.pulumi.com/docs/install/{f', or {alternative}' if alternative else ''})"
    )


def stack_outputs(stack: str, alternative: str = "use --dsn") -> dict[str, Any]:
    """``pulumi stack output --json`` of ``stack`` (secrets left masked: none is needed)."""
    command = ["pulumi", "stack", "output", "--json", "--show-secrets=false", "--stack", stack]
    try:
        done = subprocess.run(
            command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=PULUMI_TIMEOUT_S, check=False
        )
    except FileNotFoundError:
        raise pulumi_not_on_path("--stack reads the stack's outputs with", alternative) from None
    except subprocess.TimeoutExpired:
        raise CommandFailed(
            f"`pulumi stack output --stack {stack}` did not answer within {PULUMI_TIMEOUT_S} s "
            "(fix: check the backend with `pulumi whoami`)",
            EXIT_UNAVAILABLE,
        ) from None
    if done.returncode != 0:
        lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
        reason = next((line for line in lines if line.startswith("error:")), lines[-1] if lines else "")
        reason = reason.removeprefix("error:").strip() or f"exit code {done.returncode}"
        if "no stack named" in reason:
            raise UsageError(f"stack {stack!r} not found: {reason} (fix: `pulumi stack ls` lists the stacks)")
        raise CommandFailed(f"cannot read the outputs of stack {stack!r}: {reason}", EXIT_UNAVAILABLE)
    try:
        outputs = json.loads(done.stdout)
    except ValueError:
        outputs = None
    if not isinstance(outputs, dict):
        raise CommandFailed(
            f"`pulumi stack output --json --stack {stack}` did not print a JSON object", EXIT_UNAVAILABLE
        )
    return outputs


def stack_target(args: argparse.Namespace, outputs: dict[str, Any] | None = None) -> StackTarget:
    outputs = stack_outputs(args.stack) if outputs is None else outputs
    connection, operator_arn = outputs.get(CONNECTION_OUTPUT), outputs.get(OPERATOR_OUTPUT)
    required = ("host", "port", "dbname", "user", PASSWORD_SECRET_KEY)
    if not isinstance(connection, dict) or any(not connection.get(key) for key in required):
        raise UsageError(
            f"stack {args.stack!r} has no usable {CONNECTION_OUTPUT} output (host, port, dbname, user, "
            f"{PASSWORD_SECRET_KEY}) (fix: `pulumi up` with this version of the program, or use --dsn)"
        )
    reader_arn = outputs.get(READER_OUTPUT)
    for output, arn in ((OPERATOR_OUTPUT, operator_arn), (READER_OUTPUT, reader_arn)):
        if arn is not None and not (isinstance(arn, str) and arn.startswith("arn:")):
            raise UsageError(f"stack {args.stack!r} has a {output} output that is not a function ARN")
    connection = {key: connection[key] for key in (*CONNECTION_KEYS, PASSWORD_SECRET_KEY) if key in connection}
    if args.connect_host or args.connect_port:
        if operator_arn:
            raise UsageError(
                f"--connect-host/--connect-port are for a direct connection, but stack {args.stack!r} "
                "runs database operations through its operator function"
            )
        connection.update({"host": args.connect_host} if args.connect_host else {})
        connection.update({"port": args.connect_port} if args.connect_port else {})
    try:
        port = port_number(connection["port"])
    except ValueError as error:
        raise UsageError(
            f"stack {args.stack!r}: {CONNECTION_OUTPUT}.{str(error).removeprefix('connection.')}"
        ) from None
    label = f"{connection['user']}@{connection['host']}:{port}/{connection['dbname']}"
    return StackTarget(connection, operator_arn or None, label, reader_arn or None)


def stack_operation(args: argparse.Namespace, target: StackTarget, operation: str, op_args: dict[str, Any]) -> Any:
    """Run ``operation`` as the stack's providers do: through its operator, or directly."""
    lock_timeout_s = getattr(args, "lock_timeout", DEFAULT_LOCK_TIMEOUT_S)
    try:
        # The operations' progress lines go to stderr, as they go to the operator's log.
        with redirect_stdout(sys.stderr):
            return run_through(
                target.connection,
                target.operator_arn,
                operation,
                op_args,
                reader_arn=target.reader_arn,
                lock_timeout_s=lock_timeout_s,
            )
    except OperatorError as error:
        raise CommandFailed(str(error), OPERATOR_EXIT_CODES.get(error.kind, EXIT_FAILED)) from None
    except CredentialsUnavailable as error:
        raise CommandFailed(str(error), EXIT_UNAVAILABLE) from None
    except Exception as error:
        if lock_timed_out(error):
            raise CommandFailed(
                f"gave up after {lock_timeout_s:g} s waiting for a lock another session holds on {target.label} "
                "(another run, or a long transaction); the transaction in progress was rolled back "
                "(fix: retry when it has finished, or raise --lock-timeout)",
                EXIT_LOCKED,
            ) from None
        raise


def _stack_migrate(args: argparse.Namespace) -> int:
    target = stack_target(args)
    before = stack_operation(args, target, "read_schema", {})["migrations"]
    applied = stack_operation(args, target, "migrate", {"migrations": migration_checksums(load_migrations())})
    new = [name for name in applied["applied"] if name not in before]
    for name in new:
        print(f"applied {name}", flush=True)
    _print_migrated(len(new), len(applied["applied"]) - len(new), target.label)
    return EXIT_OK


def _stack_seed(args: argparse.Namespace) -> int:
    params = seed_parameters(args)
    if args.force:
        raise UsageError("--force is not available with --stack (fix: db unseed, then db seed)")
    requested = {
        "scale": params.scale,
        "rng_seed": params.rng_seed,
        "anchor_date": params.anchor_date.isoformat(),
        "dataset_version": params.dataset_version,
    }
    target = stack_target(args)
    before = stack_operation(args, target, "read_seed", {})
    report = stack_operation(args, target, "seed", requested)
    unchanged = before["checksum"] == report["checksum"] and all(before[k] == v for k, v in requested.items())
    _print_seeded(
        params,
        report["counts"],
        report["checksum"],
        report["seconds"],
        target.label,
        loaded=not unchanged,
        replaced=0 if unchanged else sum(before["counts"].values()),
    )
    return EXIT_OK


def _stack_unseed(args: argparse.Namespace) -> int:
    target = stack_target(args)
    _print_unseeded(stack_operation(args, target, "unseed", {})["removed"], target.label)
    return EXIT_OK


def app_login_connections(
    args: argparse.Namespace, outputs: dict[str, Any], target: StackTarget
) -> dict[str, dict[str, Any]]:
    """``{login: connection}`` for the application logins, each with its own secret from the
    stack's db_app_secret_arns output (and the target's host, port, database and TLS)."""
    arns = outputs.get(APP_SECRETS_OUTPUT)
    if not isinstance(arns, dict) or set(arns) != set(MAY_WRITE):
        raise UsageError(
            f"stack {args.stack!r} has no usable {APP_SECRETS_OUTPUT} output ({', '.join(MAY_WRITE)}) "
            "(fix: `pulumi up` with this version of the program)"
        )
    for login, arn in arns.items():
        if not (isinstance(arn, str) and arn.startswith("arn:aws:secretsmanager:")):
            raise UsageError(f"stack {args.stack!r}: {APP_SECRETS_OUTPUT}.{login} is not a Secrets Manager ARN")
    return {login: {**target.connection, "user": login, PASSWORD_SECRET_KEY: arns[login]} for login in MAY_WRITE}


def login_rows(login: str, results: list[dict[str, Any]]) -> list[tuple[str, bool, str]]:
    """An application login's checklist as rows: its access checks, and the verify checks
    folded into one row (they are the master checklist again, seen through this login)."""
    short = login.removeprefix("swipesavvy_")
    access = [r for r in results if r["name"].startswith("login_")]
    checks = [r for r in results if not r["name"].startswith("login_")]
    failed = [r["name"] for r in checks if not r["passed"]]
    summary = f"{len(checks)} verify checks as {login}: " + (f"failed {', '.join(failed)}" if failed else "all pass")
    rows = [(f"{short}_verify", not failed, summary)]
    return rows + [(f"{short}_{r['name'].removeprefix('login_')}", r["passed"], r["detail"]) for r in access]


def _stack_verify(args: argparse.Namespace) -> int:
    outputs = stack_outputs(args.stack)
    target = stack_target(args, outputs)
    logins = app_login_connections(args, outputs, target)  # a bad output is refused before any work
    results = stack_operation(args, target, "verify", {"require_seed": args.require_seed})["results"]
    rows = [(r["name"], r["passed"], r["detail"]) for r in results]
    if read_only():  # the logins' checks connect as each login: only the operator reads their secrets
        print(f"the logins' own checks are skipped: {READ_ONLY_ENV} is set", file=sys.stderr)
        logins = {}
    for login, connection in logins.items():
        as_login = replace(target, connection=connection, label=f"{login}@{target.label.split('@', 1)[1]}")
        op_args = {"may_write": MAY_WRITE[login], "require_seed": args.require_seed}
        rows += login_rows(login, stack_operation(args, as_login, "verify_login", op_args)["results"])
    return _print_checklist(rows, target.label)


def _check_target_options(args: argparse.Namespace) -> None:
    if args.stack and args.dsn:
        raise UsageError("--dsn and --stack are alternatives: give one")
    if not args.stack and (args.connect_host or args.connect_port):
        raise UsageError("--connect-host and --connect-port go with --stack")


# --- the commands -----------------------------------------------------------------------------


def _print_migrated(applied: int, already_applied: int, target: str) -> None:
    if applied:
        print(f"{applied} migration(s) applied to {target}; {already_applied} were already applied")
    else:
        print(f"nothing to apply: all {already_applied} migrations already applied to {target}")


def cmd_db_migrate(args: argparse.Namespace) -> int:
    _check_target_options(args)
    if args.stack:
        return _stack_migrate(args)
    dsn = resolve_dsn(args)
    with connect(dsn) as conn, holding(conn, ADVISORY_LOCK_KEY, args, "migration", "another migrate run"):
        report = apply_migrations(
            conn, on_applied=lambda m: print(f"applied {m.name} ({m.duration_ms:.1f} ms)", flush=True)
        )
    _print_migrated(len(report.applied), len(report.already_applied), describe(dsn))
    return EXIT_OK


def seed_parameters(args: argparse.Namespace) -> SeedParameters:
    """``SeedParameters`` from the seed options; a bad value is a one-line UsageError."""

    def convert(option: str, value: str, parse: Callable[[str], object], what: str) -> object:
        try:
            return parse(value)
        except ValueError:
            raise UsageError(f"{option} must be {what}, got {value!r}") from None

    try:
        params = SeedParameters(
            scale=convert("--scale", args.scale, _number, "a number"),
            rng_seed=convert("--rng-seed", args.rng_seed, int, "an integer"),
            anchor_date=convert("--anchor-date", args.anchor_date, datetime.date.fromisoformat, "a date YYYY-MM-DD"),
            dataset_version=convert("--dataset-version", args.dataset_version, int, "an integer"),
        )
    except ValueError as error:  # "scale must be ..." -> "--scale must be ..."
        field, _, rest = str(error).partition(" ")
        raise UsageError(f"--{field.replace('_', '-')} {rest}") from None
    # The loader refuses it against the database's date; here it is refused before any work
    # (or any server: rehearse and sandbox call this first).
    today = datetime.datetime.now(datetime.UTC).date()
    if params.anchor_date > today:
        raise UsageError(
            f"--anchor-date must be today ({today.isoformat()} UTC) or earlier: the mock data covers the 90 days "
            f"before it, never the future, got {args.anchor_date!r}"
        )
    return params


def _number(text: str) -> int | float:
    """An int when the text is one (so messages echo "1000", not "1000.0"), else a float."""
    try:
        return int(text)
    except ValueError:
        return float(text)


class _ProgressLine:
    """A carriage-return updated status line on stderr (only used on a terminal)."""

    def __init__(self) -> None:
        self.width = 0

    def __call__(self, table: str, rows: int) -> None:
        text = f"seeding {table}: {rows:,} rows"
        self.width = max(self.width, len(text))
        print(f"\r{text:<{self.width}}", end="", file=sys.stderr, flush=True)

    def clear(self) -> None:
        if self.width:
            print(f"\r{'':<{self.width}}\r", end="", file=sys.stderr, flush=True)


def _print_counts(counts: dict[str, int]) -> None:
    width = max(len("total"), *(len(table) for table in counts))
    total = sum(counts.values())
    digits = len(f"{total:,}")
    print(f"{'table':<{width}}  {'rows':>{digits}}")
    for table, rows in counts.items():
        print(f"{table:<{width}}  {rows:>{digits},}")
    print(f"{'total':<{width}}  {total:>{digits},}")


def _print_seeded(
    params: SeedParameters,
    counts: dict[str, int],
    checksum: str,
    seconds: float,
    target: str,
    *,
    loaded: bool,
    replaced: int,
) -> None:
    what = (
        f"scale {params.scale:g}, rng seed {params.rng_seed}, anchor {params.anchor_date.isoformat()}, "
        f"dataset v{params.dataset_version}"
    )
    _print_counts(counts)
    if loaded:
        print(
            f"seeded {sum(counts.values()):,} rows ({what}) into {target} in {seconds:.2f} s"
            + (f", replacing {replaced:,} earlier mock rows" if replaced else "")
            + f"; checksum {checksum[:12]}"
        )
    else:
        print(
            f"already seeded ({what}) in {target}: nothing changed "
            f"(checked in {seconds:.2f} s; --force reloads); checksum {checksum[:12]}"
        )


def cmd_db_seed(args: argparse.Namespace) -> int:
    _check_target_options(args)
    if args.stack:
        return _stack_seed(args)
    params = seed_parameters(args)
    dsn = resolve_dsn(args)
    progress = _ProgressLine() if sys.stdout.isatty() else None
    try:
        with connect(dsn) as conn, holding(conn, SEED_LOCK_KEY, args, "seed", "another seeder"):
            report = load_mock_data(conn, params, progress=progress, force=args.force)
    finally:
        if progress:
            progress.clear()
    _print_seeded(
        params,
        report.counts,
        report.checksum,
        report.elapsed_seconds,
        describe(dsn),
        loaded=report.loaded,
        replaced=sum(report.removed.values()),
    )
    return EXIT_OK


def _print_unseeded(removed: dict[str, int], target: str) -> None:
    _print_counts(removed)
    print(f"removed {sum(removed.values()):,} mock rows from {target}")


def cmd_db_unseed(args: argparse.Namespace) -> int:
    _check_target_options(args)
    if args.stack:
        return _stack_unseed(args)
    dsn = resolve_dsn(args)
    with connect(dsn) as conn, holding(conn, SEED_LOCK_KEY, args, "seed", "another seeder"):
        removed = unload_mock_data(conn)
    _print_unseeded(removed, describe(dsn))
    return EXIT_OK


def _print_rows(results: list[tuple[str, bool, str]]) -> None:
    width = max(len(name) for name, _, _ in results)
    for name, passed, detail in results:
        print(f"{'✓' if passed else '✗'} {name:<{width}}  {detail}")


def _print_checklist(results: list[tuple[str, bool, str]], target: str, command: str = "verify") -> int:
    _print_rows(results)
    return _verdict(results, target, command)


def _verdict(results: list[tuple[str, bool, str]], target: str, command: str, quiet: bool = False) -> int:
    """EXIT_OK when every check passed; else the one line naming the failed ones."""
    failed = [name for name, passed, _ in results if not passed]
    if failed:
        raise CommandFailed(f"{command} failed: {', '.join(failed)}")
    if not quiet:
        print(f"all {len(results)} checks passed on {target}")
    return EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    _check_target_options(args)
    if args.stack:
        return _stack_verify(args)
    dsn = resolve_dsn(args)
    with connect(dsn) as conn:
        results = run_checks(conn, SCHEMA_CHECKS + seed_checks(require_seed=args.require_seed))
    return _print_checklist([(r.name, r.passed, r.detail) for r in results], describe(dsn))


# --- smoke: the running API and site (runbook phases 5 and 7) ---------------------------------


_URL_RULE = "is not an http:// or https:// URL with a host and no user or password"


def smoke_urls(args: argparse.Namespace) -> tuple[str, str]:
    """--api-url/--site-url, or the stack's api_url/site_url outputs; each checked before any request."""
    if args.stack and (args.api_url or args.site_url):
        raise UsageError("--stack and --api-url/--site-url are alternatives: give one")
    if not args.stack:
        if not (args.api_url and args.site_url):
            raise UsageError("give --api-url and --site-url, or --stack NAME to read them from the stack's outputs")
        for option, url, example in (
            ("--api-url", args.api_url, "https://d111.cloudfront.net/api"),
            ("--site-url", args.site_url, "https://d111.cloudfront.net/"),
        ):
            if shown := url_problem(url):
                raise UsageError(f"{option} {shown} {_URL_RULE} (fix: e.g. {option} {example})")
        return args.api_url, args.site_url
    outputs = stack_outputs(args.stack, "give --api-url and --site-url")
    missing = [name for name in APP_URL_OUTPUTS if not isinstance(outputs.get(name), str)]
    if missing:
        raise UsageError(
            f"stack {args.stack!r} has no {' or '.join(missing)} output (fix: configure swipesavvy:backend and "
            "swipesavvy:frontend and `pulumi up`, or give --api-url and --site-url)"
        )
    for name in APP_URL_OUTPUTS:
        if shown := url_problem(outputs[name]):
            raise UsageError(
                f"stack {args.stack!r} output {name} {shown} {_URL_RULE} (fix: `pulumi up` with this version of the "
                f"program, or give --{name.replace('_', '-')})"
            )
    return outputs["api_url"], outputs["site_url"]


def _token(value: str | None, env: str, option: str) -> str:
    token = value or os.environ.get(env)
    if not token:
        raise UsageError(f"{option} is required (or set {env})")
    return token


def _restored(undo: Undo) -> str:
    if left := undo.left_in_place():
        return f"NOT restored: {'; '.join(left)}"
    return "every admin change was restored"


def cmd_smoke(args: argparse.Namespace) -> int:
    if not args.timeout:
        raise UsageError("--timeout must be more than 0 seconds")
    try:
        api_url, site_url = smoke_urls(args)
    except KeyboardInterrupt:
        raise CommandFailed("interrupted before any request: nothing was changed", EXIT_INTERRUPTED) from None
    http = Http(
        api_url,
        site_url,
        _token(args.token, API_TOKEN_ENV, "--token"),
        _token(args.admin_token, ADMIN_TOKEN_ENV, "--admin-token"),
        args.timeout,
    )
    undo = Undo(http)
    try:
        results = run_smoke(http, Limits(args.requests, args.concurrency, args.timeout), undo)
    except KeyboardInterrupt:  # the restores ran in run_smoke's finally, unless this interrupted them
        code = EXIT_NOT_RESTORED if undo.left_in_place() else EXIT_INTERRUPTED
        raise CommandFailed(f"interrupted: {_restored(undo)}", code) from None
    rows = [(r.name, r.passed, f"{r.figure:>7}  {r.detail}") for r in results]
    if args.json:
        passed = all(r.passed for r in results) and not undo.not_restored
        document = {"api_url": api_url, "site_url": site_url, "passed": passed, "not_restored": undo.not_restored}
        print(json.dumps({**document, "checks": [asdict(r) for r in results]}, indent=2))
    else:
        _print_rows(rows)
    if undo.not_restored:
        raise CommandFailed(f"smoke left admin changes in place: {_restored(undo)}", EXIT_NOT_RESTORED)
    return _verdict(rows, api_url, "smoke", quiet=args.json)


def cmd_sandbox(args: argparse.Namespace) -> int:
    """Migrate, seed and verify a throwaway local PostgreSQL, then keep it up until Ctrl-C or SIGTERM."""
    seed_parameters(args)  # a bad option is refused before a server is started
    terminate_on_sigterm()
    print("starting a throwaway PostgreSQL...", file=sys.stderr, flush=True)
    scratch = _scratch("sandbox")
    try:
        server = _local_postgres(scratch)
        args.dsn = _create_sandbox_database(server.dsn())
        for step in (cmd_db_migrate, cmd_db_seed, cmd_verify):
            step(args)
        print(f"sandbox ready: export {DSN_ENV}='{args.dsn}'", flush=True)
        print("then try: .venv/bin/python -m ops verify; Ctrl-C stops the server and deletes its data", flush=True)
        with suppress(KeyboardInterrupt):  # Ctrl-C (or SIGTERM) is the sandbox's normal end
            threading.Event().wait()
        print("sandbox stopped, its data deleted")
    finally:
        scratch.close()
    return EXIT_OK


# --- rollback: deploy an earlier update's commit and config again --------------------------------
#
# The Pulumi CLI is called directly rather than through the Automation API (``pulumi.automation``),
# with the same commands it runs (``stack history --json``, ``preview``, ``up --yes --skip-preview``):
# - ``Stack.preview()`` fails unless the engine's summary event arrives over ``--event-log``, which
#   from CLI 3.206 on is a gRPC Events service the SDK starts; a fake ``pulumi`` for the tests would
#   have to speak that protocol, or claim an older version so the tests take a path production does not;
# - ``LocalWorkspace`` selects the stack (``pulumi stack select``), changing the operator's current
#   stack as a side effect, and ``Stack.up()`` follows with ``stack output --show-secrets``,
#   decrypting every secret output, which a rollback does not need.
# The recorded config goes to a ``--config-file`` beside the worktree, not into it: the worktree stays
# exactly the commit, so the rollback's own update records that commit as clean and is itself a
# version a later rollback can return to.


def _run_pulumi(command: list[str], cwd: Path, stream: bool = False) -> tuple[int, str, list[str]]:
    """Run ``pulumi COMMAND`` in ``cwd``: its exit code, stdout (also printed as it comes when
    ``stream``) and stderr lines."""
    try:
        # Its own session: Ctrl-C reaches this command only, which hands pulumi exactly one SIGINT
        # (its graceful cancel; a second one would make it stop at once, mid-operation).
        process = subprocess.Popen(
            ["pulumi", *command],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
    except FileNotFoundError:
        raise pulumi_not_on_path("this command runs") from None
    stderr: list[str] = []
    reader = threading.Thread(target=lambda: stderr.extend(process.stderr), daemon=True)
    reader.start()
    stdout = []
    try:
        for line in process.stdout:
            stdout.append(line)
            if stream:
                print(line, end="", flush=True)
        code = process.wait()
    except KeyboardInterrupt:
        process.send_signal(signal.SIGINT)
        process.wait()  # pulumi ends its operations and the update before its worktree goes
        raise
    reader.join()
    return code, "".join(stdout), stderr


def _pulumi_reason(code: int, stdout: str, stderr: list[str]) -> str:
    """Pulumi's own ``error:`` line (stderr first), else its last line, else the exit code."""
    lines = [line.strip() for line in [*stderr, *stdout.splitlines()] if line.strip()]
    reason = next((line for line in lines if line.lower().startswith("error:")), lines[-1] if lines else "")
    reason = reason.split(":", 1)[1].strip() if reason.lower().startswith("error:") else reason
    return reason or f"exit code {code}"


def _pulumi(command: list[str], cwd: Path, what: str, stream: bool = False, after: str = "") -> str:
    """Run ``pulumi COMMAND`` in ``cwd``; its stdout (also printed as it comes when ``stream``).
    A failure is a CommandFailed: ``what`` failed, pulumi's own ``error:`` line, then ``after``."""
    code, stdout, stderr = _run_pulumi(command, cwd, stream)
    if code != 0:
        raise CommandFailed(f"{what} failed: {_pulumi_reason(code, stdout, stderr)}{after}")
    return stdout


def _git(repo: Path, *command: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(repo), *command], capture_output=True, text=True, check=False)


def stack_history(stack: str) -> list[dict[str, Any]]:
    """``pulumi stack history --json`` of ``stack``, secrets left masked."""
    command = ["stack", "history", "--json", "--show-secrets=false", "--non-interactive", "--stack", stack]
    try:
        text = _pulumi(command, PROJECT_ROOT, f"`pulumi stack history --stack {stack}`")
    except UsageError:
        raise
    except CommandFailed as error:
        if "no stack named" in str(error):
            raise UsageError(f"{error} (fix: `pulumi stack ls` lists the stacks)") from None
        raise CommandFailed(str(error), EXIT_UNAVAILABLE) from None
    from ops.rollback import HistoryUnreadable, parse_history

    try:
        return parse_history(json.loads(text))
    except (ValueError, RecursionError) as error:  # not JSON at all, or HistoryUnreadable
        problem = str(error) if isinstance(error, HistoryUnreadable) else "it is not JSON"
        raise CommandFailed(
            f"`pulumi stack history --json --stack {stack}` printed a history this command cannot read: {problem} "
            "(fix: `pulumi version` should be 3.x; redeploy by hand as README.md 'Rolling back' says)",
            EXIT_UNAVAILABLE,
        ) from None


@contextmanager
def commit_worktree(repo: Path, commit: str) -> Iterator[Path]:
    """A detached git worktree of ``repo`` at ``commit`` in a temporary directory, removed on the way out."""
    with tempfile.TemporaryDirectory(prefix="swipesavvy-rollback-") as directory:
        tree = Path(directory) / "tree"
        added = _git(repo, "worktree", "add", "--detach", str(tree), commit)
        if added.returncode != 0:
            reason = (added.stderr.strip().splitlines() or [f"exit code {added.returncode}"])[-1]
            raise CommandFailed(f"cannot create a worktree at {commit[:12]}: {reason}")
        try:
            yield tree
        finally:
            _git(repo, "worktree", "remove", "--force", str(tree))
            _git(repo, "worktree", "prune")


def _confirmed(prompt: str) -> bool:
    print(prompt, end="", flush=True)
    answer = sys.stdin.readline()
    return answer.strip().lower() in ("y", "yes")


def cmd_rollback(args: argparse.Namespace) -> int:
    try:
        return _rollback(args)
    except KeyboardInterrupt:  # one during `pulumi up` is answered there
        raise CommandFailed("interrupted before `pulumi up`: nothing was deployed", EXIT_INTERRUPTED) from None


def _rollback(args: argparse.Namespace) -> int:
    import yaml  # only this command reads stack settings files

    from ops.rollback import RollbackRefused, config_lines, history_rows, plan_rollback, rollback_settings

    if not args.yes and not sys.stdin.isatty():
        raise UsageError(
            "rollback asks for confirmation on a terminal and there is none "
            "(fix: run it in a terminal, or pass --yes, as CI does, once the preview has been read)"
        )
    history = stack_history(args.stack)
    print(f"stack {args.stack}: updates, newest first (version, started, result, git commit)")
    print("\n".join(history_rows(history)) or "  (none)")
    try:
        plan = plan_rollback(history, args.stack, args.to)
    except RollbackRefused as error:
        raise CommandFailed(str(error), EXIT_REFUSED) from None
    print(f"\nrolling back to version {plan.version}: started {plan.started}, {plan.result}, commit {plan.commit}")
    print(f"  message: {plan.message}" if plan.message else "  (no message)")
    print("config recorded for that update:")
    print("\n".join(config_lines(plan.config)) or "  (none)")

    top = _git(PROJECT_ROOT, "rev-parse", "--show-toplevel")
    if top.returncode != 0:
        raise UsageError(f"{PROJECT_ROOT} is not in a git repository (fix: run rollback from a clone of the project)")
    repo = Path(top.stdout.strip())
    if _git(repo, "cat-file", "-e", f"{plan.commit}^{{commit}}").returncode != 0:
        raise CommandFailed(
            f"--to {plan.version}: commit {plan.commit[:12]} is not in the repository at {repo} "
            f"(fix: git fetch --all, or choose another version with --to)",
            EXIT_REFUSED,
        )
    with commit_worktree(repo, plan.commit) as tree:
        project = tree / PROJECT_ROOT.resolve().relative_to(repo.resolve())
        committed_file = project / f"Pulumi.{args.stack}.yaml"
        try:
            committed = yaml.safe_load(committed_file.read_text()) if committed_file.is_file() else {}
        except yaml.YAMLError as error:
            raise CommandFailed(
                f"--to {plan.version}: {committed_file.name} at {plan.commit[:12]} is not valid YAML "
                f"({' '.join(str(error).split())[:120]}), so its secrets cannot be recovered "
                "(fix: choose another version with --to)",
                EXIT_REFUSED,
            ) from None
        try:
            settings = rollback_settings(plan, committed, args.stack)
        except RollbackRefused as error:
            raise CommandFailed(str(error), EXIT_REFUSED) from None
        config_file = tree.parent / f"Pulumi.{args.stack}.yaml"
        config_file.write_text(yaml.safe_dump(settings, sort_keys=False))
        common = ["--non-interactive", "--stack", args.stack, "--cwd", str(project), "--config-file", str(config_file)]
        if (project / "policy" / "PulumiPolicy.yaml").is_file():
            common += ["--policy-pack", str(project / "policy")]
        print(f"\ninstalling the program's dependencies at {plan.commit[:12]} (pulumi install)...", flush=True)
        _pulumi(["install", "--cwd", str(project)], project, f"`pulumi install` at {plan.commit[:12]}")
        print(f"preview of version {plan.version} (commit {plan.commit[:12]}) on stack {args.stack}:", flush=True)
        _pulumi(
            ["preview", *common],
            project,
            f"the preview of version {plan.version}",
            True,
            "; nothing was deployed (fix: the preview's output above says why; choose another version with --to)",
        )
        if not args.yes and not _confirmed(f"deploy this to stack {args.stack}? [y/N] "):
            raise CommandFailed(
                f"rollback of stack {args.stack!r} to version {plan.version} declined; nothing was deployed "
                "(fix: rerun and answer y once the preview is what you want)",
                EXIT_REFUSED,
            )
        message = f"rollback to version {plan.version} (commit {plan.commit[:12]})"
        try:
            _pulumi(
                ["up", "--yes", "--skip-preview", "--message", message, *common],
                project,
                f"`pulumi up` of version {plan.version}",
                True,
                "; the stack may be partly updated (fix: `pulumi stack history` shows it; rerun the rollback, "
                "or fix forward)",
            )
        except KeyboardInterrupt:
            raise CommandFailed(
                f"interrupted during `pulumi up` of version {plan.version}: the stack may be partly updated "
                f"(fix: `pulumi stack history --stack {args.stack}` shows the update; `pulumi cancel --stack "
                f"{args.stack}` if it is still marked in progress; rerun the rollback, or fix forward)",
                EXIT_INTERRUPTED,
            ) from None
    print(f"stack {args.stack} rolled back to version {plan.version} (commit {plan.commit[:12]})")
    return EXIT_OK


# --- lifecycle: review stacks' settings, retained snapshots (README "Review stacks") -----------


def cmd_review_config(args: argparse.Namespace) -> int:
    staging = yaml.safe_load((PROJECT_ROOT / "Pulumi.staging.yaml").read_text())["config"]
    try:
        raw = sys.stdin.read() if args.staging_outputs == "-" else Path(args.staging_outputs).read_text()
    except OSError as error:
        raise UsageError(f"--staging-outputs {args.staging_outputs}: {error.strerror}") from None
    try:
        outputs = json.loads(raw)
        keys = all(os.environ.get(name) for name in review.DATADOG_KEY_ENV)
        config = review.review_config(staging, outputs, args.pr, datadog_keys=keys)
        stack = review.review_stack_name(args.pr)
        settings = {key.partition(":")[2]: v for key, v in config.items() if key.startswith(f"{NAMESPACE}:")}
        parse_stack_config(stack, settings, region=config.get("aws:region"))
    except json.JSONDecodeError:
        raise UsageError(
            f"--staging-outputs {args.staging_outputs} is not JSON (fix: pulumi stack output --stack staging --json)"
        ) from None
    except (review.ReviewConfigError, ConfigError) as error:
        raise CommandFailed(str(error)) from None
    target = Path(args.output) if args.output else PROJECT_ROOT / f"Pulumi.{stack}.yaml"
    target.write_text(review.header(args.pr) + yaml.safe_dump({"config": config}, sort_keys=False))
    monitored = "on (keys from DD_API_KEY, DD_APP_KEY)" if config[f"{NAMESPACE}:monitoring"].get("enabled") else "off"
    print(f"wrote {target.name} for stack {stack}: staging's network {outputs['vpc_id']}, monitoring {monitored}")
    return EXIT_OK


def cmd_snapshots_prune(args: argparse.Namespace) -> int:
    import boto3
    import botocore.exceptions

    try:
        rds = boto3.client("rds", region_name=args.region)
        kept, doomed = snapshots.prune(rds, args.stack, args.keep, delete=args.yes)
    except snapshots.SnapshotRefused as error:
        raise CommandFailed(str(error), EXIT_REFUSED) from None
    except botocore.exceptions.NoRegionError:
        raise UsageError("no AWS region (fix: --region us-east-1, or AWS_REGION)") from None
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
        raise CommandFailed(f"RDS: {error}", EXIT_UNAVAILABLE) from None
    verb = "deleted" if args.yes else "would delete"
    for snapshot in doomed:
        print(f"{verb} {snapshot.identifier} ({snapshot.kind}, {snapshot.created:%Y-%m-%d %H:%M})")
    print(f"{args.stack}: kept {len(kept)}, {verb} {len(doomed)} (newest {args.keep} of each kind kept)")
    if doomed and not args.yes:
        print("run again with --yes to delete them")
    return EXIT_OK


# --- drift: what changed outside the stack ----------------------------------------------------
#
# `pulumi preview --refresh --expect-no-changes --json` reads every resource back (the dynamic
# providers read the database through the stack's read-only function) and prints what an update
# would change; then `verify` checks the database through that function too. Nothing here, nor
# in the role the drift workflow assumes, can change the stack: a preview saves no state.

# pulumi's --expect-no-changes error, which it raises after printing the JSON (exit 7 in recent CLIs, 255 before)
NO_CHANGES_EXPECTED = "no changes were expected"


def _drift_preview(stack: str) -> dict[str, Any]:
    """The preview digest of ``stack`` after a refresh; a preview that fails is a CommandFailed."""
    from ops.drift import preview_failed

    command = ["preview", "--refresh", "--expect-no-changes", "--json", "--non-interactive", "--stack", stack]
    print(f"reading stack {stack} back: pulumi {' '.join(command)}", file=sys.stderr, flush=True)
    code, stdout, stderr = _run_pulumi(command, PROJECT_ROOT)
    try:
        digest = json.loads(stdout)
    except ValueError:
        digest = None
    changes_proposed = any(NO_CHANGES_EXPECTED in line for line in stderr)
    if code != 0 and not (changes_proposed and isinstance(digest, dict)):
        reason = (preview_failed(digest) or [_pulumi_reason(code, stdout, stderr)])[0]
        if "no stack named" in reason:
            raise UsageError(f"stack {stack!r} not found: {reason} (fix: `pulumi stack ls` lists the stacks)")
        raise CommandFailed(f"`pulumi preview --refresh --stack {stack}` failed, so drift is unknown: {reason}")
    if not isinstance(digest, dict):
        raise CommandFailed(f"`pulumi preview --json --stack {stack}` did not print a JSON object", EXIT_UNAVAILABLE)
    return digest


def _drift_checks(args: argparse.Namespace) -> tuple[list[tuple[str, str]], list[str]]:
    """The failed checks of ``verify`` (the master checklist, a read), run through the stack's
    read-only function and never through the operator that can change the database; and what
    was not checked. The application logins' checks are not run: they probe writes."""
    outputs = stack_outputs(args.stack)
    reader = outputs.get(READER_OUTPUT)
    notes = [
        f"the application logins' access checks (they probe writes; `python -m ops verify --stack {args.stack}` "
        "with deploy credentials runs them)"
    ]
    if outputs.get(OPERATOR_OUTPUT) and not reader:
        return [], [
            f"the database checks (verify): stack {args.stack!r} has no {READER_OUTPUT} output, and drift "
            f"detection does not use the operator that can change the database (fix: `pulumi up` with a "
            f"program that exports {READER_OUTPUT}; the refresh above still read the flags, seed, logins and schema)",
            *notes,
        ]
    # The reader takes the operator's place: nothing below can reach the function that writes.
    target = stack_target(args, {**outputs, OPERATOR_OUTPUT: reader} if reader else outputs)
    results = stack_operation(args, target, "verify", {"require_seed": False})["results"]
    return [(r["name"], r["detail"]) for r in results if not r["passed"]], notes


def cmd_drift(args: argparse.Namespace) -> int:
    from ops.drift import DriftReport, drift_lines, drifted_resources, report_document, summary_line, unchanged_count

    digest = _drift_preview(args.stack)
    failed_checks, notes = _drift_checks(args)
    report = DriftReport(
        args.stack, tuple(drifted_resources(digest)), unchanged_count(digest), tuple(failed_checks), tuple(notes)
    )
    if args.json:
        print(json.dumps(report_document(report), indent=2, ensure_ascii=False))
    else:
        print("\n".join([*drift_lines(report), *(f"not checked: {note}" for note in notes), summary_line(report)]))
    if report.drifted:
        raise CommandFailed(
            f"{summary_line(report)} (fix: `pulumi up --stack {args.stack}` restores what it declares; or adopt the "
            f"change in Pulumi.{report.short_name}.yaml or the program)",
            EXIT_DRIFT,
        )
    return EXIT_OK


# --- rehearse: the whole deployment on this machine ---------------------------------------------


def _scratch(purpose: str) -> Scratch:
    scratch = Scratch(purpose)
    for leftover in scratch.removed_leftovers:
        print(f"removed what an earlier {purpose} run left behind: {leftover}", file=sys.stderr, flush=True)
    return scratch


def _local_postgres(scratch: Scratch) -> LocalPostgres:
    try:
        return start_postgres(scratch)
    except ServerUnavailable as error:
        raise CommandFailed(f"cannot start the local PostgreSQL: {error}", EXIT_UNAVAILABLE) from None


def _progress(index: int, total: int, text: str) -> None:
    print(f"[{index}/{total}] {text}..." if total else f"{text}...", file=sys.stderr, flush=True)


GRAPH_FORMATS = ("svg", "png", "pdf")


def _check_rehearse_arguments(args: argparse.Namespace) -> StackConfig:
    """Everything that can be refused before a server starts: the stack, its config, the tools."""
    config_file = PROJECT_ROOT / f"Pulumi.{args.stack}.yaml"
    if not config_file.is_file():
        raise UsageError(
            f"no stack config {config_file.name} in {PROJECT_ROOT} (fix: --stack NAME of a Pulumi.NAME.yaml)"
        )
    if args.graph:
        fmt = Path(args.graph).suffix.lstrip(".").lower()
        if fmt not in GRAPH_FORMATS:
            raise UsageError(f"--graph {args.graph}: the file must end in .{', .'.join(GRAPH_FORMATS)}")
        if not shutil.which("dot"):
            raise UsageError("--graph draws with Graphviz's dot, which is not on PATH (fix: ./install.sh installs it)")
    if not shutil.which("node"):
        raise UsageError(
            "rehearse runs the backend and the site with Node.js, which is not on PATH (fix: ./install.sh)"
        )
    raw = yaml.safe_load(config_file.read_text())["config"]
    try:
        config = parse_stack_config(
            args.stack, {k.split(":", 1)[1]: v for k, v in raw.items() if k.startswith("swipesavvy:")}
        )
    except ConfigError as error:
        raise UsageError(f"{config_file.name}: {error}") from None
    if config.backend is None or config.frontend is None:
        raise UsageError(
            f"{config_file.name} deploys no backend or no site: rehearse runs both (fix: set swipesavvy:backend"
            " and swipesavvy:frontend)"
        )
    return config


def cmd_rehearse(args: argparse.Namespace) -> int:
    params = seed_parameters(args)
    config = _check_rehearse_arguments(args)
    from ops.mock_program import run_program, stack_config  # Pulumi is imported only for this command

    terminate_on_sigterm()
    state = Rehearsal(config, _scratch("rehearse"))
    # The program under mocks takes longest (imports included) and needs nothing from the
    # database: it runs in a thread from the start, while PostgreSQL starts and phases 1-2 run.
    program = BackgroundProgram(lambda: run_program(stack_config(args.stack), stack=args.stack))
    try:
        _progress(0, 0, "database: starting a throwaway PostgreSQL over TLS")
        started = time.perf_counter()
        try:
            detail = start_database(state)
        except ServerUnavailable as error:
            raise CommandFailed(f"cannot start the local PostgreSQL: {error}", EXIT_UNAVAILABLE) from None
        first = Criterion(1, "database", True, time.perf_counter() - started, detail)
        criteria = [first, *run_steps(rehearsal_steps(params, program), state, _progress)]
    except KeyboardInterrupt:
        raise  # the thread is a daemon: the exit does not wait for it
    except BaseException:
        program.finish()  # nothing of this run keeps running in this process
        raise
    finally:
        if state.statsd:
            state.statsd.close()
        state.scratch.close()
    program.finish()
    if state.program:
        print(f"plan for stack {args.stack} (under mocks, as `pulumi preview` would list the creates):")
        print("\n".join(plan_lines(plan_groups(state.program))))
        print(cost_summary(args.stack, state.program))
        print()
        if args.graph:
            title = f"swipesavvy-{args.stack}: " + (
                "planned resources" if args.graph_detail == "resources" else "architecture"
            )
            dot = (
                plan_dot(state.program, title)
                if args.graph_detail == "resources"
                else architecture_dot(state.program, title)
            )
            _draw(dot, args.graph)
    print("runbook phases and success criteria:")
    rows = phase_lines(criteria)
    _print_rows(rows)
    checks = [(c.name, c.passed, c.detail) for c in criteria]
    return _verdict(checks, f"stack {args.stack}, all seven phases rehearsed on this machine", "rehearse")


def _draw(dot_source: str, path: str) -> None:
    """Render the DOT source with Graphviz into ``path`` (format from its extension)."""
    fmt = Path(path).suffix.lstrip(".").lower()
    try:
        subprocess.run(
            ["dot", f"-T{fmt}", "-o", path], input=dot_source, text=True, capture_output=True, check=True, timeout=120
        )
    except subprocess.CalledProcessError as error:
        reason = (error.stderr.strip().splitlines() or [f"exit code {error.returncode}"])[0]
        raise CommandFailed(f"cannot draw {path}: {reason}") from None
    print(f"plan drawn in {path}")


def _create_sandbox_database(server_dsn: str) -> str:
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(SANDBOX_DATABASE)))
    return make_conninfo(server_dsn, dbname=SANDBOX_DATABASE)


def _add_dsn(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dsn", help=f"libpq connection string or URI (default: ${DSN_ENV})")
    parser.add_argument(
        "--stack",
        metavar="NAME",
        help=f"instead of --dsn: the database of this Pulumi stack (its {CONNECTION_OUTPUT} output), "
        f"reached through its operator function when it has one ({OPERATOR_OUTPUT})",
    )
    parser.add_argument("--connect-host", metavar="HOST", help="with --stack and no operator: connect here (a tunnel)")
    parser.add_argument(
        "--connect-port", metavar="PORT", type=_port, help="with --stack and no operator: connect to this port"
    )


def _bounded(low: int, high: int) -> Callable[[str], int]:
    """An argparse ``type``: an integer from ``low`` to ``high``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be an integer from {low} to {high}, got {text!r}")
        return value

    return parse


def _port(text: str) -> int:
    """The --connect-port value (an argparse ``type``)."""
    try:
        return port_number(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a port number from 1 to 65535, got {text!r}") from None


def _add_lock_timeout(parser: argparse.ArgumentParser, holder: str) -> None:
    parser.add_argument(
        "--lock-timeout",
        type=_seconds,
        default=DEFAULT_LOCK_TIMEOUT_S,
        metavar="SECONDS",
        help=f"how long to wait for {holder} to finish before giving up, 0 not at all (default: %(default)s)",
    )


def _add_seed_options(parser: argparse.ArgumentParser) -> None:
    defaults = SeedParameters()
    # Strings, converted by seed_parameters(): a bad value gets a message naming the option.
    parser.add_argument(
        "--scale",
        default=f"{defaults.scale:g}",
        help="multiplies the volumes, 0.01 to 100 (default: %(default)s, about 67,000 rows)",
    )
    parser.add_argument(
        "--rng-seed",
        default=str(defaults.rng_seed),
        help="RNG seed: the same seed and scale give identical data (default: %(default)s)",
    )
    parser.add_argument(
        "--anchor-date",
        default=defaults.anchor_date.isoformat(),
        metavar="YYYY-MM-DD",
        help="the data covers the 90 days before this date, which may not be after today (default: %(default)s)",
    )
    parser.add_argument(
        "--dataset-version",
        default=str(defaults.dataset_version),
        help="label recorded in the manifest; changing it reloads (default: %(default)s)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m ops", description="SwipeSavvy operator commands.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    db = commands.add_parser("db", help="database schema and data")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="DB_COMMAND")
    migrate = db_commands.add_parser("migrate", help="apply pending SQL migrations from sql/")
    _add_dsn(migrate)
    _add_lock_timeout(migrate, "another migrate run")
    migrate.set_defaults(handler=cmd_db_migrate)

    seed = db_commands.add_parser(
        "seed", help="load the mock data (runbook phase 2) in one transaction, replacing earlier mock rows"
    )
    _add_dsn(seed)
    _add_seed_options(seed)
    seed.add_argument("--force", action="store_true", help="reload even when the same data set is already loaded")
    _add_lock_timeout(seed, "another seeder")
    seed.set_defaults(handler=cmd_db_seed)

    unseed = db_commands.add_parser("unseed", help="remove the mock data (and nothing else)")
    _add_dsn(unseed)
    _add_lock_timeout(unseed, "another seeder")
    unseed.set_defaults(handler=cmd_db_unseed)

    verify = commands.add_parser("verify", help="run the runbook's checks and print a checklist")
    _add_dsn(verify)
    verify.add_argument(
        "--require-seed", action="store_true", help="fail when no mock data is seeded (default: report it and pass)"
    )
    verify.set_defaults(handler=cmd_verify)

    smoke = commands.add_parser(
        "smoke", help="the runbook's smoke, admin and latency checks against the running API and site"
    )
    smoke.add_argument("--api-url", metavar="URL", help="the API's base URL, e.g. https://d111.cloudfront.net/api")
    smoke.add_argument("--site-url", metavar="URL", help="the reporting dashboard's URL")
    smoke.add_argument("--stack", metavar="NAME", help="instead of the URLs: this stack's api_url and site_url outputs")
    smoke.add_argument("--token", help=f"the staging bearer token (default: ${API_TOKEN_ENV})")
    smoke.add_argument("--admin-token", help=f"the admin bearer token (default: ${ADMIN_TOKEN_ENV})")
    smoke.add_argument(
        "--requests", type=_bounded(1, 10_000), default=50, help="requests per latency check (default: %(default)s)"
    )
    smoke.add_argument(
        "--concurrency", type=_bounded(1, 64), default=5, help="requests in flight at once (default: %(default)s)"
    )
    smoke.add_argument(
        "--timeout", type=_seconds, default=10.0, metavar="SECONDS", help="per request (default: %(default)s)"
    )
    smoke.add_argument("--json", action="store_true", help="print the results as one JSON document (for CI)")
    smoke.set_defaults(handler=cmd_smoke)

    rehearse = commands.add_parser(
        "rehearse",
        help="the dress rehearsal, no cloud account: a local PostgreSQL migrated, seeded and verified as each "
        "login, the whole program planned under mocks, the runbook's success criteria",
    )
    rehearse.add_argument("--stack", default="staging", metavar="NAME", help="Pulumi.NAME.yaml (default: %(default)s)")
    rehearse.add_argument("--graph", metavar="FILE.svg", help="also draw the plan with Graphviz (.svg, .png or .pdf)")
    rehearse.add_argument(
        "--graph-detail",
        choices=("architecture", "resources"),
        default="architecture",
        help="the components and what joins them, or every planned resource (default: %(default)s)",
    )
    _add_seed_options(rehearse)
    rehearse.set_defaults(handler=cmd_rehearse)
    add_cost_parser(commands)

    rollback = commands.add_parser(
        "rollback",
        help="deploy an earlier update of a stack again: its git commit and recorded config, from a temporary "
        "worktree, after its preview and a confirmation",
    )
    rollback.add_argument("--stack", required=True, metavar="NAME", help="the Pulumi stack to roll back")
    rollback.add_argument(
        "--to",
        type=_bounded(1, 10**9),
        metavar="VERSION",
        help="the update to return to (default: the last successful one before the latest)",
    )
    rollback.add_argument("--yes", action="store_true", help="deploy after the preview without asking (for CI)")
    rollback.set_defaults(handler=cmd_rollback)

    review_config = commands.add_parser(
        "review-config", help="write Pulumi.pr-N.yaml: a review stack's settings, generated from staging's"
    )
    review_config.add_argument("--pr", required=True, type=_bounded(1, 10**9), metavar="N", help="the pull request")
    review_config.add_argument(
        "--staging-outputs",
        required=True,
        metavar="FILE",
        help="staging's outputs: the output of pulumi stack output --stack staging --json (- for stdin)",
    )
    review_config.add_argument("--output", metavar="FILE", help="where to write (default: Pulumi.pr-N.yaml here)")
    review_config.set_defaults(handler=cmd_review_config)

    snapshot_commands = commands.add_parser("snapshots", help="a stack's retained RDS snapshots").add_subparsers(
        dest="snapshots_command", required=True, metavar="SNAPSHOTS_COMMAND"
    )
    prune = snapshot_commands.add_parser(
        "prune", help="delete a stack's retained snapshots but the newest of each kind (never production's)"
    )
    prune.add_argument("--stack", required=True, metavar="NAME", help="the stack whose snapshots to prune")
    prune.add_argument(
        "--keep",
        type=_bounded(0, 100),
        default=snapshots.DEFAULT_KEEP,
        metavar="N",
        help="how many of each kind stay (default: %(default)s; 0 only for a review stack pr-N)",
    )
    prune.add_argument("--region", metavar="REGION", help="the stack's region (default: the AWS environment's)")
    prune.add_argument("--yes", action="store_true", help="delete them (without it: only list them)")
    prune.set_defaults(handler=cmd_snapshots_prune)

    drift = commands.add_parser(
        "drift",
        help="what changed outside the stack: pulumi preview --refresh --expect-no-changes, then verify, both "
        "read-only; one line per drifted resource and property, exit 7 on drift",
    )
    drift.add_argument("--stack", required=True, metavar="NAME", help="the Pulumi stack to check")
    drift.add_argument("--json", action="store_true", help="print the report and its GitHub issue as JSON (for CI)")
    drift.set_defaults(
        handler=cmd_drift,
        dsn=None,
        connect_host=None,
        connect_port=None,
        require_seed=False,
        lock_timeout=DEFAULT_LOCK_TIMEOUT_S,
    )

    sandbox = commands.add_parser(
        "sandbox",
        help="start a throwaway local PostgreSQL, migrate, seed and verify it, print its DSN; Ctrl-C deletes it",
    )
    _add_seed_options(sandbox)
    sandbox.set_defaults(
        handler=cmd_sandbox,
        force=False,
        require_seed=True,
        lock_timeout=DEFAULT_LOCK_TIMEOUT_S,
        stack=None,
        connect_host=None,
        connect_port=None,
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # psycopg logs cleanup failures (e.g. after Ctrl-C) as warnings; the one line below says it.
    logging.getLogger("psycopg").addHandler(logging.NullHandler())
    try:
        args = build_parser().parse_args(argv)
        return args.handler(args)
    except KeyboardInterrupt:
        changes_nothing = argv[:1] in READ_ONLY_COMMANDS  # no transaction to speak of
        what = "nothing was changed" if changes_nothing else "the transaction in progress was rolled back"
        return report(f"interrupted: {what}", EXIT_INTERRUPTED, argv)
    except InvalidConnectionString as error:
        return report(f"{error} (fix: the connection string in --dsn or ${DSN_ENV})", EXIT_USAGE, argv)
    except (CommandFailed, DatabaseUnavailable, MigrationError, SeedError) as error:
        return report(str(error), _exit_code(error), argv)
    except psycopg.Error as error:  # anything the commands did not anticipate: still one line
        if raised_during(error, KeyboardInterrupt):  # Ctrl-C mid-COPY: cleanup failed on the busy connection, which
            # the exit closes, so the server rolls the transaction back all the same
            return report("interrupted: the transaction in progress was rolled back", EXIT_INTERRUPTED, argv)
        return report(f"database error: {_primary(error)}", EXIT_FAILED, argv)


def report(message: str, exit_code: int, argv: Sequence[str]) -> int:
    """Print ``error: message`` as one line on stderr, scrubbed of any DSN the operator gave."""
    for dsn in _dsn_candidates(argv):
        message = scrub(message, dsn)
    print(f"error: {' '.join(message.split())}", file=sys.stderr)
    return exit_code


def _dsn_candidates(argv: Sequence[str]) -> list[str]:
    """What might be a DSN: $SWIPESAVVY_DSN and arguments that look like one (even misplaced).
    None for the commands that take no DSN: their URLs are not secrets."""
    if argv[:1] in (["smoke"], ["rehearse"], ["rollback"], ["drift"]):
        return []
    looks_like_dsn = [arg for arg in argv if not arg.startswith("-") and ("=" in arg or "://" in arg)]
    dsn_options = [arg.partition("=")[2] for arg in argv if arg.startswith("--dsn=")]
    return [dsn for dsn in (os.environ.get(DSN_ENV), *looks_like_dsn, *dsn_options) if dsn]


def _primary(error: psycopg.Error) -> str:
    return error.diag.message_primary or (str(error).strip().splitlines() or [type(error).__name__])[0]


def _exit_code(error: Exception) -> int:
    if isinstance(error, CommandFailed):
        return error.exit_code
    if isinstance(error, DatabaseUnavailable):
        return EXIT_UNAVAILABLE
    return EXIT_FAILED
