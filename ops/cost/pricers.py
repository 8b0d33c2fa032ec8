"""What each planned resource is billed for, for ``python -m ops cost`` (``ops/cost/estimate.py``).

``PRICERS`` maps a Pulumi type token to a function that reads the resource's inputs, the rest
of the plan and the usage (``swipesavvy:cost``, and per resource the stack's usage file) and
returns its ``Charge`` list: what, quantity, unit and price key (``ops/cost/free.py`` lists
the types that cost nothing, with why). Two kinds of lines stand beside the total, never in it:
a burstable class's bound at 100% CPU (``RISK``) and an always-free allowance (``ALLOWANCE``).
Pure logic, no Pulumi.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from components.config import CostConfig
from ops.cost.price_tables import HOURS_PER_MONTH

DATADOG_CUSTOM_METRICS_PER_HOST = 100  # included with each Infrastructure Pro host
# EC2 detailed monitoring publishes its instance metrics every minute, billed as custom metrics.
EC2_DETAILED_MONITORING_METRICS = 7
FREE_CHARGE = "free"  # a Charge key: billed at nothing (listed, not looked up)
# Lines beside the total, never in it: a bound on what may be billed, an allowance that may apply.
RISK, ALLOWANCE = "risk", "free tier"
LOG_KEPT_FOREVER_MONTHS = 12  # a log group that never expires is priced as it stands after a year
# RDS keeps Enhanced Monitoring's OS metrics in the account's RDSOSMetrics log group for 30 days
# by default (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_Monitoring.OS.html,
# "Retention of Enhanced Monitoring metrics": the heading is in the stored copy, its text is not;
# verify there).
ENHANCED_MONITORING_RETENTION_DAYS = 30
# CloudFront's always-free tier, per account and month (https://aws.amazon.com/cloudfront/pricing/,
# "Included in Always Free Tier"): 1 TB out, 10,000,000 requests, 2,000,000 function invocations.
CLOUDFRONT_FREE_GB, CLOUDFRONT_FREE_REQUESTS, CLOUDFRONT_FREE_INVOCATIONS = 1024, 10_000_000, 2_000_000
# Burstable classes: (vCPUs, baseline CPU per vCPU). T4g instances launch in unlimited mode
# unless told otherwise (EC2 RunInstances CreditSpecification: "Default: ... unlimited
# (T3/T3a/T4g instances)"), RDS db.t4g always run unlimited. Sizes and baselines as AWS's T4g
# page lists them (https://aws.amazon.com/ec2/instance-types/t4/): medium 20% and large 30% read
# through a third party (gist.github.com/thom-vend/c710e4fb173b4bea91bc12204c25ee86), the rest
# not found in the stored copies: verify there.
T4G_BURSTABLE = {
    "nano": (2, 0.05),
    "micro": (2, 0.10),
    "small": (2, 0.20),
    "medium": (2, 0.20),
    "large": (2, 0.30),
    "xlarge": (4, 0.40),
    "2xlarge": (8, 0.40),
}


@dataclass(frozen=True)
class PlannedResource:
    type: str
    name: str
    inputs: Mapping[str, Any]
    component: str  # the top-level component it belongs to, or "(stack)"


@dataclass(frozen=True)
class Charge:
    """One thing a resource is billed for: ``quantity`` of ``unit`` at the price ``key``;
    ``usage``: the usage settings (CostConfig fields) the quantity comes from, none when the
    plan alone says; ``status``: RISK or ALLOWANCE for a line beside the total."""

    what: str
    quantity: float
    unit: str
    key: str
    usage: tuple[str, ...] = ()
    status: str = "priced"


@dataclass(frozen=True)
class Context:
    plan: list[PlannedResource]
    usage: CostConfig
    hours: float = HOURS_PER_MONTH  # the price table's month
    overrides: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # resource name -> field -> value

    def of_type(self, *types: str) -> list[PlannedResource]:
        return [r for r in self.plan if r.type in types]

    def usage_of(self, resource: PlannedResource) -> CostConfig:
        """The usage of one resource: the stack's, with the usage file's values for it."""
        return dataclasses.replace(self.usage, **self.overrides.get(resource.name, {}))

    def share(self, name: str, resource: PlannedResource, among: list[PlannedResource] | None = None) -> float:
        """Usage setting ``name`` for ``resource``: its own value from the usage file, else the
        stack's total split evenly over ``among`` (default: the plan's resources of its type)
        that have no value of their own."""
        own = self.overrides.get(resource.name, {})
        if name in own:
            return own[name]
        among = self.of_type(resource.type) if among is None else among
        sharing = [r for r in among if name not in self.overrides.get(r.name, {})]
        return getattr(self.usage, name) / max(1, len(sharing))


Pricer = Callable[[PlannedResource, Context], list[Charge]]


def _number(value: Any, default: float = 0) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default


def _declared_log_groups(context: Context) -> set[str]:
    return {str(g.inputs.get("name")) for g in context.of_type("aws:cloudwatch/logGroup:LogGroup")}


def log_volume(usage: CostConfig, log_group: str) -> tuple[float, str]:
    """GB a month an RDS log export (or any other log group) takes in, and the setting it comes from:
    the upgrade log is written only while an engine upgrade runs."""
    if log_group.endswith("/upgrade"):
        return usage.upgrade_log_gb_per_month, "upgrade_log_gb_per_month"
    return usage.log_gb_per_month, "log_gb_per_month"


def _log_charges(gb: float, setting: str, retention_days: float, label: str = "") -> list[Charge]:
    """Ingestion, and storage at its steady state: ``retention_days`` of logs, or, kept for
    ever, what a year has piled up (it grows every month). ``label``: whose logs, when the
    resource is not the log group itself."""
    if retention_days:
        stored, how = gb * retention_days / 30, f"{retention_days:g} days kept"
    else:
        stored, how = gb * LOG_KEPT_FOREVER_MONTHS, f"never expires: {LOG_KEPT_FOREVER_MONTHS} months' worth"
    ingestion, storage = (
        (f"logs ingestion ({label})", f"logs storage ({label}, {how})") if label else ("ingestion", f"storage, {how}")
    )
    return [
        Charge(ingestion, gb, "GB", "logs.ingest.gb", (setting,)),
        Charge(storage, stored, "GB-months", "logs.storage.gb-month", (setting,)),
    ]


def _burst_risk(count: float, size: str, hours: float, key: str) -> list[Charge]:
    vcpus, baseline = T4G_BURSTABLE.get(size, (0, 1.0))
    if not vcpus:
        return []
    surplus = count * vcpus * (1 - baseline) * hours
    what = f"unlimited CPU credits at 100% CPU ({vcpus} vCPUs, {baseline:.0%} baseline)"
    return [Charge(what, surplus, "vCPU-hours", key, status=RISK)]


def price_rds_instance(r: PlannedResource, context: Context) -> list[Charge]:
    i, usage = r.inputs, context.usage_of(r)
    copies = 2 if i.get("multiAz") else 1  # Multi-AZ bills the standby's hours and storage too
    deployment = "Multi-AZ (primary and standby)" if copies == 2 else "Single-AZ"
    engine, instance_class = i.get("engine", "postgres"), i.get("instanceClass", "?")
    storage_type = i.get("storageType", "gp2")
    charges = [
        Charge(
            f"{instance_class} {engine} {deployment}",
            copies * context.hours,
            "instance-hours",
            f"rds.instance:{engine}:{instance_class}",
        ),
        Charge(
            f"{storage_type} storage, {_number(i.get('allocatedStorage')):g} GB x {copies}",
            copies * _number(i.get("allocatedStorage")),
            "GB-months",
            f"rds.storage:{storage_type}",
        ),
    ]
    family, _, size = str(instance_class).removeprefix("db.").partition(".")
    if family == "t4g":
        charges += _burst_risk(copies, size, context.hours, f"rds.cpu-credits:{engine}:db.t4g")
    if i.get("performanceInsightsEnabled"):
        retention = _number(i.get("performanceInsightsRetentionPeriod"), 7)
        key = FREE_CHARGE if retention <= 7 else "rds.performance-insights.long-term"
        charges.append(Charge(f"Performance Insights, {retention:g} days", 1, "instance-months", key))
    if i.get("manageMasterUserPassword"):
        charges.append(Charge("master password secret (RDS-managed)", 1, "secret-months", "secretsmanager.secret"))
    declared = _declared_log_groups(context)
    for log in i.get("enabledCloudwatchLogsExports") or []:
        group = f"/aws/rds/instance/{i.get('identifier')}/{log}"
        if group in declared:  # the stack creates it, with its retention: priced there
            continue
        gb, setting = log_volume(usage, group)
        charges += _log_charges(gb, setting, 0, f"{log} export")  # RDS creates it never expiring
    interval = _number(i.get("monitoringInterval"))
    if interval:  # Enhanced Monitoring: one document of OS metrics per interval, into RDSOSMetrics
        samples = copies * context.hours * 3600 / interval
        gb = samples * usage.enhanced_monitoring_kb_per_sample / 1024**2
        label = f"Enhanced Monitoring, {interval:g} s"
        charges += _log_charges(gb, "enhanced_monitoring_kb_per_sample", ENHANCED_MONITORING_RETENTION_DAYS, label)
    charges.append(Charge("automated backups up to the allocated storage", 1, "instances", FREE_CHARGE))
    return charges


def _launch_template(group: PlannedResource, context: Context) -> PlannedResource | None:
    """The launch template an Auto Scaling group runs: the one in its component (ids are not
    known before a deployment)."""
    templates = [t for t in context.of_type("aws:ec2/launchTemplate:LaunchTemplate") if t.component == group.component]
    return templates[0] if len(templates) == 1 else None


def _instance_charges(
    count: float, spec: Mapping[str, Any], volumes: Iterable[Mapping[str, Any]], hours: float
) -> list[Charge]:
    instance_type = spec.get("instanceType", "?")
    charges = [Charge(f"{instance_type} x {count:g}", count * hours, "instance-hours", f"ec2.instance:{instance_type}")]
    family, _, size = str(instance_type).partition(".")
    if family == "t4g" and (spec.get("creditSpecification") or {}).get("cpuCredits") != "standard":
        charges += _burst_risk(count, size, hours, "ec2.cpu-credits:t4g")
    for volume in volumes:
        kind, size_gb = volume.get("volumeType", "gp2"), _number(volume.get("volumeSize"), 8)
        charges.append(
            Charge(f"EBS {kind} {size_gb:g} GB x {count:g}", count * size_gb, "GB-months", f"ebs.volume:{kind}")
        )
    if (spec.get("monitoring") or {}).get("enabled"):
        metrics = count * EC2_DETAILED_MONITORING_METRICS
        charges.append(Charge("detailed monitoring (1-minute metrics)", metrics, "metrics", "cloudwatch.metric.month"))
    return charges


def price_autoscaling_group(r: PlannedResource, context: Context) -> list[Charge]:
    count = _number(r.inputs.get("desiredCapacity"), _number(r.inputs.get("minSize")))
    template = _launch_template(r, context)
    if template is None:
        return [Charge(f"{count:g} instances of an unidentified launch template", count, "instances", "ec2.instance:?")]
    volumes = [m.get("ebs") or {} for m in template.inputs.get("blockDeviceMappings") or []]
    return _instance_charges(count, template.inputs, volumes, context.hours)


def price_ec2_instance(r: PlannedResource, context: Context) -> list[Charge]:
    return _instance_charges(1, r.inputs, [r.inputs.get("rootBlockDevice") or {}], context.hours)


def instance_hosts(context: Context) -> float:
    """EC2 instances the plan runs (Auto Scaling groups' desired capacity, single instances)."""
    groups = context.of_type("aws:autoscaling/group:Group")
    counted = sum(_number(g.inputs.get("desiredCapacity"), _number(g.inputs.get("minSize"))) for g in groups)
    return counted + len(context.of_type("aws:ec2/instance:Instance"))


def price_nat_gateway(r: PlannedResource, context: Context) -> list[Charge]:
    gb = context.share("nat_gb_per_month", r)
    return [
        Charge("NAT gateway", context.hours, "hours", "vpc.nat-gateway.hour"),
        Charge("data processed", gb, "GB", "vpc.nat-gateway.gb", ("nat_gb_per_month",)),
    ]


def price_eip(r: PlannedResource, context: Context) -> list[Charge]:
    return [Charge("public IPv4 address", context.hours, "hours", "vpc.public-ipv4.hour")]


def price_load_balancer(r: PlannedResource, context: Context) -> list[Charge]:
    kind = r.inputs.get("loadBalancerType", "application")
    lcus = context.usage_of(r).load_balancer_capacity_units
    hours = context.hours
    charges = [
        Charge(f"{kind} load balancer", hours, "hours", f"elb.{kind}.hour"),
        Charge(
            f"capacity units, {lcus:g} average", lcus * hours, "LCU-hours", f"elb.{kind}.lcu-hour",
            ("load_balancer_capacity_units",),
        ),
    ]  # fmt: skip
    if not r.inputs.get("internal"):  # an internet-facing one holds a public address per zone
        zones = len(r.inputs.get("subnets") or r.inputs.get("subnetMappings") or [])
        charges.append(
            Charge(f"public IPv4 addresses x {zones}", zones * hours, "address-hours", "vpc.public-ipv4.hour")
        )
    return charges


def price_vpc_endpoint(r: PlannedResource, context: Context) -> list[Charge]:
    if r.inputs.get("vpcEndpointType", "Gateway") != "Interface":
        return [Charge("gateway endpoint", 1, "endpoints", FREE_CHARGE)]
    zones = len(r.inputs.get("subnetIds") or [])
    interface = [e for e in context.of_type(r.type) if e.inputs.get("vpcEndpointType") == "Interface"]
    gb = context.share("endpoint_gb_per_month", r, interface)
    return [
        Charge(
            f"interface endpoint x {zones} zones",
            zones * context.hours,
            "endpoint-hours",
            "vpc.interface-endpoint.hour",
        ),
        Charge("data processed", gb, "GB", "vpc.interface-endpoint.gb", ("endpoint_gb_per_month",)),
    ]


def price_secret(r: PlannedResource, context: Context) -> list[Charge]:
    calls = context.usage_of(r).secret_api_calls_per_month
    return [
        Charge("secret", 1, "secret-months", "secretsmanager.secret"),
        Charge(
            "API calls", calls / 10_000, "10k calls", "secretsmanager.api-calls-10k", ("secret_api_calls_per_month",)
        ),
    ]


def price_log_group(r: PlannedResource, context: Context) -> list[Charge]:
    gb, setting = log_volume(context.usage_of(r), str(r.inputs.get("name") or ""))
    return _log_charges(gb, setting, _number(r.inputs.get("retentionInDays"), 0))


def price_log_delivery(r: PlannedResource, context: Context) -> list[Charge]:
    gb = context.usage_of(r).access_log_gb_per_month
    return [Charge("vended logs delivered", gb, "GB", "logs.vended-delivery.gb", ("access_log_gb_per_month",))]


def price_bucket(r: PlannedResource, context: Context) -> list[Charge]:
    u = context.usage_of(r)
    return [
        Charge("standard storage", u.s3_gb_per_bucket, "GB-months", "s3.standard.gb-month", ("s3_gb_per_bucket",)),
        Charge(
            "PUT/COPY/POST/LIST requests", u.s3_put_requests_per_bucket / 1000, "1k requests", "s3.put-requests-1k",
            ("s3_put_requests_per_bucket",),
        ),
        Charge(
            "GET requests", u.s3_get_requests_per_bucket / 1000, "1k requests", "s3.get-requests-1k",
            ("s3_get_requests_per_bucket",),
        ),
    ]  # fmt: skip


def _free_tier(what: str, used: float, allowance: float, scale: float, unit: str, key: str, setting: str) -> Charge:
    """The part of an always-free allowance this resource's usage would take, as a credit line."""
    return Charge(
        f"always free per account: {min(used, allowance):,.0f} of {allowance:,.0f} {what}",
        -min(used, allowance) / scale, unit, key, (setting,), ALLOWANCE,
    )  # fmt: skip


def _viewer_requests(r: PlannedResource, context: Context) -> float:
    """Requests a month the distribution answers (the function and WAF see the same ones)."""
    distributions = context.of_type("aws:cloudfront/distribution:Distribution")
    own = context.overrides.get(r.name, {}).get("cdn_requests_per_month")
    if own is not None:
        return own
    if distributions:
        return context.share("cdn_requests_per_month", distributions[0], distributions)
    return context.usage.cdn_requests_per_month


def price_distribution(r: PlannedResource, context: Context) -> list[Charge]:
    gb, requests = context.share("cdn_gb_per_month", r), context.share("cdn_requests_per_month", r)
    return [
        Charge("data out to viewers", gb, "GB", "cloudfront.data-out.gb", ("cdn_gb_per_month",)),
        _free_tier("GB out", gb, CLOUDFRONT_FREE_GB, 1, "GB", "cloudfront.data-out.gb", "cdn_gb_per_month"),
        Charge(
            "HTTPS requests", requests / 10_000, "10k requests", "cloudfront.https-requests-10k",
            ("cdn_requests_per_month",),
        ),
        _free_tier(
            "requests", requests, CLOUDFRONT_FREE_REQUESTS, 10_000, "10k requests", "cloudfront.https-requests-10k",
            "cdn_requests_per_month",
        ),
    ]  # fmt: skip


def price_cloudfront_function(r: PlannedResource, context: Context) -> list[Charge]:
    # At most every viewer request: the function runs on the default behaviour's.
    invocations = _viewer_requests(r, context)
    return [
        Charge(
            "invocations (at most every request)", invocations / 1e6, "1M invocations",
            "cloudfront.function-invocations-1m", ("cdn_requests_per_month",),
        ),
        _free_tier(
            "invocations", invocations, CLOUDFRONT_FREE_INVOCATIONS, 1e6, "1M invocations",
            "cloudfront.function-invocations-1m", "cdn_requests_per_month",
        ),
    ]  # fmt: skip


def price_lambda(r: PlannedResource, context: Context) -> list[Charge]:
    u = context.usage_of(r)
    architecture = (r.inputs.get("architectures") or ["x86_64"])[0]
    memory_gb = _number(r.inputs.get("memorySize"), 128) / 1024
    invocations = u.lambda_invocations_per_month
    settings = ("lambda_invocations_per_month",)
    charges = [
        Charge("requests", invocations / 1e6, "1M requests", "lambda.requests-1m", settings),
        Charge(
            f"compute, {memory_gb * 1024:g} MB x {u.lambda_average_seconds:g} s",
            invocations * u.lambda_average_seconds * memory_gb,
            "GB-seconds",
            f"lambda.gb-second:{architecture}",
            (*settings, "lambda_average_seconds"),
        ),
    ]
    if (r.inputs.get("tracingConfig") or {}).get("mode") == "Active":
        charges.append(
            Charge("X-Ray traces (every invocation)", invocations / 1e6, "1M traces", "xray.traces-1m", settings)
        )
    return charges


def price_web_acl(r: PlannedResource, context: Context) -> list[Charge]:
    rules = len(r.inputs.get("rules") or [])
    return [
        Charge("web ACL", 1, "web ACL-months", "waf.web-acl.month"),
        Charge(f"rules x {rules}", rules, "rule-months", "waf.rule.month"),
        Charge(
            "requests inspected (CloudFront's)", _viewer_requests(r, context) / 1e6, "1M requests", "waf.requests-1m",
            ("cdn_requests_per_month",),
        ),
    ]  # fmt: skip


def price_kms_key(r: PlannedResource, context: Context) -> list[Charge]:
    return [Charge("customer managed key", 1, "key-months", "kms.key.month")]


def price_metric_alarm(r: PlannedResource, context: Context) -> list[Charge]:
    return [Charge("alarm", 1, "alarm-months", "cloudwatch.alarm.month")]


def price_agent_key(r: PlannedResource, context: Context) -> list[Charge]:
    """The agents' key: every EC2 instance of the plan runs the agent with APM."""
    hosts = instance_hosts(context)
    extra_metrics = max(0, context.usage_of(r).custom_metrics - DATADOG_CUSTOM_METRICS_PER_HOST * hosts)
    return [
        Charge(
            f"infrastructure hosts x {hosts:g} (the backend's instances)",
            hosts,
            "host-months",
            "datadog.infrastructure-host.month",
        ),
        Charge(f"APM hosts x {hosts:g}", hosts, "host-months", "datadog.apm-host.month"),
        Charge(
            f"custom metrics beyond {DATADOG_CUSTOM_METRICS_PER_HOST} per host",
            math.ceil(extra_metrics / 100),
            "100 metrics",
            "datadog.custom-metrics-100",
            ("custom_metrics",),
        ),
    ]


def price_synthetics_test(r: PlannedResource, context: Context) -> list[Charge]:
    options = r.inputs.get("optionsList") or {}
    tick = _number(options.get("tickEvery"), 300)
    locations = len(r.inputs.get("locations") or [])
    runs = context.hours * 3600 / tick * locations
    kind = r.inputs.get("type", "api")
    unit, per = ("10k runs", 10_000) if kind == "api" else ("1k runs", 1_000)
    return [
        Charge(
            f"{kind} test every {tick:g} s from {locations} locations",
            runs / per,
            unit,
            f"datadog.synthetics-{kind}-runs-{unit.split()[0]}",
        )
    ]


PRICERS: dict[str, Pricer] = {
    "aws:rds/instance:Instance": price_rds_instance,
    "aws:autoscaling/group:Group": price_autoscaling_group,
    "aws:ec2/instance:Instance": price_ec2_instance,
    "aws:ec2/natGateway:NatGateway": price_nat_gateway,
    "aws:ec2/eip:Eip": price_eip,
    "aws:lb/loadBalancer:LoadBalancer": price_load_balancer,
    "aws:alb/loadBalancer:LoadBalancer": price_load_balancer,
    "aws:ec2/vpcEndpoint:VpcEndpoint": price_vpc_endpoint,
    "aws:secretsmanager/secret:Secret": price_secret,
    "aws:cloudwatch/logGroup:LogGroup": price_log_group,
    "aws:cloudwatch/logDelivery:LogDelivery": price_log_delivery,
    "aws:s3/bucket:Bucket": price_bucket,
    "aws:s3/bucketV2:BucketV2": price_bucket,
    "aws:cloudfront/distribution:Distribution": price_distribution,
    "aws:cloudfront/function:Function": price_cloudfront_function,
    "aws:lambda/function:Function": price_lambda,
    "aws:wafv2/webAcl:WebAcl": price_web_acl,
    "aws:kms/key:Key": price_kms_key,
    "aws:cloudwatch/metricAlarm:MetricAlarm": price_metric_alarm,
    "datadog:index/apiKey:ApiKey": price_agent_key,
    "datadog:index/syntheticsTest:SyntheticsTest": price_synthetics_test,
}
