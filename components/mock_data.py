"""``MockDataSeed``: runbook phase 2 (about 67,000 mock rows) as a Pulumi resource.

Unchanged inputs are a no-op; changed scale, RNG seed, anchor date or dataset version
reload everything in one transaction (``seed.loader.load_mock_data``, the same code as
``python -m ops db seed``); deleting it removes the seeded rows and nothing else.
``pulumi refresh`` compares the database with its manifest: data removed or changed by
hand shows up as drift, and the next ``pulumi up`` loads it again.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
import pulumi
from pulumi.dynamic import Resource

from components.config import SeedConfig
from components.dynamic import PostgresResourceProvider, open_connection
from seed.generator import SeedParameters
from seed.loader import count_mock_rows, is_intact, load_mock_data, read_manifest, unload_mock_data

SEED_INPUTS = ("scale", "rng_seed", "anchor_date", "dataset_version")


def seed_parameters(props: Mapping[str, Any]) -> SeedParameters:
    """The inputs as the generator needs them: the engine sends every number as a double."""
    return SeedParameters(
        scale=float(props["scale"]),
        rng_seed=int(props["rng_seed"]),
        anchor_date=datetime.date.fromisoformat(props["anchor_date"]),
        dataset_version=int(props["dataset_version"]),
    )


class MockDataSeedProvider(PostgresResourceProvider):
    work_inputs = SEED_INPUTS
    output_keys = ("counts", "checksum")

    def resource_id(self, props: Mapping[str, Any]) -> str:
        return f"{props['database_id']}/mock-data"

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        with open_connection(props) as conn:
            removed = unload_mock_data(conn)
        print(f"MockDataSeed: removed {sum(removed.values())} seeded rows")

    def apply(self, props: dict[str, Any]) -> dict[str, Any]:
        with open_connection(props) as conn:
            report = load_mock_data(
                conn, seed_parameters(props), progress=lambda table, rows: print(f"MockDataSeed: {table}: {rows} rows")
            )
        print(f"MockDataSeed: {sum(report.counts.values())} rows in {report.elapsed_seconds:.2f} s")
        return {**props, "counts": report.counts, "checksum": report.checksum}

    def observe(self, conn: psycopg.Connection, props: Mapping[str, Any]) -> dict[str, Any]:
        manifest = read_manifest(conn)
        counts = count_mock_rows(conn)
        if manifest is None or not is_intact(conn, manifest):  # removed or changed by hand
            return {**dict.fromkeys(SEED_INPUTS), "counts": counts, "checksum": None}
        return {
            "scale": manifest.scale,
            "rng_seed": manifest.rng_seed,
            "anchor_date": manifest.anchor_date.isoformat(),
            "dataset_version": manifest.dataset_version,
            "counts": counts,
            "checksum": manifest.checksum,
        }


@dataclass
class MockDataSeedArgs:
    connection: pulumi.Input[dict]
    """A login allowed to write every table (on RDS: the master user); its password is read
    from the secret the connection names, when the provider runs."""
    database_id: pulumi.Input[str]
    seed: SeedConfig


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
                "scale": seed.scale,
                "rng_seed": seed.rng_seed,
                "anchor_date": seed.anchor_date.isoformat(),
                "dataset_version": seed.dataset_version,
                "counts": None,
                "checksum": None,
            },
            opts,
        )
