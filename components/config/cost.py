"""``swipesavvy:cost``: the usage ``python -m ops cost`` prices (no effect on resources)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from components.config.section import MAX_EXACT_INTEGER, _Section


@dataclass(frozen=True)
class CostConfig:
    """Usage a plan cannot know, for ``python -m ops cost`` (monthly, per the resource named).
    Nothing here changes what is deployed; the defaults are a quiet staging stack's."""

    nat_gb_per_month: float = 50  # through all NAT gateways: packages, releases, AWS APIs, Datadog
    cdn_gb_per_month: float = 20  # CloudFront to viewers
    cdn_requests_per_month: int = 2_000_000  # CloudFront HTTPS requests (site and /api)
    load_balancer_capacity_units: float = 1  # average LCUs per hour, per load balancer
    endpoint_gb_per_month: float = 1  # through all interface endpoints
    log_gb_per_month: float = 1  # CloudWatch Logs ingested per log group (RDS's exported PostgreSQL log too)
    upgrade_log_gb_per_month: float = 0  # RDS's upgrade log: written only while an engine upgrade runs
    # Enhanced Monitoring's document per sample (OS metrics and the process list): an assumption;
    # CloudWatch's IncomingBytes of the RDSOSMetrics log group measures it.
    enhanced_monitoring_kb_per_sample: float = 10
    access_log_gb_per_month: float = 1  # vended logs delivered (CloudFront access logs)
    s3_gb_per_bucket: float = 1
    s3_put_requests_per_bucket: int = 10_000
    s3_get_requests_per_bucket: int = 100_000
    secret_api_calls_per_month: int = 10_000  # per secret
    lambda_invocations_per_month: int = 1_000  # per function
    lambda_average_seconds: float = 5
    custom_metrics: int = 50  # Datadog custom metrics (timeseries) the stack sends


COST_NUMBERS = {  # key: (field, largest accepted value)
    "natGbPerMonth": ("nat_gb_per_month", 1e7),
    "cdnGbPerMonth": ("cdn_gb_per_month", 1e7),
    "loadBalancerCapacityUnits": ("load_balancer_capacity_units", 1e5),
    "endpointGbPerMonth": ("endpoint_gb_per_month", 1e7),
    "logGbPerMonth": ("log_gb_per_month", 1e7),
    "upgradeLogGbPerMonth": ("upgrade_log_gb_per_month", 1e7),
    "enhancedMonitoringKbPerSample": ("enhanced_monitoring_kb_per_sample", 1e5),
    "accessLogGbPerMonth": ("access_log_gb_per_month", 1e7),
    "s3GbPerBucket": ("s3_gb_per_bucket", 1e7),
    "lambdaAverageSeconds": ("lambda_average_seconds", 900),  # a function's longest timeout
}
COST_INTEGERS = {
    "cdnRequestsPerMonth": "cdn_requests_per_month",
    "s3PutRequestsPerBucket": "s3_put_requests_per_bucket",
    "s3GetRequestsPerBucket": "s3_get_requests_per_bucket",
    "secretApiCallsPerMonth": "secret_api_calls_per_month",
    "lambdaInvocationsPerMonth": "lambda_invocations_per_month",
    "customMetrics": "custom_metrics",
}


def parse_cost(raw: Any) -> CostConfig:
    s = _Section("cost", raw)
    d = CostConfig()
    numbers = {f: s.number(key, getattr(d, f), 0, high) for key, (f, high) in COST_NUMBERS.items()}
    integers = {f: s.integer(key, getattr(d, f), 0, MAX_EXACT_INTEGER) for key, f in COST_INTEGERS.items()}
    s.finish()
    return CostConfig(**numbers, **integers)
