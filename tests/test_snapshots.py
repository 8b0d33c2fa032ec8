"""``python -m ops snapshots prune``: a stack's retained snapshots bounded to the newest N of
each kind, on moto's RDS; never production's, never another stack's, never a snapshot
still being taken; a review stack may keep none."""

from __future__ import annotations

import datetime

import boto3
import pytest
from moto import mock_aws
from test_ops_stack_cli import one_line_error, run

from ops.cli import EXIT_OK, EXIT_REFUSED
from ops.live.snapshots import Snapshot, stack_snapshots, to_delete

T0 = datetime.datetime(2026, 11, 1, tzinfo=datetime.UTC)


def snapshot(identifier: str, hours: int, status: str = "available") -> dict:
    return {
        "DBSnapshotIdentifier": identifier,
        "SnapshotCreateTime": T0 + datetime.timedelta(hours=hours),
        "Status": status,
    }


def test_of_each_kind_the_newest_stay_and_only_the_stacks_own_are_considered():
    described = [
        snapshot("swipesavvy-staging-after-seed-0000000a", 1),
        snapshot("swipesavvy-staging-after-seed-0000000b", 3),
        snapshot("swipesavvy-staging-after-seed-0000000c", 2),
        snapshot("swipesavvy-staging-after-seed-0000000d", 0, status="creating"),
        snapshot("swipesavvy-staging-after-schema-0000000e", 0),
        snapshot("swipesavvy-staging-final-0000000f", 5),
        snapshot("swipesavvy-staging-final-00000010", 4),
        snapshot("swipesavvy-production-after-schema-00000011", 0),
        snapshot("swipesavvy-pr-7-final-00000012", 0),
        snapshot("rds:swipesavvy-staging-automated", 0),
        snapshot("someone-elses-snapshot", 0),
    ]
    found = stack_snapshots(described, "staging")
    assert [s.identifier for s in found] == [item["DBSnapshotIdentifier"] for item in described[:7]]
    assert [s.identifier for s in to_delete(found, 1)] == [
        "swipesavvy-staging-after-seed-0000000a",  # the oldest two available after-seed ones
        "swipesavvy-staging-after-seed-0000000c",
        "swipesavvy-staging-final-00000010",
    ]
    assert to_delete(found, 3) == []
    assert [s.identifier for s in stack_snapshots(described, "pr-7")] == ["swipesavvy-pr-7-final-00000012"]


def test_keep_zero_deletes_every_available_one():
    found = [Snapshot("swipesavvy-pr-7-final-00000012", "final", T0, "available")]
    assert to_delete(found, 0) == found


@pytest.fixture
def rds(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    with mock_aws():
        client = boto3.client("rds", region_name="us-east-1")
        client.create_db_instance(
            DBInstanceIdentifier="swipesavvy-db-postgres-1a2b3c4",
            DBInstanceClass="db.t4g.medium",
            Engine="postgres",
            MasterUsername="swipesavvy_admin",
            MasterUserPassword="not-a-real-password",
            AllocatedStorage=100,
        )
        yield client


def take(rds, *identifiers: str) -> None:
    for identifier in identifiers:
        rds.create_db_snapshot(DBSnapshotIdentifier=identifier, DBInstanceIdentifier="swipesavvy-db-postgres-1a2b3c4")


def remaining(rds) -> list[str]:
    return sorted(s["DBSnapshotIdentifier"] for s in rds.describe_db_snapshots(SnapshotType="manual")["DBSnapshots"])


STAGING = [f"swipesavvy-staging-after-seed-0000000{i}" for i in range(1, 6)]


def test_prune_lists_first_and_deletes_only_with_yes(rds, capsys):
    take(rds, *STAGING, "swipesavvy-staging-after-schema-0000000a", "swipesavvy-production-after-seed-0000000b")
    code, out, _ = run(capsys, "snapshots", "prune", "--stack", "staging", "--keep", "2")
    assert code == EXIT_OK
    lines = out.splitlines()
    assert len(lines) == 5 and all(line.startswith("would delete swipesavvy-staging-after-seed-") for line in lines[:3])
    assert lines[3:] == [
        "staging: kept 3, would delete 3 (newest 2 of each kind kept)",
        "run again with --yes to delete them",
    ]
    assert len(remaining(rds)) == 7  # nothing deleted yet

    code, out, _ = run(capsys, "snapshots", "prune", "--stack", "staging", "--keep", "2", "--yes")
    assert code == EXIT_OK and out.splitlines()[-1] == "staging: kept 3, deleted 3 (newest 2 of each kind kept)"
    left = remaining(rds)
    assert "swipesavvy-production-after-seed-0000000b" in left and "swipesavvy-staging-after-schema-0000000a" in left
    assert len([s for s in left if s.startswith("swipesavvy-staging-after-seed-")]) == 2
    # Idempotent: a second run finds nothing more to delete.
    code, out, _ = run(capsys, "snapshots", "prune", "--stack", "staging", "--keep", "2", "--yes")
    assert out == "staging: kept 3, deleted 0 (newest 2 of each kind kept)\n"


def test_production_is_refused_and_only_a_review_stack_may_keep_none(rds, capsys):
    take(rds, "swipesavvy-production-after-seed-0000000b", "swipesavvy-pr-7-final-0000000c", STAGING[0])
    code, _, err = run(capsys, "snapshots", "prune", "--stack", "production", "--yes")
    assert code == EXIT_REFUSED
    assert one_line_error(err) == (
        "error: snapshots prune refuses stack production: its snapshots are its recovery points (fix: delete one by"
        " hand with aws rds delete-db-snapshot after deciding it is not needed)"
    )
    code, _, err = run(capsys, "snapshots", "prune", "--stack", "staging", "--keep", "0", "--yes")
    assert code == EXIT_REFUSED
    assert one_line_error(err) == (
        "error: --keep 0 would delete every snapshot of stack staging; only a review stack (pr-<number>) may keep"
        " none (fix: --keep 3)"
    )
    code, out, _ = run(capsys, "snapshots", "prune", "--stack", "pr-7", "--keep", "0", "--yes")
    assert code == EXIT_OK and out.splitlines()[-1] == "pr-7: kept 0, deleted 1 (newest 0 of each kind kept)"
    assert remaining(rds) == ["swipesavvy-production-after-seed-0000000b", STAGING[0]]
