"""The stack's retained manual snapshots, bounded (docs/operations.md "What `pulumi destroy` keeps").

Staging takes an "after schema" snapshot per instance and a new "after seed" one whenever
the schema or the data changes, and keeps them (``retain_on_delete``), plus a final one
per destroyed instance: left alone they reach RDS's manual-snapshot quota (100 per
region). The rule: of each kind (``after-schema``, ``after-seed``, ``final``) of one
stack, the newest ``keep`` stay and older ones are deleted; production's are never
touched (its snapshots are its recovery points), and only a review stack (``pr-<N>``)
may keep none. Snapshots are recognised by the identifiers the program gives them,
``swipesavvy-<stack>-<kind>-<8 hex>``; nothing else in the account matches.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from components.config import REVIEW_STACK

KINDS = ("after-schema", "after-seed", "final")
_IDENTIFIER = re.compile(rf"^swipesavvy-(?P<stack>[a-z0-9-]+)-(?P<kind>{'|'.join(KINDS)})-(?P<suffix>[0-9a-f]{{8}})$")
DEFAULT_KEEP = 3
PROTECTED_STACKS = ("production",)


class SnapshotRefused(ValueError):
    """A prune that must not run; one line naming why and the fix."""


@dataclass(frozen=True)
class Snapshot:
    identifier: str
    kind: str
    created: datetime.datetime
    status: str


def stack_snapshots(described: Iterable[Mapping[str, Any]], stack: str) -> list[Snapshot]:
    """The stack's own manual snapshots among ``DescribeDBSnapshots`` results."""
    found = []
    for item in described:
        match = _IDENTIFIER.match(item["DBSnapshotIdentifier"])
        if match and match["stack"] == stack:
            created = item.get("SnapshotCreateTime") or datetime.datetime.max.replace(tzinfo=datetime.UTC)
            found.append(Snapshot(item["DBSnapshotIdentifier"], match["kind"], created, item.get("Status", "")))
    return found


def check_prune(stack: str, keep: int) -> None:
    if stack in PROTECTED_STACKS:
        raise SnapshotRefused(
            f"snapshots prune refuses stack {stack}: its snapshots are its recovery points (fix: delete one by hand"
            " with aws rds delete-db-snapshot after deciding it is not needed)"
        )
    if keep < 1 and not REVIEW_STACK.match(stack):
        raise SnapshotRefused(
            f"--keep {keep} would delete every snapshot of stack {stack}; only a review stack (pr-<number>) may keep"
            f" none (fix: --keep {DEFAULT_KEEP})"
        )


def to_delete(snapshots: Iterable[Snapshot], keep: int) -> list[Snapshot]:
    """Of each kind, all but the newest ``keep``; snapshots still being created are left alone."""
    doomed = []
    for kind in KINDS:
        of_kind = sorted((s for s in snapshots if s.kind == kind), key=lambda s: (s.created, s.identifier))
        old = of_kind[: max(0, len(of_kind) - keep)]
        doomed += [s for s in old if s.status == "available"]
    return doomed


def describe_manual_snapshots(rds) -> list[dict[str, Any]]:
    """Every manual DB snapshot in the client's region (paginated)."""
    paginator = rds.get_paginator("describe_db_snapshots")
    return [item for page in paginator.paginate(SnapshotType="manual") for item in page["DBSnapshots"]]


def prune(rds, stack: str, keep: int, delete: bool) -> tuple[list[Snapshot], list[Snapshot]]:
    """``(kept, deleted or to delete)`` for ``stack``; deletes only when ``delete``."""
    check_prune(stack, keep)
    snapshots = stack_snapshots(describe_manual_snapshots(rds), stack)
    doomed = to_delete(snapshots, keep)
    if delete:
        for snapshot in doomed:
            rds.delete_db_snapshot(DBSnapshotIdentifier=snapshot.identifier)
    kept = [s for s in snapshots if s not in doomed]
    return kept, doomed
