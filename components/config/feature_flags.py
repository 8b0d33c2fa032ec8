"""``swipesavvy:featureFlags``: the settings of the flags the seed creates."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from components.config.section import _not_known, _Section
from dbops.flags import SEEDED_FLAGS

# The only keys swipesavvy:featureFlags may set: the provider updates rows, never creates them.
SEEDED_FLAG_KEYS = frozenset(SEEDED_FLAGS)


@dataclass(frozen=True)
class FeatureFlagSetting:
    enabled: bool
    rollout_percentage: int


def parse_feature_flags(raw: Any) -> dict[str, FeatureFlagSetting]:
    s = _Section("featureFlags", raw)
    flags = {}
    for key in sorted(s.raw):
        if key not in SEEDED_FLAG_KEYS:
            raise _not_known(s.path(key), "a flag the migrations seed", SEEDED_FLAG_KEYS)
        flag = _Section(f"featureFlags.{key}", s.raw[key])
        enabled = flag.boolean("enabled", False)
        flags[key] = FeatureFlagSetting(
            enabled=enabled,
            rollout_percentage=flag.integer("rolloutPercentage", 100 if enabled else 0, 0, 100, " (percent)"),
        )
        flag.finish()
        s.used.add(key)  # pragma: no mutate (no finish() here: the loop above refuses unknown keys itself)
    return flags
