"""``MockDataSeed``: runbook phase 2 (about 67,000 mock rows) as a Pulumi resource.

Unchanged inputs are a no-op; changed scale, RNG seed, anchor date or dataset version
reload everything in one transaction (``seed.loader.load_mock_data``, the same code as
``python -m ops db seed``); deleting it removes the seeded rows and nothing else.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, Resource, UpdateResult

from components.config import SeedConfig
from components.dynamic import PostgresResourceProvider, open_connection
from seed.generator import SeedParameters
from seed.loader import load_mock_data, unload_mock_data


class MockDataSeedProvider(PostgresResourceProvider):
    work_inputs = ("scale", "rng_seed", "anchor_date", "dataset_version")

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_=f"{props['database_id']}/mock-data", outs=self._load(props))

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        if not self.needs_work(olds, news):  # only the connection changed: keep the data
            return UpdateResult(outs={**news, "counts": olds.get("counts"), "checksum": olds.get("checksum")})
        return UpdateResult(outs=self._load(news))

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        with open_connection(props) as conn:
            removed = unload_mock_data(conn)
        print(f"MockDataSeed: removed {sum(removed.values())} seeded rows")

    @staticmethod
    def _load(props: dict[str, Any]) -> dict[str, Any]:
        params = SeedParameters(
            scale=float(props["scale"]),
            rng_seed=int(props["rng_seed"]),
            anchor_date=datetime.date.fromisoformat(props["anchor_date"]),
            dataset_version=int(props["dataset_version"]),
        )
        with open_connection(props) as conn:
            report = load_mock_data(
                conn, params, progress=lambda table, rows: print(f"MockDataSeed: {table}: {rows} rows")
            )
        print(f"MockDataSeed: {sum(report.counts.values())} rows in {report.elapsed_seconds:.2f} s")
        return {**props, "counts": report.counts, "checksum": report.checksum}


@dataclass
class MockDataSeedArgs:
    connection: pulumi.Input[dict]
    """A login allowed to write every table (on RDS: the master user); marked secret here."""
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
                "connection": pulumi.Output.secret(args.connection),
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
