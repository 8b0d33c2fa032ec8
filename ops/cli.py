"""``python -m ops``: the operator's commands, on the same code the Pulumi program runs.

    python -m ops db migrate --dsn DSN     apply pending migrations
    python -m ops db baseline --dsn DSN    adopt a hand-built database whose schema is the migrations'
    python -m ops db seed --dsn DSN        load the mock data (runbook phase 2), all or nothing
    python -m ops db unseed --dsn DSN      remove the mock data and nothing else
    python -m ops verify --dsn DSN         the runbook's checks as a checklist
    python -m ops sandbox                  all of the above on a throwaway local PostgreSQL
    python -m ops smoke --stack NAME       the runbook's smoke, admin and latency checks over HTTP
    python -m ops rehearse                 the whole deployment on this machine, no cloud account
    python -m ops rollback --stack NAME    deploy an earlier update's commit and config again
    python -m ops review-config --pr N     write a review stack's settings from staging's
    python -m ops review-orphans --stacks F  the pull requests whose review stacks outlived them
    python -m ops snapshots prune --stack NAME   delete a stack's older retained snapshots
    python -m ops drift --stack NAME       what changed outside the stack (preview --refresh, verify)
    python -m ops pending --stack NAME     an interrupted update's pending creates, and their recovery
    python -m ops cost --stack NAME        the stack's monthly cost from its plan (ops/cost_cli.py)
    python -m ops preflight --stack NAME   will this AWS account take the stack (ops/preflight_cli.py)

The DSN may also come from ``SWIPESAVVY_DSN`` (keeps the password out of ``ps``), and libpq's
own ``PGPASSWORD``/``~/.pgpass`` work as usual. Instead of a DSN, ``--stack NAME`` takes the
database from the stack's outputs (``pulumi stack output``): ``db_connection``, run through
the operator function ``db_operator_arn`` (reads through its read-only twin ``db_reader_arn``)
when the stack has one, else directly (``--connect-host``/``--connect-port`` for a tunnel), as
the stack's own resources run them. Exit codes: the EXIT_* constants of ``ops/command.py``
(importable from here too), as docs/operations.md ("Operator CLI") lists them. Every failure is one line on stderr, never
a traceback, and no message contains the DSN or a password (``report`` scrubs them).

This module is the parser and the dispatch only: each command's work lives with its subject
(``ops/<subject>_cli.py``; ``--stack`` in ``ops/stack_target.py``, the Pulumi CLI in ``ops/pulumi_cli.py``).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

import psycopg

from dbops.connection import (
    DEFAULT_LOCK_TIMEOUT_S,
    DatabaseUnavailable,
    InvalidConnectionString,
    raised_during,
    scrub,
)
from dbops.db_credentials import port_number
from dbops.migrations import MigrationError
from ops.command import (
    EXIT_DRIFT,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_LOCKED,
    EXIT_NOT_RESTORED,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    CommandFailed,
    UsageError,
    bounded_int,
)
from ops.cost_cli import add_cost_parser
from ops.db_cli import DSN_ENV, cmd_db_baseline, cmd_db_migrate, cmd_db_seed, cmd_db_unseed, cmd_sandbox, cmd_verify
from ops.drift_cli import cmd_drift
from ops.lifecycle_cli import add_review_orphans_parser, add_snapshots_parser, cmd_pending, cmd_review_config
from ops.live.smoke import ADMIN_TOKEN_ENV, API_TOKEN_ENV
from ops.preflight_cli import add_preflight_parser
from ops.rehearse_cli import cmd_rehearse
from ops.rollback_cli import cmd_rollback
from ops.smoke_cli import cmd_smoke
from ops.stack_target import CONNECTION_OUTPUT, OPERATOR_OUTPUT
from seed.generator import SeedParameters
from seed.loader import SeedError

# The exit codes are this command line's contract: importable from here as from ops.command.
__all__ = [
    "EXIT_DRIFT",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_LOCKED",
    "EXIT_NOT_RESTORED",
    "EXIT_OK",
    "EXIT_REFUSED",
    "EXIT_UNAVAILABLE",
    "EXIT_USAGE",
    "build_parser",
    "main",
]
# Read and print, never write: Ctrl-C leaves nothing changed.
READ_ONLY_COMMANDS = (["drift"], ["cost"], ["preflight"], ["pending"], ["review-orphans"])


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one UsageError line instead of usage text + exit."""

    def error(self, message: str):
        raise UsageError(f"{message} (see: {self.prog} --help)")


def _seconds(text: str) -> float:
    """The --lock-timeout value (an argparse ``type``)."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= 86400:
        raise argparse.ArgumentTypeError(f"must be a number of seconds from 0 to 86400, got {text!r}")
    return seconds


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
    baseline = db_commands.add_parser(
        "baseline", help="adopt a hand-built database: ledger only if its schema is sql/'s"
    )
    _add_dsn(baseline)
    baseline.set_defaults(handler=cmd_db_baseline)

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
    in_ps = "an option shows in ps and shell history"
    smoke.add_argument("--token", help=f"the staging bearer token; prefer ${API_TOKEN_ENV}: {in_ps}")
    smoke.add_argument("--admin-token", help=f"the admin bearer token; prefer ${ADMIN_TOKEN_ENV}: {in_ps}")
    smoke.add_argument(
        "--requests", type=bounded_int(1, 10_000), default=50, help="requests per latency check (default: %(default)s)"
    )
    smoke.add_argument(
        "--concurrency", type=bounded_int(1, 64), default=5, help="requests in flight at once (default: %(default)s)"
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
    add_preflight_parser(commands)
    add_review_orphans_parser(commands)

    rollback = commands.add_parser(
        "rollback",
        help="deploy an earlier update of a stack again: its git commit and recorded config, from a temporary "
        "worktree, after its preview and a confirmation",
    )
    rollback.add_argument("--stack", required=True, metavar="NAME", help="the Pulumi stack to roll back")
    rollback.add_argument(
        "--to",
        type=bounded_int(1, 10**9),
        metavar="VERSION",
        help="the update to return to (default: the last successful one before the latest)",
    )
    rollback.add_argument("--yes", action="store_true", help="deploy after the preview without asking (for CI)")
    rollback.set_defaults(handler=cmd_rollback)

    review_config = commands.add_parser(
        "review-config", help="write Pulumi.pr-N.yaml: a review stack's settings, generated from staging's"
    )
    review_config.add_argument("--pr", required=True, type=bounded_int(1, 10**9), metavar="N", help="the pull request")
    review_config.add_argument(
        "--staging-outputs",
        required=True,
        metavar="FILE",
        help="staging's outputs: the output of pulumi stack output --stack staging --json (- for stdin)",
    )
    review_config.add_argument("--output", metavar="FILE", help="where to write (default: Pulumi.pr-N.yaml here)")
    review_config.set_defaults(handler=cmd_review_config)

    add_snapshots_parser(commands)

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

    pending = commands.add_parser(
        "pending", help="an interrupted update's pending creates and the refresh that resolves each (read-only)"
    )
    pending.add_argument("--stack", required=True, metavar="NAME", help="the Pulumi stack to read")
    pending.set_defaults(handler=cmd_pending)

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
    if argv[:1] in (["smoke"], ["rehearse"], ["rollback"], ["drift"], ["preflight"], ["pending"]):
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
