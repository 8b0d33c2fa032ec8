"""What a stack costs per month, from its plan: ``python -m ops cost``.

Pure logic, no Pulumi: a plan is a list of ``PlannedResource`` (type token, name, inputs,
top-level component). ``PRICERS`` maps a type token to a function that says what the
resource is billed for (``Charge``: what, quantity, unit, price key) from its inputs, the
rest of the plan and the ``swipesavvy:cost`` usage settings; ``FREE`` lists the types that
cost nothing, with why. ``estimate`` looks each charge's price up in a ``PriceTable`` (one
committed JSON file per region, every price with its source and the date it was read): a
charge whose price is not in the table, and a type nobody priced, are lines marked
``no price``, never a zero. ``estimate_for_stack`` is the one call that runs the program
under mocks (as ``rehearse`` does) and prices its plan.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from components.config import CostConfig

PRICES_DIR = Path(__file__).resolve().parent / "prices"
HOURS_PER_MONTH = 730  # AWS's calculator month
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600
DATADOG_CUSTOM_METRICS_PER_HOST = 100  # included with each Infrastructure Pro host
# EC2 detailed monitoring publishes its instance metrics every minute, billed as custom metrics.
EC2_DETAILED_MONITORING_METRICS = 7
NO_PRICE = "no price"
FREE_CHARGE = "free"  # a Charge key: billed at nothing (listed, not looked up)
DEFAULT_USAGE = CostConfig()


class CostError(ValueError):
    """A price table that cannot be used; the message is one line."""


@dataclass(frozen=True)
class PlannedResource:
    type: str
    name: str
    inputs: Mapping[str, Any]
    component: str  # the top-level component it belongs to, or "(stack)"


@dataclass(frozen=True)
class Charge:
    """One thing a resource is billed for: ``quantity`` of ``unit`` at the price ``key``."""

    what: str
    quantity: float
    unit: str
    key: str


@dataclass(frozen=True)
class Price:
    usd: float
    per: str
    source: str
    read: str


@dataclass(frozen=True)
class PriceTable:
    region: str
    prices: Mapping[str, Price]

    def get(self, key: str) -> Price | None:
        return self.prices.get(key)


@dataclass(frozen=True)
class Line:
    component: str
    resource: str  # "type name"
    what: str
    quantity: float
    unit: str
    unit_price: float | None  # None: no price in the table
    monthly: float | None  # None: no price
    status: str  # "priced", "free" or "no price"
    price_key: str = ""
    note: str = ""


@dataclass(frozen=True)
class Estimate:
    stack: str
    region: str
    lines: list[Line]
    subtotals: dict[str, float]
    total: float
    assumptions: dict[str, float]
    no_price: list[str] = field(default_factory=list)  # "resource: what" of each line without a price

    def to_json(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "region": self.region,
            "total": round(self.total, 2),
            "subtotals": {k: round(v, 2) for k, v in self.subtotals.items()},
            "no_price": self.no_price,
            "assumptions": self.assumptions,
            "lines": [asdict(line) for line in self.lines],
        }


# --- the price table ---------------------------------------------------------------------------


def price_table_path(region: str) -> Path:
    return PRICES_DIR / f"{region}.json"


def load_price_table(region: str, path: Path | None = None) -> PriceTable:
    path = path or price_table_path(region)
    if not path.is_file():
        raise CostError(
            f"no price table for region {region} ({path.name} in ops/prices) (fix: python -m ops cost --refresh-prices"
            f" --region {region}, or copy ops/prices/us-east-1.json)"
        )
    return price_table_from_json(json.loads(path.read_text()))


def price_table_from_json(document: Mapping[str, Any]) -> PriceTable:
    prices = {}
    for key, entry in document["prices"].items():
        if entry.get("usd") is None:  # a price known to exist but not found: the line says no price
            continue
        prices[key] = Price(float(entry["usd"]), entry["per"], entry["source"], entry["read"])
    return PriceTable(document["region"], prices)


# --- pricers: what each type is billed for -----------------------------------------------------

Pricer = Callable[[PlannedResource, "Context"], list[Charge]]


@dataclass(frozen=True)
class Context:
    plan: list[PlannedResource]
    usage: CostConfig

    def of_type(self, *types: str) -> list[PlannedResource]:
        return [r for r in self.plan if r.type in types]


def _number(value: Any, default: float = 0) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default


def _share(total: float, resource: PlannedResource, context: Context) -> float:
    """``total`` usage split evenly over the plan's resources of this type."""
    return total / max(1, len(context.of_type(resource.type)))


def price_rds_instance(r: PlannedResource, context: Context) -> list[Charge]:
    i = r.inputs
    copies = 2 if i.get("multiAz") else 1  # Multi-AZ bills the standby's hours and storage too
    deployment = "Multi-AZ (primary and standby)" if copies == 2 else "Single-AZ"
    engine, instance_class = i.get("engine", "postgres"), i.get("instanceClass", "?")
    storage_type = i.get("storageType", "gp2")
    charges = [
        Charge(
            f"{instance_class} {engine} {deployment}",
            copies * HOURS_PER_MONTH,
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
    if i.get("performanceInsightsEnabled"):
        retention = _number(i.get("performanceInsightsRetentionPeriod"), 7)
        key = FREE_CHARGE if retention <= 7 else "rds.performance-insights.long-term"
        charges.append(Charge(f"Performance Insights, {retention:g} days", 1, "instance-months", key))
    if i.get("manageMasterUserPassword"):
        charges.append(Charge("master password secret (RDS-managed)", 1, "secret-months", "secretsmanager.secret"))
    declared = {g.inputs.get("name") for g in context.of_type("aws:cloudwatch/logGroup:LogGroup")}
    for log in i.get("enabledCloudwatchLogsExports") or []:
        if f"/aws/rds/instance/{i.get('identifier')}/{log}" in declared:
            continue  # the program creates this export's log group: priced as that resource
        gb = context.usage.log_gb_per_month
        charges.append(Charge(f"CloudWatch Logs ingestion ({log} log export)", gb, "GB", "logs.ingest.gb"))
        # RDS's log groups keep logs until told otherwise: each month adds this much storage.
        charges.append(
            Charge(f"CloudWatch Logs storage ({log}, one month's)", gb, "GB-months", "logs.storage.gb-month")
        )
    charges.append(Charge("automated backups up to the allocated storage", 1, "instances", FREE_CHARGE))
    return charges


def _launch_template(group: PlannedResource, context: Context) -> PlannedResource | None:
    """The launch template an Auto Scaling group runs: the one in its component (ids are not
    known before a deployment)."""
    templates = [t for t in context.of_type("aws:ec2/launchTemplate:LaunchTemplate") if t.component == group.component]
    return templates[0] if len(templates) == 1 else None


def _instance_charges(count: float, spec: Mapping[str, Any], volumes: Iterable[Mapping[str, Any]]) -> list[Charge]:
    instance_type = spec.get("instanceType", "?")
    charges = [
        Charge(
            f"{instance_type} x {count:g}", count * HOURS_PER_MONTH, "instance-hours", f"ec2.instance:{instance_type}"
        )
    ]
    for volume in volumes:
        kind, size = volume.get("volumeType", "gp2"), _number(volume.get("volumeSize"), 8)
        charges.append(Charge(f"EBS {kind} {size:g} GB x {count:g}", count * size, "GB-months", f"ebs.volume:{kind}"))
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
    return _instance_charges(count, template.inputs, volumes)


def price_ec2_instance(r: PlannedResource, context: Context) -> list[Charge]:
    return _instance_charges(1, r.inputs, [r.inputs.get("rootBlockDevice") or {}])


def instance_hosts(context: Context) -> float:
    """EC2 instances the plan runs (Auto Scaling groups' desired capacity, single instances)."""
    groups = context.of_type("aws:autoscaling/group:Group")
    counted = sum(_number(g.inputs.get("desiredCapacity"), _number(g.inputs.get("minSize"))) for g in groups)
    return counted + len(context.of_type("aws:ec2/instance:Instance"))


def price_nat_gateway(r: PlannedResource, context: Context) -> list[Charge]:
    gb = _share(context.usage.nat_gb_per_month, r, context)
    return [
        Charge("NAT gateway", HOURS_PER_MONTH, "hours", "vpc.nat-gateway.hour"),
        Charge("data processed", gb, "GB", "vpc.nat-gateway.gb"),
    ]


def price_eip(r: PlannedResource, context: Context) -> list[Charge]:
    return [Charge("public IPv4 address", HOURS_PER_MONTH, "hours", "vpc.public-ipv4.hour")]


def price_load_balancer(r: PlannedResource, context: Context) -> list[Charge]:
    kind = r.inputs.get("loadBalancerType", "application")
    lcus = context.usage.load_balancer_capacity_units
    charges = [
        Charge(f"{kind} load balancer", HOURS_PER_MONTH, "hours", f"elb.{kind}.hour"),
        Charge(f"capacity units, {lcus:g} average", lcus * HOURS_PER_MONTH, "LCU-hours", f"elb.{kind}.lcu-hour"),
    ]
    if not r.inputs.get("internal"):  # an internet-facing one holds a public address per zone
        zones = len(r.inputs.get("subnets") or r.inputs.get("subnetMappings") or [])
        charges.append(
            Charge(f"public IPv4 addresses x {zones}", zones * HOURS_PER_MONTH, "address-hours", "vpc.public-ipv4.hour")
        )
    return charges


def price_vpc_endpoint(r: PlannedResource, context: Context) -> list[Charge]:
    if r.inputs.get("vpcEndpointType", "Gateway") != "Interface":
        return [Charge("gateway endpoint", 1, "endpoints", FREE_CHARGE)]
    zones = len(r.inputs.get("subnetIds") or [])
    interface = [e for e in context.of_type(r.type) if e.inputs.get("vpcEndpointType") == "Interface"]
    gb = context.usage.endpoint_gb_per_month / max(1, len(interface))
    return [
        Charge(
            f"interface endpoint x {zones} zones",
            zones * HOURS_PER_MONTH,
            "endpoint-hours",
            "vpc.interface-endpoint.hour",
        ),
        Charge("data processed", gb, "GB", "vpc.interface-endpoint.gb"),
    ]


def price_secret(r: PlannedResource, context: Context) -> list[Charge]:
    calls = context.usage.secret_api_calls_per_month
    return [
        Charge("secret", 1, "secret-months", "secretsmanager.secret"),
        Charge("API calls", calls / 10_000, "10k calls", "secretsmanager.api-calls-10k"),
    ]


def price_log_group(r: PlannedResource, context: Context) -> list[Charge]:
    gb = context.usage.log_gb_per_month
    retention = _number(r.inputs.get("retentionInDays"), 0)
    stored = gb * (retention / 30 if retention else 1)  # kept for ever: one month's worth added each month
    return [
        Charge("ingestion", gb, "GB", "logs.ingest.gb"),
        Charge(
            f"storage, {retention:g} days kept" if retention else "storage, one month's",
            stored,
            "GB-months",
            "logs.storage.gb-month",
        ),
    ]


def price_log_delivery(r: PlannedResource, context: Context) -> list[Charge]:
    return [Charge("vended logs delivered", context.usage.access_log_gb_per_month, "GB", "logs.vended-delivery.gb")]


def price_bucket(r: PlannedResource, context: Context) -> list[Charge]:
    u = context.usage
    return [
        Charge("standard storage", u.s3_gb_per_bucket, "GB-months", "s3.standard.gb-month"),
        Charge("PUT/COPY/POST/LIST requests", u.s3_put_requests_per_bucket / 1000, "1k requests", "s3.put-requests-1k"),
        Charge("GET requests", u.s3_get_requests_per_bucket / 1000, "1k requests", "s3.get-requests-1k"),
    ]


def price_distribution(r: PlannedResource, context: Context) -> list[Charge]:
    u = context.usage
    return [
        Charge("data out to viewers", u.cdn_gb_per_month, "GB", "cloudfront.data-out.gb"),
        Charge("HTTPS requests", u.cdn_requests_per_month / 10_000, "10k requests", "cloudfront.https-requests-10k"),
    ]


def price_cloudfront_function(r: PlannedResource, context: Context) -> list[Charge]:
    # At most every viewer request: the function runs on the default behaviour's.
    invocations = context.usage.cdn_requests_per_month
    return [
        Charge(
            "invocations (at most every request)",
            invocations / 1e6,
            "1M invocations",
            "cloudfront.function-invocations-1m",
        )
    ]


def price_lambda(r: PlannedResource, context: Context) -> list[Charge]:
    u = context.usage
    architecture = (r.inputs.get("architectures") or ["x86_64"])[0]
    memory_gb = _number(r.inputs.get("memorySize"), 128) / 1024
    invocations = u.lambda_invocations_per_month
    charges = [
        Charge("requests", invocations / 1e6, "1M requests", "lambda.requests-1m"),
        Charge(
            f"compute, {memory_gb * 1024:g} MB x {u.lambda_average_seconds:g} s",
            invocations * u.lambda_average_seconds * memory_gb,
            "GB-seconds",
            f"lambda.gb-second:{architecture}",
        ),
    ]
    if (r.inputs.get("tracingConfig") or {}).get("mode") == "Active":
        charges.append(Charge("X-Ray traces (every invocation)", invocations / 1e6, "1M traces", "xray.traces-1m"))
    return charges


def price_web_acl(r: PlannedResource, context: Context) -> list[Charge]:
    rules = len(r.inputs.get("rules") or [])
    return [
        Charge("web ACL", 1, "web ACL-months", "waf.web-acl.month"),
        Charge(f"rules x {rules}", rules, "rule-months", "waf.rule.month"),
        Charge(
            "requests inspected (CloudFront's)",
            context.usage.cdn_requests_per_month / 1e6,
            "1M requests",
            "waf.requests-1m",
        ),
    ]


def price_kms_key(r: PlannedResource, context: Context) -> list[Charge]:
    return [Charge("customer managed key", 1, "key-months", "kms.key.month")]


def price_metric_alarm(r: PlannedResource, context: Context) -> list[Charge]:
    return [Charge("alarm", 1, "alarm-months", "cloudwatch.alarm.month")]


def price_agent_key(r: PlannedResource, context: Context) -> list[Charge]:
    """The agents' key: every EC2 instance of the plan runs the agent with APM."""
    hosts = instance_hosts(context)
    extra_metrics = max(0, context.usage.custom_metrics - DATADOG_CUSTOM_METRICS_PER_HOST * hosts)
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
        ),
    ]


def price_synthetics_test(r: PlannedResource, context: Context) -> list[Charge]:
    options = r.inputs.get("optionsList") or {}
    tick = _number(options.get("tickEvery"), 300)
    locations = len(r.inputs.get("locations") or [])
    runs = SECONDS_PER_MONTH / tick * locations
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

# Types that cost nothing themselves, and why (what they configure is priced where it runs).
FREE = {
    "aws:ec2/vpc:Vpc": "no charge for a VPC",
    "aws:ec2/subnet:Subnet": "no charge",
    "aws:ec2/routeTable:RouteTable": "no charge",
    "aws:ec2/routeTableAssociation:RouteTableAssociation": "no charge",
    "aws:ec2/route:Route": "no charge",
    "aws:ec2/internetGateway:InternetGateway": "no charge (data out is the traffic's)",
    "aws:ec2/securityGroup:SecurityGroup": "no charge",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": "no charge",
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": "no charge",
    "aws:ec2/launchTemplate:LaunchTemplate": "priced with the Auto Scaling group that runs it",
    "aws:iam/role:Role": "no charge",
    "aws:iam/rolePolicy:RolePolicy": "no charge",
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": "no charge",
    "aws:iam/instanceProfile:InstanceProfile": "no charge",
    "aws:iam/policy:Policy": "no charge",
    "aws:rds/subnetGroup:SubnetGroup": "no charge",
    "aws:rds/parameterGroup:ParameterGroup": "no charge",
    "aws:rds/snapshot:Snapshot": "within the backup storage the instance's allocation includes",
    "aws:lb/targetGroup:TargetGroup": "no charge (the load balancer's capacity units cover it)",
    "aws:lb/listener:Listener": "no charge",
    "aws:lb/listenerRule:ListenerRule": "no charge (rule evaluations are in the capacity units)",
    "aws:secretsmanager/secretVersion:SecretVersion": "priced with its secret",
    "aws:s3/bucketObjectv2:BucketObjectv2": "stored in its bucket, priced there",
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": "no charge",
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": "no charge",
    "aws:s3/bucketPolicy:BucketPolicy": "no charge",
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": "no charge",
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": "SSE-S3: no charge",
    "aws:s3/bucketVersioning:BucketVersioning": "no charge (old versions are storage, expired by lifecycle)",
    "aws:cloudfront/originAccessControl:OriginAccessControl": "no charge",
    "aws:cloudfront/responseHeadersPolicy:ResponseHeadersPolicy": "no charge",
    "aws:cloudfront/cachePolicy:CachePolicy": "no charge",
    "aws:cloudfront/vpcOrigin:VpcOrigin": "no additional charge for VPC origins",
    "aws:cloudwatch/logDeliverySource:LogDeliverySource": "priced with the log delivery",
    "aws:cloudwatch/logDeliveryDestination:LogDeliveryDestination": "priced with the log delivery",
    "aws:lambda/permission:Permission": "no charge",
    "aws:acm/certificate:Certificate": "public certificates: no charge",
    "aws:acm/certificateValidation:CertificateValidation": "no charge",
    "aws:route53/record:Record": "alias queries to CloudFront: no charge (the hosted zone is not this stack's)",
    "aws:wafv2/ipSet:IpSet": "no charge (its rule is priced with the web ACL)",
    "aws:wafv2/webAclAssociation:WebAclAssociation": "no charge",
    "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration": "its logs are priced where they are delivered",
    "aws:s3/bucketLogging:BucketLogging": "its logs are priced in their bucket",
    "aws:s3/bucketLoggingV2:BucketLoggingV2": "its logs are priced in their bucket",
    "aws:s3/bucketAclV2:BucketAclV2": "no charge",
    "aws:s3/bucketNotification:BucketNotification": "no charge",
    "aws:ec2/securityGroupRule:SecurityGroupRule": "no charge",
    "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig": "no charge",
    "datadog:index/monitor:Monitor": "included in the plan",
    "datadog:index/dashboard:Dashboard": "included in the plan",
    "datadog:index/serviceLevelObjective:ServiceLevelObjective": "included in the plan",
    "datadog:aws/integrationAccount:IntegrationAccount": "included (its hosts are the agents' hosts)",
    "datadog:aws/integrationExternalId:IntegrationExternalId": "no charge",
    "random:index/randomPassword:RandomPassword": "computed locally",
    "random:index/randomId:RandomId": "computed locally",
    "pulumi-python:dynamic/db:DatabaseSchema": "runs in the operator function, priced there",
    "pulumi-python:dynamic/db:LoginRole": "runs in the operator function, priced there",
    "pulumi-python:dynamic/db:MockDataSeed": "runs in the operator function, priced there",
    "pulumi-python:dynamic/db:FeatureFlagSettings": "runs in the operator function, priced there",
    "pulumi-python:dynamic/cdn:CloudFrontInvalidation": "first 1,000 paths a month: no charge",
    "pulumi-python:dynamic/stack:StackShape": "a record in the state, no cloud object",
    "pulumi-python:dynamic/autoscaling:InstanceRefreshWait": "Auto Scaling API calls from the deploying machine: no charge",
}


# --- the estimate -------------------------------------------------------------------------------


def _line(resource: PlannedResource, charge: Charge, table: PriceTable) -> Line:
    label = f"{resource.type} {resource.name}"
    if charge.key == FREE_CHARGE:
        return Line(resource.component, label, charge.what, charge.quantity, charge.unit, 0.0, 0.0, "free")
    price = table.get(charge.key)
    if price is None:
        return Line(
            resource.component, label, charge.what, charge.quantity, charge.unit, None, None, NO_PRICE, charge.key,
            f"{charge.key} is not in the {table.region} price table",
        )  # fmt: skip
    monthly = charge.quantity * price.usd
    return Line(
        resource.component, label, charge.what, charge.quantity, charge.unit, price.usd, monthly, "priced", charge.key
    )


def resource_lines(resource: PlannedResource, context: Context, table: PriceTable) -> list[Line]:
    label = f"{resource.type} {resource.name}"
    pricer = PRICERS.get(resource.type)
    if pricer is not None:
        return [_line(resource, charge, table) for charge in pricer(resource, context)]
    free = FREE.get(resource.type) or (
        "a provider's configuration" if resource.type.startswith("pulumi:providers:") else None
    )
    if free:
        return [Line(resource.component, label, free, 1, "resources", 0.0, 0.0, "free")]
    return [
        Line(
            resource.component, label, "a type the cost table does not know", 1, "resources", None, None, NO_PRICE,
            note=f"add a pricer for {resource.type} to ops/cost.py (or list it as free)",
        )
    ]  # fmt: skip


def estimate(stack: str, plan: list[PlannedResource], table: PriceTable, usage: CostConfig = DEFAULT_USAGE) -> Estimate:
    context = Context(plan, usage)
    lines = [line for resource in plan for line in resource_lines(resource, context, table)]
    subtotals: dict[str, float] = {}
    for line in lines:
        subtotals[line.component] = subtotals.get(line.component, 0.0) + (line.monthly or 0.0)
    missing = [f"{line.resource}: {line.what}" for line in lines if line.status == NO_PRICE]
    assumptions = {_camel(name): value for name, value in asdict(usage).items()}
    return Estimate(stack, table.region, lines, subtotals, sum(subtotals.values()), assumptions, missing)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


# --- rendering ----------------------------------------------------------------------------------


def money(usd: float) -> str:
    return f"${usd:,.2f}"


def _quantity(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 or value == int(value) else f"{value:,.4g}"


def _usd(value: float) -> str:
    """A unit price in full (0.0000133334, not 1.33e-05)."""
    return "$" + (f"{value:.10f}".rstrip("0").rstrip(".") or "0")


def render_text(estimate: Estimate) -> str:
    """Per component: one line per charge (resource, what, quantity x unit price, $/month), the
    number of free resources and the subtotal; then the total, what has no price, and the
    assumptions."""
    out = [f"stack {estimate.stack} ({estimate.region}), monthly estimate from the plan:"]
    for component, subtotal in estimate.subtotals.items():
        lines = [line for line in estimate.lines if line.component == component]
        out.append(component)
        for line in lines:
            if line.status == "free":
                continue
            name = line.resource.split(" ", 1)[1]
            if line.status == NO_PRICE:
                amount, cost = f"{_quantity(line.quantity)} {line.unit}", NO_PRICE
            else:
                amount = f"{_quantity(line.quantity)} {line.unit} x {_usd(line.unit_price)}"
                cost = money(line.monthly)
            out.append(f"  {name:<38} {line.what:<58} {amount:>34} {cost:>10}")
        free = {line.resource for line in lines if line.status == "free" and line.unit == "resources"}
        out.append(f"  {'':<38} {f'{len(free)} free resources':<58} {'subtotal':>34} {money(subtotal):>10}")
    out.append(f"total {money(estimate.total)}/month")
    if estimate.no_price:
        out.append(f"not in the total ({NO_PRICE}): " + "; ".join(estimate.no_price))
    out.append(
        "assumptions (swipesavvy:cost): " + ", ".join(f"{k} {_quantity(v)}" for k, v in estimate.assumptions.items())
    )
    return "\n".join(out)


def comment_line(head: Mapping[str, Any], base: Mapping[str, Any] | None) -> str:
    """``staging: $212.40/month (+$16.20)`` from two ``--json`` estimates (``base``: main's, or
    None when main has none); lines without a price are counted, never silently zero."""
    total = float(head["total"])
    if base is None:
        change = "no estimate for main"
    else:
        difference = round(total - float(base["total"]), 2)
        change = "no change" if difference == 0 else f"{'+' if difference > 0 else '-'}{money(abs(difference))}"
    text = f"{head['stack']}: {money(total)}/month ({change})"
    if head.get("no_price"):
        text += f", {len(head['no_price'])} charges without a price"
    return text


COST_MARKER = "<!-- swipesavvy-cost -->"


def comment_with_cost(body: str, line: str) -> str:
    """A pull-request comment (the stack's preview) with its cost section set to ``line``:
    a section added by an earlier run is replaced, so a re-run never stacks them."""
    kept = body.split(COST_MARKER, 1)[0].rstrip()
    section = f"{COST_MARKER}\n**Monthly cost** (`python -m ops cost`, difference from main): {line}\n"
    return f"{kept}\n\n{section}" if kept else section


# --- the plan of a stack (runs the program under mocks) -----------------------------------------


def plan_from_run(run: Any) -> list[PlannedResource]:
    """A recorded program run (``ops.mock_program.ProgramRun``) as a plan: custom resources,
    secrets unwrapped, each under its top-level component."""
    from pulumi.runtime import rpc

    from ops.plan import STACK_GROUP, group_of

    def plain(value: Any) -> Any:
        if rpc.is_rpc_secret(value):
            return plain(rpc.unwrap_rpc_secret(value))
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value

    plan = []
    for resource in run.resources:
        if not resource.custom:
            continue
        group = group_of((resource.typ, resource.name), run.parent_keys)
        component = "(stack)" if group == STACK_GROUP else group[1]
        plan.append(PlannedResource(resource.typ, resource.name, plain(dict(resource.inputs)), component))
    return plan


def estimate_for_stack(stack: str, run: Any = None, table: PriceTable | None = None) -> Estimate:
    """The monthly estimate of ``Pulumi.<stack>.yaml``: its program under mocks (or the given
    run of it), priced with its region's table and its ``swipesavvy:cost`` settings."""
    from components.config import parse_cost
    from ops.mock_program import run_program, stack_config

    config = stack_config(stack)
    usage = parse_cost(config.get("swipesavvy:cost"))  # refused in one line before the program runs
    region = config.get("aws:region", "us-east-1")
    table = table or load_price_table(region)
    run = run or run_program(config, stack=stack)
    return estimate(stack, plan_from_run(run), table, usage)
