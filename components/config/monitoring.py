"""``swipesavvy:monitoring``: Datadog's monitors, thresholds, synthetics and dashboard."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from components.config.backend import BackendConfig
from components.config.frontend import FrontendConfig
from components.config.section import _fail, _Section


@dataclass(frozen=True)
class Threshold:
    """A monitor's two levels, in the unit its setting names (percent, ms, records per minute)."""

    warning: float
    critical: float


@dataclass(frozen=True)
class ThresholdRule:
    """What a threshold setting means: the runbook's (or a stated) default, and which way is bad."""

    default: Threshold
    bad_when: str  # "above" or "below": the critical level is past the warning level in this direction
    high: float  # the largest value that makes sense (100 for a percentage)
    unit: str


# The runbook's alert values where it states them (error rate > 5%, latency > 500 ms, memory
# > 80%); the others are this program's choices, documented in README.md.
THRESHOLDS = {
    "apiErrorRatePercent": ThresholdRule(Threshold(2, 5), "above", 100, "%"),
    "apiLatencyP95Ms": ThresholdRule(Threshold(300, 500), "above", 60_000, " ms"),
    "hostMemoryPercent": ThresholdRule(Threshold(70, 80), "above", 100, "%"),
    "dbCpuPercent": ThresholdRule(Threshold(70, 85), "above", 100, "%"),
    "dbConnectionsPercent": ThresholdRule(Threshold(70, 85), "above", 100, "%"),
    "dbFreeStoragePercent": ThresholdRule(Threshold(20, 10), "below", 100, "%"),
    "flagCheckLatencyP95Ms": ThresholdRule(Threshold(50, 100), "above", 60_000, " ms"),
    "ingestionRecordsPerMinute": ThresholdRule(Threshold(2000, 1000), "below", 10_000_000, " records/min"),
}
_NOTIFY_HANDLE = re.compile(r"^(@[A-Za-z0-9_.+:/@-]+)( @[A-Za-z0-9_.+:/@-]+)*$")
_SYNTHETICS_LOCATION = re.compile(r"^aws:[a-z]{2}(-[a-z]+)+-\d$")
_GLOBAL_VARIABLE = re.compile(r"^[A-Z][A-Z0-9_]{0,79}$")


@dataclass(frozen=True)
class MonitoringConfig:
    """Datadog (runbook phase 6): monitors, synthetic tests, the dashboard, the SLO and the
    backend's agent. The API and application keys are the provider's (``datadog:apiKey``,
    ``datadog:appKey``), never settings here."""

    enabled: bool = False
    notify: str = ""  # e.g. "@slack-swipesavvy-alerts @pagerduty-swipesavvy"; required in production
    # One per AWS account in Datadog: on only in the stack that owns it (docs/operations.md "Monitoring").
    aws_integration: bool = False
    synthetics: bool = True  # unset: when the backend and frontend are deployed
    synthetics_locations: tuple[str, ...] = ("aws:us-east-1", "aws:eu-central-1")
    # A secure Synthetics global variable holding the API's bearer token (/api/features/all needs it).
    api_token_variable: str | None = None
    slo_target_percent: float = 99.9
    thresholds: Mapping[str, Threshold] = field(default_factory=lambda: {k: r.default for k, r in THRESHOLDS.items()})


def _threshold(s: _Section, name: str, rule: ThresholdRule) -> Threshold:
    """``{warning, critical}``: each within 0..high, the critical level past the warning one."""
    t = _Section(s.path(name), s.get(name, None))
    low_to_high = f"a number from 0 to {rule.high:g}{rule.unit}"
    threshold = Threshold(
        warning=t.number("warning", rule.default.warning, 0, rule.high),
        critical=t.number("critical", rule.default.critical, 0, rule.high),
    )
    t.finish()
    ordered = (
        threshold.warning < threshold.critical if rule.bad_when == "above" else threshold.warning > threshold.critical
    )
    if not ordered:
        relation = "below" if rule.bad_when == "above" else "above"
        raise _fail(
            t.path("warning"),
            threshold.warning,
            f"must be {low_to_high} {relation} critical ({threshold.critical:g}): the warning comes first",
            f"{rule.default.warning:g}",
        )
    return threshold


def parse_monitoring(
    raw: Any, environment: str, backend: BackendConfig | None, frontend: FrontendConfig | None
) -> MonitoringConfig:
    s = _Section("monitoring", raw)
    d = MonitoringConfig()
    enabled = s.boolean("enabled", d.enabled)
    notify = s.text(
        "notify",
        d.notify,
        re.compile(rf"^$|{_NOTIFY_HANDLE.pattern}"),
        "must be Datadog notification handles like @slack-swipesavvy-alerts, separated by spaces",
        "@slack-swipesavvy-alerts",
    )
    if enabled and not notify and environment == "production":
        raise _fail(
            s.path("notify"),
            notify,
            "must name who is paged in production (an alert nobody receives is silence)",
            "@pagerduty-swipesavvy",
        )
    locations = (
        s.strings(
            "syntheticsLocations",
            lambda v: bool(_SYNTHETICS_LOCATION.match(v)),
            "must be a list of Datadog managed locations like aws:us-east-1",
            ["aws:us-east-1"],
        )
        or d.synthetics_locations
    )
    deployed = backend is not None and frontend is not None
    # Unset: on when the site and its API are deployed; set true without them is a mistake.
    synthetics = s.boolean("synthetics", deployed)
    if enabled and synthetics and not deployed:
        raise _fail(
            s.path("synthetics"),
            True,
            "the synthetic tests call the site and its /api: they need the backend and frontend sections",
            "false",
        )
    config = MonitoringConfig(
        enabled=enabled,
        notify=notify,
        aws_integration=s.boolean("awsIntegration", d.aws_integration),
        synthetics=synthetics,
        synthetics_locations=locations,
        api_token_variable=s.text(
            "apiTokenVariable",
            None,
            _GLOBAL_VARIABLE,
            "must be the name of a Datadog Synthetics global variable (uppercase letters, digits, _)",
            "SWIPESAVVY_API_TOKEN",
        ),
        slo_target_percent=s.number("sloTargetPercent", d.slo_target_percent, 90, 99.999),
        thresholds={name: _threshold(s, name, rule) for name, rule in THRESHOLDS.items()},
    )
    s.finish()
    return config
