"""``FeatureFlagSettings``: the stack's ``featureFlags`` config applied to the database.

Deleting the resource leaves the flags as they are: flag states are data the application
owns once set, and their history is in the audit log.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, Resource, UpdateResult

from components.dynamic import PostgresResourceProvider, open_connection
from ops.flags import apply_flag_settings


class FeatureFlagSettingsProvider(PostgresResourceProvider):
    work_inputs = ("flags",)

    def create(self, props: dict[str, Any]) -> CreateResult:
        self._apply(props)
        return CreateResult(id_=f"{props['database_id']}/feature-flags", outs=props)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        if self.needs_work(olds, news):
            self._apply(news)
        return UpdateResult(outs=news)

    @staticmethod
    def _apply(props: dict[str, Any]) -> None:
        settings = {key: (flag["enabled"], int(flag["rollout_percentage"])) for key, flag in props["flags"].items()}
        with open_connection(props) as conn:
            changed = apply_flag_settings(
                conn, settings, actor=props["actor"], reason="stack config swipesavvy:featureFlags"
            )
        print(f"FeatureFlagSettings: {len(changed)} flag(s) changed: {', '.join(changed) or 'none'}")


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
                "connection": pulumi.Output.secret(args.connection),
                "database_id": args.database_id,
                "flags": args.flags,
                "actor": args.actor,
            },
            opts,
        )
