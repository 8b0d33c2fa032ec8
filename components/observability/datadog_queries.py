"""Datadog queries: every monitor, widget and SLO query of the program, built here (no Pulumi).

A ``Series`` is one metric as Datadog aggregates it (``avg:aws.rds.cpuutilization{...}``).
The monitors and the dashboard widgets name the same ``Series`` objects, so an alert and the
graph beside it always show the same numbers. There is one small function per kind of query
the project relies on: a metric threshold, a ratio of two series, a service check, an SLO
burn rate, and the SLO's good/total pair.

Units are Datadog's: APM latency is in seconds, ``postgresql.percent_usage_connections`` and
``system.mem.pct_usable`` are fractions (0-1), RDS storage is in bytes (alerted on as free over
total, a fraction, so storage autoscaling growing the volume moves the level with it). The conversions
from the settings' units (percent, ms) live here too, next to the metrics they belong to.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

SERVICE = "swipesavvy-backend"  # the service tag: backend_boot.SERVICE, the unit it names (a test holds them equal)
# dd-trace-js names an Express app's root span "express.request"; 5xx responses are its errors.
APM_SPAN = "trace.express.request"
# The instance name the agent's http_check reports under (components/observability/agent_config.py).
HEALTH_CHECK_INSTANCE = "swipesavvy-backend-health"


@dataclass(frozen=True)
class Series:
    """A metric with its space aggregation (avg, min, max, sum, or a percentile such as p95)."""

    aggregation: str
    metric: str
    as_count: bool = False  # counts: totals per interval, not per-second rates

    def render(self, scope: str, by: tuple[str, ...] = ()) -> str:
        grouped = f" by {{{','.join(by)}}}" if by else ""
        return f"{self.aggregation}:{self.metric}{{{scope}}}{grouped}" + (".as_count()" if self.as_count else "")

    def percentile(self, aggregation: str) -> Series:
        """The same distribution at another percentile (the dashboard's p50 and p99)."""
        return dataclasses.replace(self, aggregation=aggregation)


# --- the series (one definition each) --------------------------------------------------------

# RDS, through Datadog's AWS integration (CloudWatch: arrives 10-20 minutes late).
RDS_CPU = Series("avg", "aws.rds.cpuutilization")  # percent
RDS_FREE_STORAGE = Series("min", "aws.rds.free_storage_space")  # bytes
# The volume's size as it is now (Datadog computes it from the instance's allocated storage).
RDS_TOTAL_STORAGE = Series("min", "aws.rds.total_storage_space")  # bytes
RDS_CONNECTIONS = Series("max", "aws.rds.database_connections")
# The agent's postgres check, as the monitoring login: connections against max_connections.
DB_CONNECTIONS_USED = Series("max", "postgresql.percent_usage_connections")  # fraction
API_HITS = Series("sum", f"{APM_SPAN}.hits", as_count=True)
API_ERRORS = Series("sum", f"{APM_SPAN}.errors", as_count=True)
API_LATENCY_P95 = Series("p95", APM_SPAN)  # seconds
HOST_MEMORY_USABLE = Series("avg", "system.mem.pct_usable")  # fraction
HOST_CPU_USER = Series("avg", "system.cpu.user")  # percent
# The backend's own DogStatsD metrics (the runbook's "feature flag check latency" and "data
# ingestion throughput"), sent to the agent on 127.0.0.1:8125.
FLAG_CHECK_LATENCY_P95 = Series("p95", "swipesavvy.feature_flags.check_latency")  # ms
RECORDS_INGESTED = Series("sum", "swipesavvy.ingestion.records", as_count=True)


# --- one function per kind of query ----------------------------------------------------------


def threshold_text(value: float) -> str:
    """A threshold as monitor queries and ``monitor_thresholds`` (strings) write it: 0.05, 500,
    10737418240 (never an exponent, which a query would not parse)."""
    return f"{value:.10f}".rstrip("0").rstrip(".")


def threshold_query(
    series: Series, scope: str, window: str, comparator: str, threshold: float, by: tuple[str, ...] = ()
) -> str:
    """A metric alert: ``avg(last_15m):avg:m{scope} > 85``. Percentile series are evaluated as
    percentiles over the window; the others with their own aggregation."""
    time_aggregation = "percentile" if series.aggregation.startswith("p") else series.aggregation
    return f"{time_aggregation}(last_{window}):{series.render(scope, by)} {comparator} {threshold_text(threshold)}"


def ratio_query(
    numerator: Series,
    denominator: Series,
    scope: str,
    window: str,
    comparator: str,
    threshold: float,
    time_aggregation: str = "sum",
) -> str:
    """A ratio alert: ``sum(last_10m):errors / hits > 0.05`` (a fraction, not a percentage);
    ``min`` over the window for levels (free storage), ``sum`` for counts."""
    return (
        f"{time_aggregation}(last_{window}):{numerator.render(scope)} / {denominator.render(scope)} "
        f"{comparator} {threshold_text(threshold)}"
    )


def ratio_formula(numerator: str, denominator: str) -> str:
    """The dashboard's version of ``ratio_query``, over named widget queries."""
    return f"{numerator} / {denominator}"


def service_check_query(check: str, tags: tuple[str, ...], by: tuple[str, ...], last: int) -> str:
    """A service check alert: the status of ``check`` over its last ``last`` runs."""
    over = ",".join(f'"{tag}"' for tag in tags)
    grouped = ",".join(f'"{group}"' for group in by)
    return f'"{check}".over({over}).by({grouped}).last({last}).count_by_status()'


def burn_rate_query(slo_id: str, timeframe: str, long_window: str, short_window: str, threshold: float) -> str:
    """An SLO burn-rate alert; ``timeframe`` must be the SLO's own."""
    return (
        f'burn_rate("{slo_id}").over("{timeframe}").long_window("{long_window}")'
        f'.short_window("{short_window}") > {threshold_text(threshold)}'
    )


def good_and_total(bad: Series, total: Series, scope: str) -> tuple[str, str]:
    """A metric SLO's numerator and denominator: good events are all events minus the bad."""
    return f"{total.render(scope)} - {bad.render(scope)}", total.render(scope)


# --- units -----------------------------------------------------------------------------------


def fraction(percent: float) -> float:
    return percent / 100


def seconds(milliseconds: float) -> float:
    return milliseconds / 1000


def scope(*tags: str) -> str:
    return ",".join(tags)
