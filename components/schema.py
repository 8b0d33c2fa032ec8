"""``DatabaseSchema``: the SQL migrations in sql/ as a Pulumi resource.

Inputs are the connection and ``{migration name: checksum}``, so a preview shows new
migrations as added map entries and an edited, already-applied file fails the preview.
``create``/``update`` call ``dbops.migrations.apply_migrations``: the same code as
``python -m ops db migrate``. ``pulumi refresh`` reads the ledger, so migrations applied
or removed by hand show up as drift.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.dynamic import CheckFailure, CheckResult, DiffResult, Resource

from components.dynamic import PostgresResourceProvider, is_unknown, run
from dbops.migrations import MigrationError, load_migrations, migration_checksums, pending_names


class DatabaseSchemaProvider(PostgresResourceProvider):
    work_inputs = ("migrations",)
    recorded_inputs = (*PostgresResourceProvider.recorded_inputs, "allow_data_destruction")
    output_keys = ("applied",)

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        """Refuse an edited or removed migration that the last update applied, as a check
        failure: the preview stops with one line naming the file, not a traceback."""
        failures = []
        if olds.get("migrations") and not is_unknown(news.get("migrations")):
            try:
                pending_names(news["migrations"], olds["migrations"])
            except MigrationError as error:
                failures.append(CheckFailure("migrations", str(error)))
        return CheckResult(news, failures)

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        result = super().diff(id_, olds, news)
        if not is_unknown(news.get("migrations")) and not result.replaces:
            applied = {
                name: olds["migrations"][name]
                for name in olds.get("applied") or []
                if name in (olds.get("migrations") or {})
            }
            # Raises for an edited or removed applied migration: the preview fails, naming it.
            pending = pending_names(news["migrations"], applied)
            if pending:
                print(f"DatabaseSchema: {len(pending)} migration(s) pending: {', '.join(pending)}")
        return result

    def resource_id(self, props: Mapping[str, Any]) -> str:
        return props["database_id"]

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        if not props.get("allow_data_destruction"):
            print(
                "DatabaseSchema: left in place (database.allowDataDestruction is false); "
                "tables and data survive this delete"
            )
            return
        run(props, "drop_schema")

    def apply(self, props: dict[str, Any]) -> dict[str, Any]:
        applied = run(props, "migrate", {"migrations": props["migrations"]})["applied"]
        return {**props, "applied": applied}

    def observe(self, props: Mapping[str, Any]) -> dict[str, Any]:
        ledger = run(props, "read_schema")["migrations"]
        return {"migrations": ledger, "applied": sorted(ledger)}


@dataclass
class DatabaseSchemaArgs:
    connection: pulumi.Input[dict]
    """host, port, dbname, user, sslmode and ``password_secret_arn`` of a login that may create
    roles and owns the database (on RDS: the master user, whose password RDS rotates)."""
    database_id: pulumi.Input[str]
    """Stable identity of the database (e.g. the RDS resource id and database name)."""
    allow_data_destruction: bool = False
    """When true, deleting this resource drops every object the migrations created."""
    operator: pulumi.Input[str] | None = None
    """The operator function's ARN when the database is reached through it."""
    reader: pulumi.Input[str] | None = None
    """Its read-only twin's ARN, for refresh."""


class DatabaseSchema(Resource, module="db", name="DatabaseSchema"):
    applied: pulumi.Output[list]
    """Names of the migrations applied to the database, in order."""
    migrations: pulumi.Output[dict]

    def __init__(self, name: str, args: DatabaseSchemaArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(
            DatabaseSchemaProvider(),
            name,
            {
                "connection": args.connection,
                "database_id": args.database_id,
                "migrations": migration_checksums(load_migrations()),
                "allow_data_destruction": args.allow_data_destruction,
                "operator": args.operator,
                "reader": args.reader,
                "applied": None,
            },
            opts,
        )
