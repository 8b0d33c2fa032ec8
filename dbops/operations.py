"""The work the Pulumi resources do inside the database, as named operations.

One code path, two transports: a dynamic provider either runs an operation here, over a
direct connection (``run_operation``), or sends the same request to the operator function
inside the VPC (dbops.operator_client -> dbops.operator_handler), which calls ``run_operation``
there, over the connection its own configuration allows (dbops.authority). A request is JSON:
``{"operation": name, "connection": {...}, "args": {...}}``; a result is a JSON object. No password travels in either: the connection and the login
operations name Secrets Manager secrets, read where the operation runs.

Plain psycopg 3 and boto3, no Pulumi.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from dataclasses import asdict
from typing import Any

import psycopg

from dbops.connection import connect
from dbops.db_credentials import conninfo_for, read_password
from dbops.flags import InvalidFlagSetting, apply_flag_settings, flag_settings, read_flag_settings
from dbops.login_checks import login_checks
from dbops.logins import LoginSpec, drop_login, ensure_login, read_login
from dbops.migrations import (
    MigrationError,
    apply_migrations,
    drop_schema_objects,
    load_migrations,
    migration_checksums,
    read_ledger,
)
from dbops.verify import SCHEMA_CHECKS, run_checks, seed_checks
from seed.generator import SeedParameters
from seed.loader import count_mock_rows, is_intact, load_mock_data, read_manifest, unload_mock_data

SEED_PARAMETERS = ("scale", "rng_seed", "anchor_date", "dataset_version")
FLAG_REASON = "stack config swipesavvy:featureFlags"
# Set by the operator function from its Lambda context (never by the event): who invoked it,
# recorded in the audit log beside the actor the request claims.
INVOKER_ARG = "invoker"

Operation = Callable[[psycopg.Connection, Mapping[str, Any]], dict[str, Any]]


class InvalidRequest(ValueError):
    """A request that names no known operation or lacks an argument; one line."""


def _arg(args: Mapping[str, Any], name: str) -> Any:
    if name not in args:
        raise InvalidRequest(f"argument {name!r} is missing")
    return args[name]


# --- schema ----------------------------------------------------------------------------------


def migrate(conn: psycopg.Connection, args: Mapping[str, Any]) -> dict[str, Any]:
    """Apply the pending migrations; ``migrations`` is what the program planned, which must be
    what this code carries (a stale operator or a changed checkout refuses)."""
    migrations = load_migrations()
    here, planned = migration_checksums(migrations), dict(_arg(args, "migrations"))
    differing = sorted(name for name in here.keys() | planned.keys() if here.get(name) != planned.get(name))
    if differing:
        raise MigrationError(
            f"sql/ here differs from the planned migrations ({', '.join(differing)}): run `pulumi up` again"
        )
    report = apply_migrations(
        conn, migrations, on_applied=lambda m: print(f"applied {m.name} ({m.duration_ms:.0f} ms)", flush=True)
    )
    return {"applied": sorted(report.already_applied + [m.name for m in report.applied])}


def read_schema(conn: psycopg.Connection, _args: Mapping[str, Any]) -> dict[str, Any]:
    return {"migrations": read_ledger(conn)}


def drop_schema(conn: psycopg.Connection, _args: Mapping[str, Any]) -> dict[str, Any]:
    drop_schema_objects(conn)
    return {}


# --- mock data -------------------------------------------------------------------------------


def seed_parameters(args: Mapping[str, Any]) -> SeedParameters:
    """The seed arguments as the generator needs them (numbers may arrive as doubles)."""
    return SeedParameters(
        scale=float(_arg(args, "scale")),
        rng_seed=int(_arg(args, "rng_seed")),
        anchor_date=datetime.date.fromisoformat(_arg(args, "anchor_date")),
        dataset_version=int(_arg(args, "dataset_version")),
    )


def seed(conn: psycopg.Connection, args: Mapping[str, Any]) -> dict[str, Any]:
    report = load_mock_data(
        conn, seed_parameters(args), progress=lambda table, rows: print(f"seeding {table}: {rows} rows", flush=True)
    )
    return {"counts": report.counts, "checksum": report.checksum, "seconds": round(report.elapsed_seconds, 3)}


def unseed(conn: psycopg.Connection, _args: Mapping[str, Any]) -> dict[str, Any]:
    return {"removed": unload_mock_data(conn)}


def read_seed(conn: psycopg.Connection, _args: Mapping[str, Any]) -> dict[str, Any]:
    """The loaded data set's parameters, or nulls when it was removed or changed by hand."""
    manifest = read_manifest(conn)
    counts = count_mock_rows(conn)
    if manifest is None or not is_intact(conn, manifest):
        return {**dict.fromkeys(SEED_PARAMETERS), "counts": counts, "checksum": None}
    return {
        "scale": manifest.scale,
        "rng_seed": manifest.rng_seed,
        "anchor_date": manifest.anchor_date.isoformat(),
        "dataset_version": manifest.dataset_version,
        "counts": counts,
        "checksum": manifest.checksum,
    }


# --- feature flags ---------------------------------------------------------------------------


def apply_flags(conn: psycopg.Connection, args: Mapping[str, Any]) -> dict[str, Any]:
    try:
        settings = flag_settings(_arg(args, "flags"))
    except InvalidFlagSetting as error:
        raise InvalidRequest(str(error)) from None
    reason = f"{FLAG_REASON}; invoked as {args[INVOKER_ARG]}" if INVOKER_ARG in args else FLAG_REASON
    changed = apply_flag_settings(conn, settings, actor=_arg(args, "actor"), reason=reason)
    return {"changed": changed}


def read_flags(conn: psycopg.Connection, args: Mapping[str, Any]) -> dict[str, Any]:
    actual = read_flag_settings(conn, list(_arg(args, "keys")))
    return {"flags": {key: {"enabled": on, "rollout_percentage": pct} for key, (on, pct) in actual.items()}}


# --- login roles -----------------------------------------------------------------------------


def login_spec(args: Mapping[str, Any]) -> LoginSpec:
    return LoginSpec(
        name=_arg(args, "name"),
        group=_arg(args, "group"),
        connection_limit=int(_arg(args, "connection_limit")),
        statement_timeout_ms=int(args.get("statement_timeout_ms") or 0),
    )


def create_login(conn: psycopg.Connection, args: Mapping[str, Any]) -> dict[str, Any]:
    """Create or update the login with the password its own secret holds now."""
    ensure_login(conn, login_spec(args), read_password(_arg(args, "password_secret_arn")))
    return {}


def read_login_role(conn: psycopg.Connection, args: Mapping[str, Any]) -> dict[str, Any]:
    actual = read_login(conn, _arg(args, "name"))
    return {"login": None if actual is None else asdict(actual)}


def drop_login_role(conn: psycopg.Connection, args: Mapping[str, Any]) -> dict[str, Any]:
    drop_login(conn, _arg(args, "name"))
    return {}


# --- verify ----------------------------------------------------------------------------------


def verify(conn: psycopg.Connection, args: Mapping[str, Any]) -> dict[str, Any]:
    results = run_checks(conn, SCHEMA_CHECKS + seed_checks(require_seed=bool(args.get("require_seed"))))
    return {"results": [asdict(result) for result in results]}


def verify_login(conn: psycopg.Connection, args: Mapping[str, Any]) -> dict[str, Any]:
    """``verify`` connected as an application login (the request's connection names its
    secret), plus whether it may read and write as it should (``may_write``)."""
    results = login_checks(conn, bool(_arg(args, "may_write")), bool(args.get("require_seed")))
    return {"results": [asdict(result) for result in results]}


OPERATIONS: dict[str, Operation] = {
    "migrate": migrate,
    "read_schema": read_schema,
    "drop_schema": drop_schema,
    "seed": seed,
    "unseed": unseed,
    "read_seed": read_seed,
    "apply_flags": apply_flags,
    "read_flags": read_flags,
    "create_login": create_login,
    "read_login": read_login_role,
    "drop_login": drop_login_role,
    "verify": verify,
    "verify_login": verify_login,
}
# What ``pulumi refresh``, previews and ``verify`` need: they change nothing, and run as a login
# that may only read (dbops.authority: the read-only operator). verify_login is not one: it
# connects as each application login, whose secrets only the deploying side may read.
READ_OPERATIONS = frozenset({"read_schema", "read_seed", "read_flags", "read_login", "verify"})
# Refused unless the stack allows data destruction (database.allowDataDestruction).
DESTRUCTIVE_OPERATIONS = frozenset({"drop_schema"})


def run_operation(connection: Mapping[str, Any], operation: str, args: Mapping[str, Any]) -> dict[str, Any]:
    """Run ``operation`` over a direct connection built from ``connection`` (password read
    from its secret now); raises the operation's own one-line errors."""
    if operation not in OPERATIONS:
        raise InvalidRequest(f"unknown operation {operation!r}; known: {', '.join(OPERATIONS)}")
    with connect(conninfo_for(connection)) as conn:
        return OPERATIONS[operation](conn, args)
