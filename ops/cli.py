"""``python -m ops``: the operator's commands, on the same code the Pulumi program runs.

    python -m ops db migrate --dsn DSN     apply pending migrations
    python -m ops verify --dsn DSN         the runbook's checks as a checklist

The DSN may also come from ``SWIPESAVVY_DSN`` (keeps the password out of ``ps``), and libpq's
own ``PGPASSWORD``/``~/.pgpass`` work as usual. Exit codes: 0 success, 1 a check or
migration failed, 2 bad arguments, 3 the database is unreachable or refused the login.
Every failure is one line on stderr; no tracebacks.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from ops.connection import DatabaseUnavailable, InvalidConnectionString, connect, describe
from ops.migrations import MigrationError, apply_migrations
from ops.verify import SCHEMA_CHECKS, run_checks

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNAVAILABLE = 0, 1, 2, 3
DSN_ENV = "SWIPESAVVY_DSN"


class CommandFailed(Exception):
    """A command that ran and failed; the message is the one line the operator sees."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED):
        super().__init__(message)
        self.exit_code = exit_code


class UsageError(CommandFailed):
    def __init__(self, message: str):
        super().__init__(message, EXIT_USAGE)


def resolve_dsn(args: argparse.Namespace) -> str:
    dsn = args.dsn or os.environ.get(DSN_ENV)
    if not dsn:
        raise UsageError(f"--dsn is required (or set {DSN_ENV}), e.g. --dsn 'host=... dbname=swipesavvy_staging user=...'")
    return dsn


def cmd_db_migrate(args: argparse.Namespace) -> int:
    dsn = resolve_dsn(args)
    with connect(dsn) as conn:
        report = apply_migrations(
            conn, on_applied=lambda m: print(f"applied {m.name} ({m.duration_ms:.1f} ms)", flush=True)
        )
    if report.applied:
        print(f"{len(report.applied)} migration(s) applied to {describe(dsn)}; "
              f"{len(report.already_applied)} were already applied")
    else:
        print(f"nothing to apply: all {len(report.already_applied)} migrations already applied to {describe(dsn)}")
    return EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    dsn = resolve_dsn(args)
    with connect(dsn) as conn:
        results = run_checks(conn, SCHEMA_CHECKS)
    width = max(len(r.name) for r in results)
    for result in results:
        print(f"{'✓' if result.passed else '✗'} {result.name:<{width}}  {result.detail}")
    failed = [r.name for r in results if not r.passed]
    if failed:
        raise CommandFailed(f"verify failed: {', '.join(failed)}")
    print(f"all {len(results)} checks passed on {describe(dsn)}")
    return EXIT_OK


def _add_dsn(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dsn", help=f"libpq connection string or URI (default: ${DSN_ENV})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ops", description="SwipeSavvy operator commands.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    db = commands.add_parser("db", help="database schema and data")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="DB_COMMAND")
    migrate = db_commands.add_parser("migrate", help="apply pending SQL migrations from sql/")
    _add_dsn(migrate)
    migrate.set_defaults(handler=cmd_db_migrate)

    verify = commands.add_parser("verify", help="run the runbook's checks and print a checklist")
    _add_dsn(verify)
    verify.set_defaults(handler=cmd_verify)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except (CommandFailed, InvalidConnectionString, DatabaseUnavailable, MigrationError) as error:
        print(f"error: {error}", file=sys.stderr)
        return _exit_code(error)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _exit_code(error: Exception) -> int:
    if isinstance(error, CommandFailed):
        return error.exit_code
    if isinstance(error, InvalidConnectionString):
        return EXIT_USAGE
    if isinstance(error, DatabaseUnavailable):
        return EXIT_UNAVAILABLE
    return EXIT_FAILED
