"""``swipesavvy:seed``: whether and how much mock data the stack loads."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from components.config.section import MAX_EXACT_INTEGER, _fail, _Section
from seed.generator import MAX_SCALE, MIN_ANCHOR_DATE, MIN_SCALE


@dataclass(frozen=True)
class SeedConfig:
    """Mock data (runbook phase 2); off unless the stack turns it on."""

    enabled: bool = False
    scale: float = 1.0
    rng_seed: int = 20251228
    anchor_date: datetime.date = datetime.date(2025, 12, 28)
    dataset_version: int = 1


def _anchor_date(s: _Section) -> datetime.date:
    """``seed.anchorDate``: from the generator's earliest date up to today (UTC), the loader's
    limit (no mock data dated after today), so preview refuses what ``pulumi up`` would."""
    default = SeedConfig.anchor_date.isoformat()
    raw = s.get("anchorDate", default)
    today = datetime.datetime.now(datetime.UTC).date()
    try:
        anchor = datetime.date.fromisoformat(str(raw))
    except ValueError:
        anchor = None
    if anchor is None or not MIN_ANCHOR_DATE <= anchor <= today:
        raise _fail(
            s.path("anchorDate"),
            raw if anchor is None else anchor.isoformat(),  # YAML may hand over a date object
            f"must be a date YYYY-MM-DD from {MIN_ANCHOR_DATE.isoformat()} to today ({today.isoformat()} UTC);"
            " the mock data covers the 90 days before it",
            default,
        )
    return anchor


def parse_seed(raw: Any, environment: str) -> SeedConfig:
    s = _Section("seed", raw)
    d = SeedConfig()
    enabled = s.boolean("enabled", environment != "production")
    if enabled and environment == "production":
        raise _fail(s.path("enabled"), True, "mock data is never seeded into production", "false")
    config = SeedConfig(
        enabled=enabled,
        scale=s.number("scale", d.scale, MIN_SCALE, MAX_SCALE),
        rng_seed=s.integer(
            "rngSeed", d.rng_seed, 0, MAX_EXACT_INTEGER, " (larger values do not survive Pulumi's number encoding)"
        ),
        anchor_date=_anchor_date(s),
        dataset_version=s.integer("datasetVersion", d.dataset_version, 1, 1_000_000),
    )
    s.finish()
    return config
