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

import psycopg
import pulumi
from pulumi.dynamic import Resource

from components.dynamic import CONNECTION_INPUT, PostgresResourceProvider, open_connection
from ops.flags import apply_flag_settings, read_flag_settings


class FeatureFlagSettingsProvider(PostgresResourceProvider):
    work_inputs = ("flags",)
    recorded_inputs = (CONNECTION_INPUT, "actor")

    def resource_id(self, props: Mapping[str, Any]) -> str:
        return f"{props['database_id']}/feature-flags"

    def apply(self, props: dict[str, Any]) -> dict[str, Any]:
        settings = {key: (flag["enabled"], int(flag["rollout_percentage"])) for key, flag in props["flags"].items()}
        with open_connection(props) as conn:
            changed = apply_flag_settings(
                conn, settings, actor=props["actor"], reason="stack config swipesavvy:featureFlags"
            )
        print(f"FeatureFlagSettings: {len(changed)} flag(s) changed: {', '.join(changed) or 'none'}")
        return props

    def observe(self, conn: psycopg.Connection, props: Mapping[str, Any]) -> dict[str, Any]:
        actual = read_flag_settings(conn, list(props["flags"]))
        return {"flags": {key: {"enabled": on, "rollout_percentage": pct} for key, (on, pct) in actual.items()}}


@dataclass
class FeatureFlagSettingsArgs:
    connection: pulumi.Input[dict]
    database_id: pulumi.Input[str]
    flags: dict[str, dict[str, Any]]
    """``{key: {"enabled": bool, "rollout_percentage": int}}``, validated by the config layer."""
    actor: str
    """Recorded as changed_by in the audit log, e.g. ``pulumi:staging``."""


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
            },
            opts,
        )
