"""``--stack``: the database a Pulumi stack deployed, from its outputs, and the operations run on it
as the stack's own resources run them: through its operator function, or directly.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import redirect_stdout
from dataclasses import dataclass
from typing import Any

from dbops.connection import DEFAULT_LOCK_TIMEOUT_S
from dbops.db_credentials import CONNECTION_KEYS, PASSWORD_SECRET_KEY, CredentialsUnavailable, port_number
from dbops.login_checks import MAY_WRITE
from dbops.operator_client import OperatorError
from dbops.operator_handler import lock_timed_out
from dbops.transport import run_through
from ops.command import EXIT_FAILED, EXIT_LOCKED, EXIT_UNAVAILABLE, EXIT_USAGE, CommandFailed, UsageError
from ops.pulumi_cli import stack_outputs

CONNECTION_OUTPUT, OPERATOR_OUTPUT, READER_OUTPUT = "db_connection", "db_operator_arn", "db_reader_arn"
APP_SECRETS_OUTPUT = "db_app_secret_arns"
# The operator's failure kinds (dbops.operator_handler) as exit codes.
OPERATOR_EXIT_CODES = {"invalid": EXIT_USAGE, "unavailable": EXIT_UNAVAILABLE, "locked": EXIT_LOCKED}


@dataclass(frozen=True)
class StackTarget:
    connection: dict[str, Any]  # the stack's db_connection, tunnel overrides applied
    operator_arn: str | None  # the stack's db_operator_arn: operations run in the VPC
    label: str  # user@host:port/dbname, as describe() gives it for a DSN
    reader_arn: str | None = None  # the stack's db_reader_arn: reads run in the VPC, read-only


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
