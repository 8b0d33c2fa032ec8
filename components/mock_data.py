"""``MockDataSeed``: runbook phase 2 (about 67,000 mock rows) as a Pulumi resource.

Unchanged inputs are a no-op; changed scale, RNG seed, anchor date or dataset version
reload everything in one transaction (``seed.loader.load_mock_data``, the same code as
``python -m ops db seed``); deleting it removes the seeded rows and nothing else.
``pulumi refresh`` compares the database with its manifest: data removed or changed by
hand shows up as drift, and the next ``pulumi up`` loads it again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.dynamic import Resource

from components.config import SeedConfig
from components.dynamic import PostgresResourceProvider, run
from dbops.operations import SEED_PARAMETERS


class MockDataSeedProvider(PostgresResourceProvider):
    work_inputs = SEED_PARAMETERS
    output_keys = ("counts", "checksum")

    def resource_id(self, props: Mapping[str, Any]) -> str:
        return f"{props['database_id']}/mock-data"

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        removed = run(props, "unseed")["removed"]
        print(f"MockDataSeed: removed {sum(removed.values())} seeded rows")

    def apply(self, props: dict[str, Any]) -> dict[str, Any]:
        report = run(props, "seed", {key: props[key] for key in SEED_PARAMETERS})
        print(f"MockDataSeed: {sum(report['counts'].values())} rows in {report['seconds']:.2f} s")
        return {**props, "counts": report["counts"], "checksum": report["checksum"]}

    def observe(self, props: Mapping[str, Any]) -> dict[str, Any]:
        return run(props, "read_seed")


@dataclass
class MockDataSeedArgs:
    connection: pulumi.Input[dict]
    """A login allowed to write every table (on RDS: the master user); its password is read
    from the secret the connection names, when the provider runs."""
    database_id: pulumi.Input[str]
    seed: SeedConfig
    operator: pulumi.Input[str] | None = None
    """The operator function's ARN when the database is reached through it."""
    reader: pulumi.Input[str] | None = None
    """Its read-only twin's ARN, for refresh."""


class MockDataSeed(Resource, module="db", name="MockDataSeed"):
    counts: pulumi.Output[dict]
    """Rows loaded per table."""
    checksum: pulumi.Output[str]
    """sha256 of the generated data: equal checksums mean identical data."""

    def __init__(self, name: str, args: MockDataSeedArgs, opts: pulumi.ResourceOptions | None = None):
        seed = args.seed
        super().__init__(
            MockDataSeedProvider(),
            name,
            {
                "connection": args.connection,
                "database_id": args.database_id,
                "operator": args.operator,
                "reader": args.reader,
                "scale": seed.scale,
                "rng_seed": seed.rng_seed,
                "anchor_date": seed.anchor_date.isoformat(),
                "dataset_version": seed.dataset_version,
                "counts": None,
                "checksum": None,
            },
            opts,
        )
