"""Per-stack feature-flag states (``swipesavvy:featureFlags``) applied to ``feature_flags``.

Changes go through the table's audit trigger with the actor and reason set, so every
change a ``pulumi up`` makes is in ``feature_flag_audit_log`` like any other. Each applied
setting is also recorded in ``swipesavvy_meta.feature_flag_settings`` (which the
applications cannot write), so ``verify`` knows what the stack set and can report any
flag changed outside it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import psycopg

SETTINGS_TABLE = "swipesavvy_meta.feature_flag_settings"
# key -> (category, enabled, rollout_percentage): the flags migration 003 seeds, the only
# keys a stack's featureFlags may set (tests compare this with a migrated database). What a
# stack applied (swipesavvy_meta.feature_flag_settings) overrides the last two.
SEEDED_FLAGS: dict[str, tuple[str, bool, int]] = {
    "tier_progress_bar": ("UI", True, 100),
    "amount_chip_selector": ("UI", True, 100),
    "platform_goal_meter": ("UI", True, 100),
    "ai_concierge_chat": ("UI", True, 100),
    "dark_mode": ("UI", True, 100),
    "social_sharing": ("Advanced", True, 100),
    "receipt_generation": ("Advanced", True, 100),
    "community_feed": ("Experimental", False, 0),
    "notification_center": ("Experimental", False, 0),
    "advanced_analytics": ("Experimental", False, 0),
}


class UnknownFlag(ValueError):
    """A configured flag key that the database does not have."""


class InvalidFlagSetting(ValueError):
    """A flag setting of the wrong type; the message is one line naming it."""


def flag_settings(flags: Any) -> dict[str, tuple[bool, int]]:
    """``{key: (enabled, rollout_percentage)}`` from ``{key: {"enabled", "rollout_percentage"}}``
    as a request carries it, types checked, never coerced (``bool("false")`` is true). The
    engine hands numbers over as doubles, so an integral float is an integer."""
    if not isinstance(flags, Mapping):
        raise InvalidFlagSetting(f"flags = {_shown(flags)} is not an object of flag settings")
    settings = {}
    for key, flag in flags.items():
        if not isinstance(flag, Mapping):
            raise InvalidFlagSetting(
                f"flags.{key} = {_shown(flag)} is not an object with enabled and rollout_percentage"
            )
        enabled, percentage = flag.get("enabled"), flag.get("rollout_percentage")
        if not isinstance(enabled, bool):
            raise InvalidFlagSetting(f"flags.{key}.enabled = {_shown(enabled)} is not true or false")
        if isinstance(percentage, float) and percentage.is_integer():
            percentage = int(percentage)
        if isinstance(percentage, bool) or not isinstance(percentage, int) or not 0 <= percentage <= 100:
            raise InvalidFlagSetting(
                f"flags.{key}.rollout_percentage = {_shown(percentage)} is not an integer from 0 to 100"
            )
        settings[key] = (enabled, percentage)
    return settings


def _shown(value: Any) -> str:
    return json.dumps(value, default=repr)[:60]


def apply_flag_settings(
    conn: psycopg.Connection,
    settings: Mapping[str, tuple[bool, int]],
    *,
    actor: str,
    reason: str,
) -> list[str]:
    """Set ``{key: (enabled, rollout_percentage)}`` in one transaction and record them;
    return the keys that changed. Nothing is written when any key is unknown."""
    if not settings:
        return []
    with conn.transaction():
        conn.execute(
            "SELECT set_config('swipesavvy.actor', %s, true), set_config('swipesavvy.change_reason', %s, true)",
            (actor, reason),
        )
        known = {row[0] for row in conn.execute("SELECT key FROM feature_flags WHERE key = ANY(%s)", (list(settings),))}
        missing = sorted(set(settings) - known)
        if missing:
            raise UnknownFlag(
                f"feature flag {missing[0]!r} does not exist; known flags are listed by `SELECT key FROM feature_flags`"
            )
        changed = []
        for key, (enabled, percentage) in sorted(settings.items()):
            row = conn.execute(
                "UPDATE feature_flags SET enabled = %s, rollout_percentage = %s, updated_by = %s"
                " WHERE key = %s AND (enabled, rollout_percentage) IS DISTINCT FROM (%s, %s) RETURNING key",
                (enabled, percentage, actor, key, enabled, percentage),
            ).fetchone()
            if row:
                changed.append(key)
            _record_setting(conn, key, enabled, percentage, actor)
    return changed


def _record_setting(conn: psycopg.Connection, key: str, enabled: bool, percentage: int, actor: str) -> None:
    """Upsert what the stack set; an unchanged setting keeps its first applied_at."""
    conn.execute(
        f"INSERT INTO {SETTINGS_TABLE} AS s (key, enabled, rollout_percentage, actor) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT (key) DO UPDATE SET enabled = excluded.enabled,"
        " rollout_percentage = excluded.rollout_percentage, actor = excluded.actor,"
        " applied_by = session_user, applied_at = now()"
        " WHERE (s.enabled, s.rollout_percentage, s.actor)"
        " IS DISTINCT FROM (excluded.enabled, excluded.rollout_percentage, excluded.actor)",
        (key, enabled, percentage, actor),
    )


def read_flag_settings(conn: psycopg.Connection, keys: list[str]) -> dict[str, tuple[bool, int]]:
    """``{key: (enabled, rollout_percentage)}`` as the database holds them now; keys that do
    not exist are left out."""
    rows = conn.execute(
        "SELECT key, enabled, rollout_percentage FROM feature_flags WHERE key = ANY(%s) ORDER BY key", (keys,)
    )
    return {key: (enabled, percentage) for key, enabled, percentage in rows}
