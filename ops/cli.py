"""``python -m ops``: the operator's commands, on the same code the Pulumi program runs.

    python -m ops db migrate --dsn DSN     apply pending migrations
    python -m ops db seed --dsn DSN        load the mock data (runbook phase 2), all or nothing
    python -m ops db unseed --dsn DSN      remove the mock data and nothing else
    python -m ops verify --dsn DSN         the runbook's checks as a checklist

The DSN may also come from ``SWIPESAVVY_DSN`` (keeps the password out of ``ps``), and libpq's
own ``PGPASSWORD``/``~/.pgpass`` work as usual. Exit codes: 0 success, 1 a check or
migration failed, 2 bad arguments, 3 the database is unreachable or refused the login.
Every failure is one line on stderr; no tracebacks.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
from collections.abc import Callable, Sequence

from ops.connection import DatabaseUnavailable, InvalidConnectionString, connect, describe
from ops.migrations import MigrationError, apply_migrations
from ops.verify import SCHEMA_CHECKS, run_checks, seed_checks
from seed.generator import SeedParameters
from seed.loader import SeedError, load_mock_data, unload_mock_data

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
        raise UsageError(
            f"--dsn is required (or set {DSN_ENV}), e.g. --dsn 'host=... dbname=swipesavvy_staging user=...'"
        )
    return dsn


def cmd_db_migrate(args: argparse.Namespace) -> int:
    dsn = resolve_dsn(args)
    with connect(dsn) as conn:
        report = apply_migrations(
            conn, on_applied=lambda m: print(f"applied {m.name} ({m.duration_ms:.1f} ms)", flush=True)
        )
    if report.applied:
        print(
            f"{len(report.applied)} migration(s) applied to {describe(dsn)}; "
            f"{len(report.already_applied)} were already applied"
        )
    else:
        print(f"nothing to apply: all {len(report.already_applied)} migrations already applied to {describe(dsn)}")
    return EXIT_OK


def seed_parameters(args: argparse.Namespace) -> SeedParameters:
    """``SeedParameters`` from the seed options; a bad value is a one-line UsageError."""

    def convert(option: str, value: str, parse: Callable[[str], object], what: str) -> object:
        try:
            return parse(value)
        except ValueError:
            raise UsageError(f"{option} must be {what}, got {value!r}") from None

    try:
        return SeedParameters(
            scale=convert("--scale", args.scale, _number, "a number"),
            rng_seed=convert("--rng-seed", args.rng_seed, int, "an integer"),
            anchor_date=convert("--anchor-date", args.anchor_date, datetime.date.fromisoformat, "a date YYYY-MM-DD"),
            dataset_version=convert("--dataset-version", args.dataset_version, int, "an integer"),
        )
    except ValueError as error:  # "scale must be ..." -> "--scale must be ..."
        field, _, rest = str(error).partition(" ")
        raise UsageError(f"--{field.replace('_', '-')} {rest}") from None


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


def cmd_db_seed(args: argparse.Namespace) -> int:
    params = seed_parameters(args)
    dsn = resolve_dsn(args)
    progress = _ProgressLine() if sys.stdout.isatty() else None
    try:
        with connect(dsn) as conn:
            report = load_mock_data(conn, params, progress=progress, force=args.force)
    finally:
        if progress:
            progress.clear()
    what = (
        f"scale {params.scale:g}, rng seed {params.rng_seed}, anchor {params.anchor_date.isoformat()}, "
        f"dataset v{params.dataset_version}"
    )
    _print_counts(report.counts)
    if report.loaded:
        replaced = sum(report.removed.values())
        print(
            f"seeded {report.total:,} rows ({what}) into {describe(dsn)} in {report.elapsed_seconds:.2f} s"
            + (f", replacing {replaced:,} earlier mock rows" if replaced else "")
            + f"; checksum {report.checksum[:12]}"
        )
    else:
        print(
            f"already seeded ({what}) in {describe(dsn)}: nothing changed "
            f"(checked in {report.elapsed_seconds:.2f} s; --force reloads); checksum {report.checksum[:12]}"
        )
    return EXIT_OK


def cmd_db_unseed(args: argparse.Namespace) -> int:
    dsn = resolve_dsn(args)
    with connect(dsn) as conn:
        removed = unload_mock_data(conn)
    _print_counts(removed)
    print(f"removed {sum(removed.values()):,} mock rows from {describe(dsn)}")
    return EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    dsn = resolve_dsn(args)
    with connect(dsn) as conn:
        results = run_checks(conn, SCHEMA_CHECKS + seed_checks(require_seed=args.require_seed))
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

    defaults = SeedParameters()
    seed = db_commands.add_parser(
        "seed", help="load the mock data (runbook phase 2) in one transaction, replacing earlier mock rows"
    )
    _add_dsn(seed)
    # Strings, converted by seed_parameters(): a bad value is one line, not argparse's usage.
    seed.add_argument(
        "--scale",
        default=f"{defaults.scale:g}",
        help="multiplies the volumes, 0.01 to 100 (default: %(default)s, about 67,000 rows)",
    )
    seed.add_argument(
        "--rng-seed",
        default=str(defaults.rng_seed),
        help="RNG seed: the same seed and scale give identical data (default: %(default)s)",
    )
    seed.add_argument(
        "--anchor-date",
        default=defaults.anchor_date.isoformat(),
        metavar="YYYY-MM-DD",
        help="the data covers the 90 days before this date, which may not be after today (default: %(default)s)",
    )
    seed.add_argument(
        "--dataset-version",
        default=str(defaults.dataset_version),
        help="label recorded in the manifest; changing it reloads (default: %(default)s)",
    )
    seed.add_argument("--force", action="store_true", help="reload even when the same data set is already loaded")
    seed.set_defaults(handler=cmd_db_seed)

    unseed = db_commands.add_parser("unseed", help="remove the mock data (and nothing else)")
    _add_dsn(unseed)
    unseed.set_defaults(handler=cmd_db_unseed)

    verify = commands.add_parser("verify", help="run the runbook's checks and print a checklist")
    _add_dsn(verify)
    verify.add_argument(
        "--require-seed", action="store_true", help="fail when no mock data is seeded (default: report it and pass)"
    )
    verify.set_defaults(handler=cmd_verify)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except (CommandFailed, InvalidConnectionString, DatabaseUnavailable, MigrationError, SeedError) as error:
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
