"""Pending creates: resources an interrupted update (a cancelled job, a lost runner) began to
create and never recorded, read from ``pulumi stack export`` (its ``pending_operations``).

Pulumi cannot know whether such a create finished in the cloud. A refresh run without a
terminal skips them (``--skip-pending-creates`` is the non-interactive default) and they stay,
so the next ``pulumi up --refresh`` warns again and creates the resource once more: for the RDS
instance that is a second instance, or a name that already exists. The recovery is one of the
refresh's own flags (Pulumi CLI, ``pulumi refresh``; "Recovering from an interrupted update"):
- the resource exists: ``--import-pending-creates '<URN> <ID>'`` adopts it into the state;
- it does not (or it was deleted by hand): ``--clear-pending-creates`` drops the record.

Pure: the export in, what to do out; ``python -m ops pending --stack NAME`` prints it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

CREATING = "creating"  # Pulumi's apitype.OperationTypeCreating
# Where the provider id of a half-made resource is found (the ID --import-pending-creates wants).
FIND_ID = {
    "aws:rds/instance:Instance": (
        "aws rds describe-db-instances --query \"DBInstances[?TagList[?Key=='stack' && Value=='{stack}']]"
        '.[DBInstanceIdentifier,DBInstanceStatus]" --output text'
    ),
}
FIND_ANY_ID = "the console or the service's describe/list call for {type}, by its tags (stack={stack})"


@dataclass(frozen=True)
class PendingCreate:
    urn: str
    type: str
    name: str
    known_id: str | None  # the id the program fixed in advance (a review stack's instance), if any


def pending_creates(export: Mapping[str, Any]) -> list[PendingCreate]:
    """The ``creating`` operations of a ``pulumi stack export`` document."""
    operations = (export.get("deployment") or {}).get("pending_operations") or []
    found = []
    for operation in operations:
        if operation.get("type") != CREATING:
            continue
        resource = operation.get("resource") or {}
        urn = resource.get("urn", "")
        inputs = resource.get("inputs") or {}
        found.append(PendingCreate(urn, resource.get("type", ""), urn.rsplit("::", 1)[-1], inputs.get("identifier")))
    return found


def recovery_lines(stack: str, pending: list[PendingCreate]) -> list[str]:
    """What to check and the one command for each outcome, per pending create."""
    if not pending:
        return [f"stack {stack} has no pending creates"]
    lines = [f"stack {stack} has {len(pending)} pending create(s) from an interrupted update:"]
    for create in pending:
        find = FIND_ID.get(create.type, FIND_ANY_ID).format(stack=stack, type=create.type)
        resource_id = create.known_id or "<ID>"
        lines += [
            f"- {create.type} {create.name}: did its create finish? Look: {find}",
            f"  it exists: pulumi refresh --stack {stack} --yes --non-interactive"
            f" --import-pending-creates '{create.urn} {resource_id}'",
            f"  it does not: pulumi refresh --stack {stack} --yes --non-interactive --clear-pending-creates",
        ]
    lines.append(f"then: pulumi up --refresh --stack {stack} (`python -m ops pending --stack {stack}` says none left)")
    return lines
