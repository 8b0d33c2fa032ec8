"""The MockDataSeed dynamic provider called directly against a real PostgreSQL."""

from __future__ import annotations

import base64

import dill
import psycopg
import pytest
from db_helpers import connection_of
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.runtime.rpc import UNKNOWN

from components.mock_data import MockDataSeedProvider

# Passwords (SWIPESAVVY_TEST_DSN may have one) are read from Secrets Manager, as in RDS.
pytestmark = pytest.mark.usefixtures("secrets_manager")

SMALL = 0.02  # keeps each load to a few thousand rows


def seed_props(dsn: str, **overrides) -> dict:
    props = {
        "connection": connection_of(dsn),
        "database_id": "db-TEST/swipesavvy",
        "scale": SMALL,
        "rng_seed": 7,
        "anchor_date": "2025-12-28",
        "dataset_version": 1,
        "counts": None,
        "checksum": None,
    }
    return {**props, **overrides}


def mock_campaigns(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT count(*) FROM campaigns WHERE is_mock").fetchone()[0]


def loaded_at(dsn: str):
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT loaded_at FROM swipesavvy_meta.mock_data_seed").fetchone()[0]


def test_create_loads_and_reports_counts_and_checksum(migrated_dsn):
    result = MockDataSeedProvider().create(seed_props(migrated_dsn))
    assert result.id == "db-TEST/swipesavvy/mock-data"
    assert result.outs["counts"]["campaigns"] == mock_campaigns(migrated_dsn) > 0
    assert len(result.outs["checksum"]) == 64
    assert result.outs["connection"] == connection_of(migrated_dsn)  # delete needs it later


def test_same_inputs_are_no_change_and_changed_inputs_are_an_update(migrated_dsn):
    outs = MockDataSeedProvider().create(seed_props(migrated_dsn)).outs
    provider = MockDataSeedProvider()
    assert provider.diff("id", outs, seed_props(migrated_dsn)).changes is False
    for key, value in (("scale", 0.03), ("rng_seed", 8), ("anchor_date", "2025-12-01"), ("dataset_version", 2)):
        diff = provider.diff("id", outs, seed_props(migrated_dsn, **{key: value}))
        assert diff.changes is True and diff.replaces == [], key
    unknown = provider.diff("id", outs, seed_props(migrated_dsn, connection=UNKNOWN))
    assert unknown.changes is True and unknown.replaces == []


def test_update_with_new_seed_reloads_in_place(migrated_dsn):
    provider = MockDataSeedProvider()
    outs = provider.create(seed_props(migrated_dsn)).outs
    updated = provider.update("id", outs, seed_props(migrated_dsn, rng_seed=8)).outs
    assert updated["checksum"] != outs["checksum"]
    assert updated["counts"] == outs["counts"]  # replaced, not added to
    assert mock_campaigns(migrated_dsn) == outs["counts"]["campaigns"]


def test_connection_only_update_keeps_the_data(migrated_dsn):
    provider = MockDataSeedProvider()
    outs = provider.create(seed_props(migrated_dsn)).outs
    before = loaded_at(migrated_dsn)
    news = seed_props(migrated_dsn)
    news["connection"] = {**news["connection"], "sslmode": "prefer"}
    updated = provider.update("id", outs, news).outs
    assert (updated["counts"], updated["checksum"]) == (outs["counts"], outs["checksum"])
    assert updated["connection"]["sslmode"] == "prefer"
    assert loaded_at(migrated_dsn) == before


def test_delete_removes_only_the_seeded_rows(migrated_dsn):
    with psycopg.connect(migrated_dsn) as conn:
        conn.execute(
            "INSERT INTO campaigns (name, channel, start_date) VALUES ('Real campaign', 'email', '2025-01-01')"
        )
    provider = MockDataSeedProvider()
    outs = provider.create(seed_props(migrated_dsn)).outs
    provider.delete("id", outs)
    assert mock_campaigns(migrated_dsn) == 0
    with psycopg.connect(migrated_dsn) as conn:
        assert conn.execute("SELECT name FROM campaigns").fetchall() == [("Real campaign",)]
        assert conn.execute("SELECT count(*) FROM feature_flags").fetchone()[0] == 10


def test_serialization_round_trips():
    restored = dill.loads(base64.b64decode(serialize_provider(MockDataSeedProvider())))
    assert isinstance(restored, MockDataSeedProvider)
    assert restored.work_inputs == ("scale", "rng_seed", "anchor_date", "dataset_version")


def test_create_on_an_unmigrated_database_fails_with_one_line(empty_dsn):
    from seed.loader import SeedError

    with pytest.raises(SeedError, match="schema is not migrated"):
        MockDataSeedProvider().create(seed_props(empty_dsn))
