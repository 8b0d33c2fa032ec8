"""``FeatureFlagSettings``: the stack's ``featureFlags`` config applied to the database.

Deleting the resource leaves the flags as they are: flag states are data the application
owns once set, and their history is in the audit log. ``pulumi refresh`` reads the
configured flags back, so a flag edited by hand shows up as drift and the next
``pulumi up`` sets it again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.dynamic import Resource

from components.dynamic import PostgresResourceProvider, run


class FeatureFlagSettingsProvider(PostgresResourceProvider):
    work_inputs = ("flags",)
    recorded_inputs = (*PostgresResourceProvider.recorded_inputs, "actor")

    def resource_id(self, props: Mapping[str, Any]) -> str:
        return f"{props['database_id']}/feature-flags"

    def apply(self, props: dict[str, Any]) -> dict[str, Any]:
        changed = run(props, "apply_flags", {"flags": props["flags"], "actor": props["actor"]})["changed"]
        print(f"FeatureFlagSettings: {len(changed)} flag(s) changed: {', '.join(changed) or 'none'}")
        return props

    def observe(self, props: Mapping[str, Any]) -> dict[str, Any]:
        return run(props, "read_flags", {"keys": list(props["flags"])})


@dataclass
class FeatureFlagSettingsArgs:
    connection: pulumi.Input[dict]
    database_id: pulumi.Input[str]
    flags: dict[str, dict[str, Any]]
    """``{key: {"enabled": bool, "rollout_percentage": int}}``, validated by the config layer."""
    actor: str
    """Recorded as changed_by in the audit log, e.g. ``pulumi:staging``."""
    operator: pulumi.Input[str] | None = None
    """The operator function's ARN when the database is reached through it."""
    reader: pulumi.Input[str] | None = None
    """Its read-only twin's ARN, for refresh."""


class FeatureFlagSettings(Resource, module="db", name="FeatureFlagSettings"):
    flags: pulumi.Output[dict]

    def __init__(self, name: str, args: FeatureFlagSettingsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(
            FeatureFlagSettingsProvider(),
            name,
            {
                "connection": args.connection,
                "database_id": args.database_id,
                "flags": args.flags,
                "actor": args.actor,
                "operator": args.operator,
                "reader": args.reader,
            },
            opts,
        )
