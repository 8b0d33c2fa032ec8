"""``python -m ops db migrate|baseline|seed|unseed``, ``verify`` and ``sandbox``: the database
commands, on a DSN or on a stack's database (``ops/stack_target.py``), and the throwaway local one.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import replace

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from dbops.connection import LockTimeout, advisory_lock, connect, describe
from dbops.login_checks import MAY_WRITE
from dbops.migrations import (
    ADVISORY_LOCK_KEY,
    apply_migrations,
    load_migrations,
    migration_checksums,
    pending_names,
    read_ledger,
    record_as_applied,
)
from dbops.transport import READ_ONLY_ENV, read_only
from dbops.verify import SCHEMA_CHECKS, run_checks, seed_checks
from ops.command import EXIT_LOCKED, EXIT_OK, EXIT_UNAVAILABLE, CommandFailed, UsageError, print_checklist
from ops.pulumi_cli import stack_outputs
from ops.rehearsal.local_postgres import (
    LocalPostgres,
    Scratch,
    ServerUnavailable,
    announced_scratch,
    start_postgres,
    terminate_on_sigterm,
)
from ops.stack_target import app_login_connections, login_rows, stack_operation, stack_target
from seed.generator import SeedParameters
from seed.loader import SEED_LOCK_KEY, load_mock_data, unload_mock_data

DSN_ENV = "SWIPESAVVY_DSN"
SANDBOX_DATABASE = "swipesavvy_sandbox"


def resolve_dsn(args: argparse.Namespace) -> str:
    dsn = args.dsn or os.environ.get(DSN_ENV)
    if not dsn:
        raise UsageError(
            f"--dsn is required (or set {DSN_ENV}), e.g. --dsn 'host=... dbname=swipesavvy_staging user=...'"
        )
    return dsn


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


# --- --stack: the same commands on a stack's database (ops/stack_target.py) --------------------


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
    return print_checklist(rows, target.label)


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


def cmd_db_baseline(args: argparse.Namespace) -> int:
    """Record sql/'s migrations as applied to a database built without them, when its schema is
    theirs (``ops/live/baseline.py``); else one line per difference and nothing written."""
    from ops.live.baseline import catalog_differences, migrated_catalog, read_catalog, scratch_database

    _check_target_options(args)
    if args.stack:
        raise UsageError(
            "db baseline takes --dsn only: it applies the migrations to a scratch database on the same server"
            " (fix: --dsn through a tunnel to the stack's database, as its master user)"
        )
    dsn = resolve_dsn(args)
    target, migrations = describe(dsn), load_migrations()
    with connect(dsn) as conn:
        ledger = read_ledger(conn)
        if ledger and not pending_names(migration_checksums(migrations), ledger):
            print(f"{target} is already baselined: its ledger records all {len(migrations)} migrations of sql/")
            return EXIT_OK
        if ledger:
            raise CommandFailed(
                f"{target} has a migration ledger ({len(ledger)} of {len(migrations)} recorded): nothing to"
                " baseline (fix: python -m ops db migrate applies the rest)"
            )
        try:
            with scratch_database(conn, dsn) as scratch:
                expected = migrated_catalog(scratch, migrations)
        except psycopg.errors.InsufficientPrivilege:
            raise CommandFailed(
                f"login {conn.info.user} may not CREATE DATABASE, which baseline needs for a scratch database the"
                f" migrations are applied to (fix: ALTER ROLE {conn.info.user} CREATEDB, or run it as the RDS master"
                " user); nothing was written"
            ) from None
        differences = catalog_differences(expected, read_catalog(conn))
        for line in differences:
            print(line)
        if differences:
            raise CommandFailed(
                f"{target} differs from what sql/ builds in {len(differences)} place(s), listed above: nothing was"
                " written (fix: change the database to match, or migrate a new one and move the data)"
            )
        record_as_applied(conn, migrations)
    print(
        f"baselined {target}: its schema is what sql/ builds; {len(migrations)} migrations recorded as applied"
        f" ({migrations[0].name} .. {migrations[-1].name})"
    )
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


def cmd_verify(args: argparse.Namespace) -> int:
    _check_target_options(args)
    if args.stack:
        return _stack_verify(args)
    dsn = resolve_dsn(args)
    with connect(dsn) as conn:
        results = run_checks(conn, SCHEMA_CHECKS + seed_checks(require_seed=args.require_seed))
    return print_checklist([(r.name, r.passed, r.detail) for r in results], describe(dsn))


def cmd_sandbox(args: argparse.Namespace) -> int:
    """Migrate, seed and verify a throwaway local PostgreSQL, then keep it up until Ctrl-C or SIGTERM."""
    seed_parameters(args)  # a bad option is refused before a server is started
    terminate_on_sigterm()
    print("starting a throwaway PostgreSQL...", file=sys.stderr, flush=True)
    scratch = announced_scratch("sandbox")
    try:
        server = _local_postgres(scratch)
        args.dsn = _create_sandbox_database(server.dsn())
        for step in (cmd_db_migrate, cmd_db_seed, cmd_verify):
            step(args)
        # From "ready" on, Ctrl-C (or SIGTERM) is the sandbox's normal end, even one that comes
        # before the wait: the two lines go out in one write, so a stop never splits them.
        with suppress(KeyboardInterrupt):
            sys.stdout.write(
                f"sandbox ready: export {DSN_ENV}='{args.dsn}'\n"
                "then try: .venv/bin/python -m ops verify; Ctrl-C stops the server and deletes its data\n"
            )
            sys.stdout.flush()
            threading.Event().wait()
        print("sandbox stopped, its data deleted")
    finally:
        scratch.close()
    return EXIT_OK


def _local_postgres(scratch: Scratch) -> LocalPostgres:
    try:
        return start_postgres(scratch)
    except ServerUnavailable as error:
        raise CommandFailed(f"cannot start the local PostgreSQL: {error}", EXIT_UNAVAILABLE) from None


def _create_sandbox_database(server_dsn: str) -> str:
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(SANDBOX_DATABASE)))
    return make_conninfo(server_dsn, dbname=SANDBOX_DATABASE)
