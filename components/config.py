"""The stack configuration, parsed once into frozen dataclasses and validated.

Pure Python (no Pulumi import): ``__main__.py`` hands over the raw ``swipesavvy:*`` values
and gets a ``StackConfig`` back, or a ``ConfigError`` whose message is one line naming
the key, the bad value, what is allowed and the command that fixes it. Every setting has a
secure default; a stack file only says where it differs.

Layout of ``Pulumi.<stack>.yaml`` (keys in the ``swipesavvy`` namespace):

    swipesavvy:environment: staging          # staging | production
    swipesavvy:network:   {...}              # NetworkConfig
    swipesavvy:database:  {...}              # DatabaseConfig
    swipesavvy:seed:      {...}              # SeedConfig
    swipesavvy:featureFlags: {key: {enabled, rolloutPercentage}}
    swipesavvy:monitoring: {...}             # MonitoringConfig (Datadog)
    swipesavvy:cost:      {...}              # CostConfig (usage for python -m ops cost)

Secrets are never read here; they stay ``pulumi.Output`` secrets end to end.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import json
import os
import re
import tarfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components.refresh_timing import MAX_TIMEOUT_SECONDS, max_warmup_seconds, refresh_timeout
from dbops.flags import SEEDED_FLAGS
from seed.generator import MAX_SCALE, MIN_ANCHOR_DATE, MIN_SCALE

NAMESPACE = "swipesavvy"
MAX_ROTATION = 1_000_000  # credentialRotation, apiTokenRotation: counters, one more per rotation
ENVIRONMENTS = ("staging", "production")
POSTGRES_MAJOR_VERSIONS = ("14", "15", "16", "17")
MIN_STORAGE_GIB = 100
MAX_STORAGE_GIB = 65536
AUTOSCALING_OFF = 0  # the max_allocated_storage that tells pulumi_aws: no storage autoscaling
ACCESS_MODES = ("operator", "direct")
LOG_LEVELS = ("error", "warn", "info", "debug")
PRICE_CLASSES = ("PriceClass_100", "PriceClass_200", "PriceClass_All")
PROJECT_ROOT = Path(__file__).resolve().parent.parent
_GRAVITON = re.compile(r"^[a-z]+\d+g[a-z]*\.")
_EC2_INSTANCE_TYPE = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")
# An existing release is named by its content: the boot script checks the digest.
# An Amazon Linux 2023 release: Amazon's image name for one dated release, kernel and
# architecture (al2023-ami-2023.12.20260930.0-kernel-6.1-arm64); resolved by name among
# Amazon's own images, so it names the same image in every region and never floats.
_AL2023_RELEASE = re.compile(r"^al2023-ami-2023\.\d+\.\d{8}\.\d+-kernel-\d+\.\d+-(?P<arch>arm64|x86_64)\Z")
# An AMI id (8 or 17 hex digits, EC2 API reference: Image), such a release, or "latest".
_AMI = re.compile(rf"^(ami-([0-9a-f]{{8}}|[0-9a-f]{{17}})|latest|{_AL2023_RELEASE.pattern[1:-2]})\Z")
LATEST_AMI = "latest"
AL2023_RELEASE_EXAMPLE = "al2023-ami-2023.12.20260930.0-kernel-6.1-{architecture}"
_S3_URI = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/releases/[0-9a-f]{64}\.tar\.gz$")
_DOMAIN = re.compile(r"^(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_HOSTED_ZONE = re.compile(r"^Z[A-Z0-9]{5,31}$")
# CloudFront policy ids are UUIDs (the managed ones: 658327ea-f89d-4fab-a63d-7e88639e58f6).
_CLOUDFRONT_POLICY_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
MONITORING_INTERVALS = (1, 5, 10, 15, 30, 60)
# Deploy runners may reach 5432 from these without an explicit opt-in: RFC 1918, and the
# RFC 6598 shared space (100.64.0.0/10) that VPCs and VPNs also use; none is routed publicly.
PRIVATE_RANGES = tuple(
    ipaddress.ip_network(cidr) for cidr in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10")
)
MIN_PUBLIC_RUNNER_PREFIX = 16  # an opted-in public range stays one network, never "half the internet"
# Databases every RDS PostgreSQL instance already has or reserves: never the program's own.
RESERVED_DATABASE_NAMES = ("postgres", "rdsadmin", "template0", "template1")
# DatabaseConfig fields production may not loosen (README: production is Multi-AZ, protected
# from deletion, and never has its data destroyed); the production defaults are these.
PRODUCTION_DATABASE = {"multi_az": True, "deletion_protection": True, "allow_data_destruction": False}
# Pulumi hands every number to dynamic providers as a protobuf double: integers beyond
# 2**53 - 1 arrive changed, so no integer setting may exceed it.
MAX_EXACT_INTEGER = 2**53 - 1
# The only keys swipesavvy:featureFlags may set: the provider updates rows, never creates them.
SEEDED_FLAG_KEYS = frozenset(SEEDED_FLAGS)
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_INSTANCE_CLASS = re.compile(r"^db\.[a-z0-9]+\.[a-z0-9]+$")
_AZ = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d[a-z]$")
# A review stack (one per pull request, created and destroyed by CI) is named pr-<number>:
# it keeps nothing on destroy and owns nothing the account shares (README "Review stacks").
REVIEW_STACK = re.compile(r"^pr-[1-9][0-9]*$")
_RESOURCE_ID = {
    "vpc": re.compile(r"^vpc-[0-9a-f]{8,17}$"),
    "subnet": re.compile(r"^subnet-[0-9a-f]{8,17}$"),
    "sg": re.compile(r"^sg-[0-9a-f]{8,17}$"),
}


class ConfigError(ValueError):
    """Invalid stack configuration; the message is a single line for the operator."""


@dataclass(frozen=True)
class NetworkConfig:
    """Where the database and backend live. Either a new VPC, or an existing one by id."""

    vpc_cidr: str = "10.40.0.0/16"
    availability_zones: tuple[str, ...] = ()  # empty: the region's first two
    nat_gateway: bool = False
    existing_vpc_id: str | None = None
    private_subnet_ids: tuple[str, ...] = ()
    public_subnet_ids: tuple[str, ...] = ()
    # The security group of a Secrets Manager endpoint with private DNS already in the existing
    # VPC (a review stack in staging's): its private DNS answers for the whole VPC, so this
    # stack admits its own readers on it.
    existing_secrets_endpoint_security_group_id: str | None = None
    # A NAT gateway in each zone, each zone's private subnet routed through its own.
    nat_gateway_per_zone: bool = False

    @property
    def uses_existing_vpc(self) -> bool:
        return self.existing_vpc_id is not None


@dataclass(frozen=True)
class DatabaseConfig:
    """RDS PostgreSQL and what the program does inside it."""

    name: str = "swipesavvy_staging"
    engine_version: str = "16"
    instance_class: str = "db.t4g.medium"
    allocated_storage_gib: int = MIN_STORAGE_GIB
    max_allocated_storage_gib: int = 200  # storage autoscaling ceiling; AUTOSCALING_OFF disables it
    multi_az: bool = False
    backup_retention_days: int = 7
    deletion_protection: bool = True
    performance_insights_retention_days: int = 7
    monitoring_interval_seconds: int = 60
    slow_query_ms: int = 500
    backend_connection_limit: int = 50
    analytics_connection_limit: int = 10
    monitoring_connection_limit: int = 5  # the Datadog agent's login: one connection per backend instance
    deploy_runner_cidrs: tuple[str, ...] = ()
    # How `pulumi up` reaches the database: "operator" (a function inside the VPC runs the
    # SQL) or "direct" (the machine running pulumi connects: a runner in the VPC, a tunnel).
    # Unset: operator when the stack creates its VPC, direct in an existing one.
    access: str | None = None
    operator_secrets_endpoint: bool = True  # operator: a Secrets Manager interface endpoint
    # operator: the two functions reserve their concurrency (1 and 5), which serialises deploy
    # operations; a function may reserve only down to the account's last 100 unreserved, which a
    # new account's quota (as low as 10) does not have ("Configuring reserved concurrency for a
    # function"), so only production, on an account raised for it, reserves (python -m ops preflight).
    operator_reserved_concurrency: bool = False
    connect_host: str | None = None  # direct: e.g. 127.0.0.1 for an SSM port-forward tunnel
    connect_port: int | None = None
    snapshot_after_schema: bool = False
    snapshot_after_seed: bool = False
    allow_data_destruction: bool = False
    # A new major engineVersion is refused at preview (components/stack_shape.py) unless this
    # says so; then RDS is allowed to upgrade (README "Upgrading PostgreSQL": snapshot first).
    allow_major_version_upgrade: bool = False
    # How many times the logins the instances use (backend, agent) were rotated: one more
    # rotates them without an outage (components/data/credential_slots.py, README "Secrets").
    credential_rotation: int = 0


@dataclass(frozen=True)
class SeedConfig:
    """Mock data (runbook phase 2); off unless the stack turns it on."""

    enabled: bool = False
    scale: float = 1.0
    rng_seed: int = 20251228
    anchor_date: datetime.date = datetime.date(2025, 12, 28)
    dataset_version: int = 1


@dataclass(frozen=True)
class FeatureFlagSetting:
    enabled: bool
    rollout_percentage: int


@dataclass(frozen=True)
class BackendConfig:
    """The API service (runbook phase 3): a release archive run by systemd on EC2 behind an ALB."""

    artifact: str  # a build folder or .tar.gz under the project root, or s3://bucket/releases/<sha256>.tar.gz
    dotfiles: tuple[str, ...] = ()  # dotfiles (or folders) the release may hold: see _shipped_problem
    instance_type: str = "t4g.small"
    instance_count: int = 1
    root_volume_gib: int = 20
    health_check_grace_seconds: int = 600  # cloud-init installs Node.js and the release first
    log_level: str = "info"
    # The instances' image: an AMI id, or "latest" (Amazon Linux 2023's public SSM parameter for
    # the architecture). A different image is a new launch template version: it rolls every
    # instance, so with "latest" the next `pulumi up` after an Amazon Linux release does.
    ami: str = LATEST_AMI
    # How many times the API's bearer tokens were rotated: one more rotates them, the previous
    # ones still accepted until the next rotation (components/data/credential_slots.py).
    api_token_rotation: int = 0

    @property
    def architecture(self) -> str:
        """arm64 for Graviton instance families (t4g, m7g, c7gn ...), x86_64 otherwise."""
        return "arm64" if _GRAVITON.match(self.instance_type) else "x86_64"

    @property
    def ami_release(self) -> str | None:
        """``ami`` when it names an Amazon Linux 2023 release (resolved by name), else None."""
        return self.ami if _AL2023_RELEASE.match(self.ami) else None

    @property
    def artifact_is_s3(self) -> bool:
        return self.artifact.startswith("s3://")


@dataclass(frozen=True)
class FrontendConfig:
    """The reporting dashboard (runbook phase 4): a static build on S3 behind CloudFront."""

    dist_dir: str  # the build folder, relative to the project root; must hold index.html
    dotfiles: tuple[str, ...] = ()  # dotfiles (or folders) the site may serve: see _shipped_problem
    domain: str | None = None  # e.g. staging.swipesavvy.example: ACM certificate + alias records
    hosted_zone_id: str | None = None  # the Route 53 zone of ``domain``
    price_class: str = "PriceClass_100"
    waf: bool = False  # an AWS WAF web ACL on the distribution; on by default, and required, in production
    # Another stack's response-headers policy (review stacks: staging's), instead of one of its
    # own: response-headers policies are an account-wide CloudFront quota.
    existing_response_headers_policy_id: str | None = None


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
    # One per AWS account in Datadog: on only in the stack that owns it (README "Monitoring").
    aws_integration: bool = False
    synthetics: bool = True  # unset: when the backend and frontend are deployed
    synthetics_locations: tuple[str, ...] = ("aws:us-east-1", "aws:eu-central-1")
    # A secure Synthetics global variable holding the API's bearer token (/api/features/all needs it).
    api_token_variable: str | None = None
    slo_target_percent: float = 99.9
    thresholds: Mapping[str, Threshold] = field(default_factory=lambda: {k: r.default for k, r in THRESHOLDS.items()})


@dataclass(frozen=True)
class StackConfig:
    stack: str
    environment: str
    network: NetworkConfig = field(default_factory=NetworkConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    seed: SeedConfig = field(default_factory=SeedConfig)
    feature_flags: Mapping[str, FeatureFlagSetting] = field(default_factory=dict)
    backend: BackendConfig | None = None  # not deployed when the section is absent
    frontend: FrontendConfig | None = None
    monitoring: MonitoringConfig = field(default_factory=MonitoringConfig)
    cost: CostConfig = field(default_factory=lambda: CostConfig())  # defined with its parser below

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @property
    def is_review(self) -> bool:
        """A pull request's stack: destroyed on close, keeping nothing (README "Review stacks")."""
        return bool(REVIEW_STACK.match(self.stack))

    @property
    def tags(self) -> dict[str, str]:
        return {"project": "swipesavvy", "environment": self.environment, "stack": self.stack, "managed-by": "pulumi"}


# --- parsing helpers -------------------------------------------------------------------------


def _fail(key: str, value: Any, allowed: str, example: Any) -> ConfigError:
    shown = json.dumps(value) if not isinstance(value, str) else repr(value)
    fix_key = key
    if isinstance(example, (list, tuple)):  # lists are set one element at a time
        fix_key, example = f"{key}[0]", example[0]
    fix = f"pulumi config set --path '{NAMESPACE}:{fix_key}' {example}"
    return ConfigError(f"{NAMESPACE}:{key} = {shown} is invalid: {allowed} (fix: {fix})")


def _not_known(path: str, what: str, known: Iterable[str]) -> ConfigError:
    """A key that is not there to set: the fix is to remove it (or correct its spelling)."""
    section = path.rsplit(".", 1)[0]
    return ConfigError(
        f"{NAMESPACE}:{path} is not {what}; {section} takes {', '.join(sorted(known))} "
        f"(fix: pulumi config rm --path '{NAMESPACE}:{path}')"
    )


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


class _Section:
    """Reads one config object, tracking which keys were used so typos are reported."""

    def __init__(self, key: str, raw: Any):
        if raw is None:
            raw = {}
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except json.JSONDecodeError:
                raise _fail(key, raw, "must be an object", "'{...}'") from None
        if not isinstance(raw, Mapping):
            raise _fail(key, raw, "must be an object", "'{...}'")
        self.key, self.raw, self.used = key, dict(raw), set()

    def path(self, name: str) -> str:
        return f"{self.key}.{name}"

    def get(self, name: str, default: Any) -> Any:
        self.used.add(name)
        return self.raw.get(name, default)

    def integer(self, name: str, default: int, low: int, high: int, unit: str = "") -> int:
        value = self.get(name, default)
        number = _as_int(value)
        if number is None or not low <= number <= high:
            raise _fail(self.path(name), value, f"must be an integer from {low} to {high}{unit}", default)
        return number

    def optional_integer(self, name: str, low: int, high: int, example: int) -> int | None:
        if self.raw.get(name) is None:
            self.used.add(name)
            return None
        return self.integer(name, example, low, high)

    def number(self, name: str, default: float, low: float, high: float) -> float:
        value = self.get(name, default)
        try:
            number = float(value) if not isinstance(value, bool) else None
        except (TypeError, ValueError):
            number = None
        if number is None or not low <= number <= high:
            raise _fail(self.path(name), value, f"must be a number from {low:g} to {high:g}", default)
        return number

    def boolean(self, name: str, default: bool) -> bool:
        value = self.get(name, default)
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise _fail(self.path(name), value, "must be true or false", str(default).lower())

    def text(
        self,
        name: str,
        default: str | None,
        pattern: re.Pattern | None = None,
        allowed: str = "",  # pragma: no mutate (every caller passes allowed: this default is never used)
        example: str = "",  # pragma: no mutate (every caller passes example: this default is never used)
    ) -> str | None:
        value = self.get(name, default)
        if value is None:
            return None
        if not isinstance(value, str) or (pattern is not None and not pattern.match(value)):
            raise _fail(
                self.path(name),
                value,
                allowed or "must be a string",  # pragma: no mutate (every caller names what is allowed)
                example or default,
            )
        return value

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.get(name, default)
        value = str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value
        if value not in choices:
            raise _fail(self.path(name), value, f"must be one of {', '.join(choices)}", default)
        return value

    def strings(self, name: str, check: Callable[[str], bool], allowed: str, example: list[str]) -> tuple[str, ...]:
        value = self.get(name, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and check(v) for v in value):
            raise _fail(self.path(name), value, allowed, example)
        return tuple(value)

    def finish(self) -> None:
        """Refuse keys nobody read: a typo must not silently fall back to a default."""
        unknown = sorted(set(self.raw) - self.used)
        if unknown:
            raise _not_known(self.path(unknown[0]), "a setting", self.used)


def _as_int(value: Any) -> int | None:
    """An int, or a string of digits (``pulumi config set`` stores strings); anything else,
    floats included even when integral (5432.0), is no integer setting: YAML and the CLI
    give ints for integers, so a float was written as one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    return None


def _is_cidr(value: str) -> bool:
    try:
        ipaddress.ip_network(value, strict=True)  # pragma: no mutate (strict=True is also the default)
    except ValueError:
        return False
    return "/" in value


# --- sections --------------------------------------------------------------------------------


def parse_network(raw: Any, region: str | None = None) -> NetworkConfig:
    s = _Section("network", raw)
    d = NetworkConfig()
    cidr_rule = "must be an IPv4 network in CIDR form with a /16 to /24 prefix"
    vpc_cidr = s.text(
        "vpcCidr",
        d.vpc_cidr,
        allowed=cidr_rule,
        example=d.vpc_cidr,  # pragma: no mutate (the example is the default, which text() falls back to)
    )
    network = ipaddress.ip_network(vpc_cidr) if _is_cidr(vpc_cidr) else None
    if network is None or network.version != 4 or not 16 <= network.prefixlen <= 24:
        raise _fail(s.path("vpcCidr"), vpc_cidr, cidr_rule, d.vpc_cidr)
    zones = s.strings(
        "availabilityZones",
        lambda z: bool(_AZ.match(z)),
        "must be a list of at least two availability zone names",
        ["us-east-1a"],
    )
    for index, zone in enumerate(zones):
        if region and zone[:-1] != region:  # a zone is its region's name plus one letter
            raise _fail(
                s.path(f"availabilityZones[{index}]"),
                zone,
                f"must be a zone of aws:region {region}",
                f"{region}{zone[-1]}",
            )
    if zones and len(set(zones)) < 2:
        raise _fail(
            s.path("availabilityZones"),
            list(zones),
            "must name at least two distinct availability zones",
            ["us-east-1a"],
        )
    existing = s.text("existingVpcId", None, _RESOURCE_ID["vpc"], "must be a VPC id like vpc-0123abcd", "vpc-0123abcd")
    subnet_check = lambda v: bool(_RESOURCE_ID["subnet"].match(v))  # noqa: E731
    private = s.strings(
        "privateSubnetIds", subnet_check, "must be a list of subnet ids like subnet-0123abcd", ["subnet-0123abcd"]
    )
    public = s.strings(
        "publicSubnetIds", subnet_check, "must be a list of subnet ids like subnet-0123abcd", ["subnet-0123abcd"]
    )
    for key, subnets, tier in (("privateSubnetIds", private, "private"), ("publicSubnetIds", public, "public")):
        if existing and len(subnets) < 2:
            raise _fail(
                s.path(key),
                list(subnets),
                f"an existing VPC needs at least two {tier} subnets in different zones",
                ["subnet-0123abcd"],
            )
    if not existing and (private or public):
        raise _fail(
            s.path("existingVpcId"), None, "subnet ids are only used together with an existing VPC id", "vpc-0123abcd"
        )
    nat = s.boolean("natGateway", d.nat_gateway)
    per_zone = s.boolean("natGatewayPerZone", d.nat_gateway_per_zone)
    if per_zone and not nat:
        raise _fail(
            s.path("natGateway"), nat, "natGatewayPerZone needs natGateway (a NAT gateway in each zone)", "true"
        )
    if per_zone and existing:
        raise _fail(
            s.path("natGatewayPerZone"),
            per_zone,
            "an existing VPC's routes are its own: set it only for a new VPC",
            "false",
        )
    endpoint_group = s.text(
        "existingSecretsEndpointSecurityGroupId",
        None,
        _RESOURCE_ID["sg"],
        "must be a security group id like sg-0123abcd",
        "sg-0123abcd",
    )
    if endpoint_group and not existing:
        raise _fail(
            s.path("existingSecretsEndpointSecurityGroupId"),
            endpoint_group,
            "is only used with existingVpcId (an endpoint already in that VPC)",
            "sg-0123abcd",
        )
    s.finish()
    return NetworkConfig(vpc_cidr, zones, nat, existing, private, public, endpoint_group, nat_gateway_per_zone=per_zone)


def _autoscaling_floor(allocated: int) -> int:
    """The lowest storage autoscaling ceiling RDS accepts: at least 10% above the allocation."""
    return -(-allocated * 11 // 10)


def _max_allocated_storage(s: _Section, allocated: int) -> int:
    """``maxAllocatedStorage`` in GiB, or AUTOSCALING_OFF for ``off`` or a value equal to
    allocatedStorage: RDS refuses a ceiling equal to the allocation when creating an instance."""
    floor = _autoscaling_floor(allocated)
    default = max(DatabaseConfig.max_allocated_storage_gib, floor) if floor <= MAX_STORAGE_GIB else "off"
    value = s.get("maxAllocatedStorage", default)
    # PyYAML (YAML 1.1) reads an unquoted off as false; Pulumi's own YAML reader keeps "off".
    number = _as_int(value)
    if value == "off" or value is False or number == allocated:
        return AUTOSCALING_OFF
    if number is None or not floor <= number <= MAX_STORAGE_GIB:
        raise _fail(
            s.path("maxAllocatedStorage"),
            value,
            f"must be off (or {allocated}, the allocatedStorage) or an integer from {floor} to "
            f"{MAX_STORAGE_GIB} GiB (RDS wants the autoscaling ceiling at least 10% above allocatedStorage)",
            default,
        )
    return number


def _runner_cidr_problem(network: ipaddress.IPv4Network | ipaddress.IPv6Network, allow_public: bool) -> str | None:
    """What is wrong with opening 5432 to ``network``, or None."""
    if network.version != 4:
        return "must be an IPv4 CIDR block (the database's ingress rules are IPv4)"
    if any(network.subnet_of(private) for private in PRIVATE_RANGES):
        return None
    if not allow_public:
        return (
            f"must lie within a private range ({', '.join(map(str, PRIVATE_RANGES))}); a public one needs "
            "database.allowPublicDeployRunnerCidrs true"
        )
    if network.prefixlen < MIN_PUBLIC_RUNNER_PREFIX:
        return (
            f"a public range must be /{MIN_PUBLIC_RUNNER_PREFIX} or narrower (the runner's addresses, not the internet)"
        )
    return None


def _deploy_runner_cidrs(s: _Section) -> tuple[str, ...]:
    cidrs = s.strings("deployRunnerCidrs", _is_cidr, "must be a list of CIDR blocks like 10.0.5.0/24", ["10.0.5.0/24"])
    allow_public = s.boolean("allowPublicDeployRunnerCidrs", False)
    for index, cidr in enumerate(cidrs):
        problem = _runner_cidr_problem(ipaddress.ip_network(cidr), allow_public)
        if problem:
            raise _fail(s.path(f"deployRunnerCidrs[{index}]"), cidr, problem, "10.0.5.0/24")
    return cidrs


def _require_production_settings(s: _Section, config: DatabaseConfig) -> None:
    for attribute, required in PRODUCTION_DATABASE.items():
        if getattr(config, attribute) != required:
            shown = str(required).lower()
            raise _fail(s.path(_camel(attribute)), not required, f"must stay {shown} in production", shown)


def parse_database(raw: Any, environment: str) -> DatabaseConfig:
    s = _Section("database", raw)
    d = DatabaseConfig()
    name = s.text(
        "name",
        d.name,
        _IDENTIFIER,
        "must be a lowercase PostgreSQL identifier (a-z, 0-9, _)",
        d.name,  # pragma: no mutate (the example is the default, which text() falls back to)
    )
    if name in RESERVED_DATABASE_NAMES:
        raise _fail(
            s.path("name"),
            name,
            f"must not be a database RDS PostgreSQL keeps for itself ({', '.join(RESERVED_DATABASE_NAMES)})",
            d.name,
        )
    engine_version = s.choice("engineVersion", d.engine_version, POSTGRES_MAJOR_VERSIONS)
    instance_class = s.text(
        "instanceClass",
        d.instance_class,
        _INSTANCE_CLASS,
        "must be an RDS instance class like db.t4g.medium",
        d.instance_class,  # pragma: no mutate (the example is the default, which text() falls back to)
    )
    allocated = s.integer("allocatedStorage", d.allocated_storage_gib, MIN_STORAGE_GIB, MAX_STORAGE_GIB, " GiB")
    max_allocated = _max_allocated_storage(s, allocated)
    retention = s.integer("backupRetentionDays", d.backup_retention_days, 7, 35, " days")
    pi_retention = s.integer("performanceInsightsRetentionDays", d.performance_insights_retention_days, 7, 731, " days")
    if pi_retention not in (7, 731) and pi_retention % 31:
        raise _fail(s.path("performanceInsightsRetentionDays"), pi_retention, "must be 7, 731 or a multiple of 31", 7)
    interval = s.integer("monitoringIntervalSeconds", d.monitoring_interval_seconds, 1, 60, " seconds")
    if interval not in MONITORING_INTERVALS:
        raise _fail(
            s.path("monitoringIntervalSeconds"),
            interval,
            f"must be one of {', '.join(map(str, MONITORING_INTERVALS))} (enhanced monitoring stays on)",
            60,
        )
    runner_cidrs = _deploy_runner_cidrs(s)
    connect_host = s.text(
        "connectHost", None, re.compile(r"^[A-Za-z0-9.\-]+$"), "must be a host name or IP address", "127.0.0.1"
    )
    connect_port = s.optional_integer("connectPort", 1, 65535, 5432)
    access = s.get("access", None)
    if access is not None and access not in ACCESS_MODES:
        raise _fail(s.path("access"), access, f"must be one of {', '.join(ACCESS_MODES)}", "operator")
    config = DatabaseConfig(
        name=name,
        engine_version=engine_version,
        instance_class=instance_class,
        allocated_storage_gib=allocated,
        max_allocated_storage_gib=max_allocated,
        multi_az=s.boolean("multiAz", environment == "production"),
        backup_retention_days=retention,
        deletion_protection=s.boolean("deletionProtection", d.deletion_protection),
        performance_insights_retention_days=pi_retention,
        monitoring_interval_seconds=interval,
        slow_query_ms=s.integer("slowQueryMs", d.slow_query_ms, 0, 3_600_000, " ms"),
        backend_connection_limit=s.integer("backendConnectionLimit", d.backend_connection_limit, 1, 5000),
        analytics_connection_limit=s.integer("analyticsConnectionLimit", d.analytics_connection_limit, 1, 5000),
        monitoring_connection_limit=s.integer("monitoringConnectionLimit", d.monitoring_connection_limit, 1, 100),
        deploy_runner_cidrs=runner_cidrs,
        access=access,
        operator_secrets_endpoint=s.boolean("operatorSecretsEndpoint", d.operator_secrets_endpoint),
        operator_reserved_concurrency=s.boolean("operatorReservedConcurrency", d.operator_reserved_concurrency),
        connect_host=connect_host,
        connect_port=connect_port,
        snapshot_after_schema=s.boolean("snapshotAfterSchema", d.snapshot_after_schema),
        snapshot_after_seed=s.boolean("snapshotAfterSeed", d.snapshot_after_seed),
        allow_data_destruction=s.boolean("allowDataDestruction", d.allow_data_destruction),
        allow_major_version_upgrade=s.boolean("allowMajorVersionUpgrade", d.allow_major_version_upgrade),
        credential_rotation=s.integer("credentialRotation", d.credential_rotation, 0, MAX_ROTATION),
    )
    s.finish()
    if environment == "production":
        _require_production_settings(s, config)
    return config


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


def _project_path(s: _Section, name: str, project_root: Path, allowed: str, example: str) -> str:
    """A required path setting, relative to the project root; it must exist and, symlinks
    followed, stay under the root (checked at preview)."""
    value = s.get(name, None)
    if not isinstance(value, str) or not value or not (project_root / value).exists():
        raise _fail(s.path(name), value, allowed, example)
    if not (project_root / value).resolve().is_relative_to(project_root.resolve()):
        raise _fail(s.path(name), value, f"must be under the project root {project_root} (symlinks followed)", example)
    return value


def _dotfiles(s: _Section) -> tuple[str, ...]:
    """``dotfiles``: relative paths in the folder (a folder admits what is under it)."""

    def relative(path: str) -> bool:
        parts = path.split("/")
        return bool(path) and not path.startswith("/") and all(part not in ("", ".", "..") for part in parts)

    return s.strings("dotfiles", relative, "must be a list of paths relative to the folder, like .well-known", [".env"])


# Installed dependencies (npm ci from a lockfile) carry their packages' own dotfiles
# (.eslintrc, .npmignore): files a registry published, not the project's secrets.
DEPENDENCY_FOLDER = "node_modules"


def _listed(relative: str, dotfiles: tuple[str, ...]) -> bool:
    """Whether a dotfile may ship: listed (or under a listed folder), or inside an installed
    package (``node_modules/<package>/...``; not loose in ``node_modules`` itself)."""
    parts = relative.split("/")
    return DEPENDENCY_FOLDER in parts[:-2] or any(
        relative == listed or relative.startswith(f"{listed}/") for listed in dotfiles
    )


def _shipped_problem(folder: Path, project_root: Path, dotfiles: tuple[str, ...]) -> str | None:
    """What in a release or site build must not ship: a dotfile (``.env``, ``.git``: often a
    secret) not listed in ``dotfiles``, or a symlink leading outside the project. None if nothing."""
    if folder.is_file():  # a .tar.gz release: its member names
        with tarfile.open(folder) as archive:
            names = sorted(name.removeprefix("./") for name in archive.getnames())
        hidden = (
            n for n in names if any(p.startswith(".") for p in n.split("/") if p != ".") and not _listed(n, dotfiles)
        )
        return next((f"{name}, a dotfile" for name in hidden), None)
    root = project_root.resolve()
    for directory, folders, files in os.walk(folder):
        for name in sorted(folders + files):
            path = Path(directory, name)
            relative = path.relative_to(folder).as_posix()
            if path.is_symlink() and not path.resolve().is_relative_to(root):
                return f"{relative}, a symlink to {path.resolve()}, outside the project"
            if name.startswith(".") and not _listed(relative, dotfiles):
                return f"{relative}, a dotfile"
    return None


def _refuse_unshippable(s: _Section, name: str, value: str, project_root: Path, dotfiles: tuple[str, ...]) -> None:
    try:
        problem = _shipped_problem(project_root / value, project_root, dotfiles)
    except (tarfile.TarError, OSError) as error:
        raise _fail(
            s.path(name), value, f"must be a readable .tar.gz archive ({error})", "examples/backend-release"
        ) from None
    if problem is None:
        return
    if problem.endswith("a dotfile"):
        item = problem.removesuffix(", a dotfile")  # its path, commas and all
        why = f"{problem} (often a secret, so never shipped unless listed)"
        fix = f"remove it from {value}, or if it must ship: pulumi config set --path '{NAMESPACE}:{s.key}.dotfiles[0]' {item}"
    else:
        why, fix = problem, f"remove it from {value}, or copy its target in"
    raise ConfigError(f"{NAMESPACE}:{s.path(name)} = {value!r} is invalid: it holds {why} (fix: {fix})")


def _health_check_grace(s: _Section, default: int) -> int:
    """The grace is also the rollout's instance warmup: refused when the refresh it makes could
    not finish within the wait one `pulumi up` has for it (components/refresh_timing.py)."""
    instances = s.integer("instanceCount", BackendConfig.instance_count, 1, 20)
    grace = s.integer("healthCheckGraceSeconds", default, 60, 3600, " s")
    longest = max_warmup_seconds(instances)
    if grace > longest:
        needed = refresh_timeout(instances, grace) // 60
        raise _fail(
            s.path("healthCheckGraceSeconds"),
            grace,
            f"it is the rollout's instance warmup, so a rollout would need up to {needed} min, more than the"
            f" {MAX_TIMEOUT_SECONDS // 60} min one `pulumi up` waits for it: at most {longest} s",
            longest,
        )
    return grace


def parse_backend(raw: Any, project_root: Path, environment: str = "staging") -> BackendConfig | None:
    if raw is None:
        return None
    s = _Section("backend", raw)
    d = BackendConfig(artifact="")  # pragma: no mutate (d supplies defaults only; artifact is required)
    artifact = s.get("artifact", None)
    if not (isinstance(artifact, str) and _S3_URI.match(artifact)):
        artifact = _project_path(
            s,
            "artifact",
            project_root,
            "must be a release (a build folder or a .tar.gz archive) under the project root, or an uploaded"
            " release s3://bucket/releases/<sha256>.tar.gz",
            "examples/backend-release",
        )
        release = project_root / artifact
        if not (release.is_dir() or (release.is_file() and artifact.endswith((".tar.gz", ".tgz")))):
            raise _fail(
                s.path("artifact"), artifact, "must be a build folder or a .tar.gz archive", "examples/backend-release"
            )
    dotfiles = _dotfiles(s)
    if not artifact.startswith("s3://"):
        _refuse_unshippable(s, "artifact", artifact, project_root, dotfiles)
    config = BackendConfig(
        artifact=artifact,
        dotfiles=dotfiles,
        instance_type=s.text(
            "instanceType",
            d.instance_type,
            _EC2_INSTANCE_TYPE,
            "must be an EC2 instance type like t4g.small",
            d.instance_type,  # pragma: no mutate (the example is the default, which text() falls back to)
        ),
        instance_count=s.integer("instanceCount", d.instance_count, 1, 20),
        root_volume_gib=s.integer("rootVolumeGib", d.root_volume_gib, 8, 500, " GiB"),
        health_check_grace_seconds=_health_check_grace(s, d.health_check_grace_seconds),
        log_level=s.choice("logLevel", d.log_level, LOG_LEVELS),
        ami=s.text(
            "ami",
            d.ami,
            _AMI,
            "must be an AMI id (ami- and 8 or 17 hex digits), an Amazon Linux 2023 release"
            " (al2023-ami-2023.<version>-kernel-<kernel>-<arm64|x86_64>) or latest (the newest Amazon Linux 2023)",
            AL2023_RELEASE_EXAMPLE.format(architecture="arm64"),
        ),
        api_token_rotation=s.integer("apiTokenRotation", d.api_token_rotation, 0, MAX_ROTATION),
    )
    s.finish()
    _require_pinned_ami(s, config, environment)
    return config


def _require_pinned_ami(s: _Section, config: BackendConfig, environment: str) -> None:
    """A release of the instances' architecture; in production a pinned image, never latest."""
    example = AL2023_RELEASE_EXAMPLE.format(architecture=config.architecture)
    release = _AL2023_RELEASE.match(config.ami)
    if release and release["arch"] != config.architecture:
        raise _fail(
            s.path("ami"),
            config.ami,
            f"is an {release['arch']} image and backend.instanceType {config.instance_type} runs {config.architecture}",
            example,
        )
    if config.ami == LATEST_AMI and environment == "production":
        raise _fail(
            s.path("ami"),
            config.ami,
            "production pins its image (an AMI id or an Amazon Linux 2023 release name): latest rolls every"
            " instance whenever Amazon publishes a release",
            example,
        )


def parse_frontend(
    raw: Any,
    project_root: Path,
    environment: str = "staging",  # pragma: no mutate (only "production" differs; any other name acts alike)
) -> FrontendConfig | None:
    if raw is None:
        return None
    s = _Section("frontend", raw)
    d = FrontendConfig(dist_dir="")  # pragma: no mutate (d supplies defaults only; distDir is required)
    dist_dir = _project_path(
        s, "distDir", project_root, "must be the site's build folder under the project root", "examples/frontend-dist"
    )
    if not (project_root / dist_dir / "index.html").is_file():
        raise _fail(s.path("distDir"), dist_dir, "must be a build folder holding index.html", "examples/frontend-dist")
    dotfiles = _dotfiles(s)
    _refuse_unshippable(s, "distDir", dist_dir, project_root, dotfiles)
    domain = s.text(
        "domain", None, _DOMAIN, "must be a DNS name like staging.swipesavvy.example", "staging.example.com"
    )
    zone = s.text(
        "hostedZoneId", None, _HOSTED_ZONE, "must be a Route 53 hosted zone id like Z0123456789ABC", "Z0123456789ABC"
    )
    if bool(domain) != bool(zone):
        missing, example = ("hostedZoneId", "Z0123456789ABC") if domain else ("domain", "staging.example.com")
        raise _fail(
            s.path(missing), None, "domain and hostedZoneId are set together (a custom domain needs its zone)", example
        )
    config = FrontendConfig(
        dist_dir=dist_dir,
        dotfiles=dotfiles,
        domain=domain,
        hosted_zone_id=zone,
        price_class=s.choice("priceClass", d.price_class, PRICE_CLASSES),
        waf=s.boolean("waf", environment == "production"),
        existing_response_headers_policy_id=s.text(
            "existingResponseHeadersPolicyId",
            None,
            _CLOUDFRONT_POLICY_ID,
            "must be a CloudFront response-headers policy id (a lowercase UUID, staging's"
            " site_response_headers_policy_id output)",
            "67f7725c-6f97-4210-82d7-5512b31e9d03",
        ),
    )
    if not config.waf and environment == "production":
        raise _fail(
            s.path("waf"), False, "production's distribution always has its web ACL (AWS FSBP CloudFront.6)", "true"
        )
    s.finish()
    return config


def _require_backend_egress(backend: BackendConfig | None, network: NetworkConfig) -> None:
    """The backend's instances fetch packages and the release and call AWS APIs: in a VPC
    this stack creates, only a NAT gateway gives the private subnets that path."""
    if backend is not None and not network.uses_existing_vpc and not network.nat_gateway:
        raise _fail(
            "network.natGateway",
            False,
            "the backend's instances need a route out of the private subnets (packages, the release,"
            " AWS APIs, Datadog)",
            "true",
        )


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


def read_stack_file(path: Path) -> dict[str, Any]:
    """The ``config:`` of a stack settings file ``Pulumi.<stack>.yaml``, as Pulumi reads it;
    a ConfigError naming the file when it is missing, not YAML, or has no such section."""
    import yaml  # a dependency of the Pulumi SDK; only this function needs it

    stack = path.name.removeprefix("Pulumi.").removesuffix(".yaml")
    if not path.is_file():
        raise ConfigError(f"{path} does not exist (fix: pulumi stack init {stack}, then pulumi config set ...)")
    try:
        settings = yaml.safe_load(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path} is not UTF-8 text (byte {error.start}) (fix: save it as UTF-8)") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError(f"{path} is not valid YAML: {where}{problem} (fix: correct that line)") from None
    config = settings.get("config") if isinstance(settings, dict) else None
    if not isinstance(config, dict):
        raise ConfigError(
            f"{path} has no config: section (fix: pulumi config set --stack {stack} {NAMESPACE}:environment {stack})"
        )
    return config


SECTIONS = ("environment", "network", "database", "seed", "featureFlags", "backend", "frontend", "monitoring", "cost")


def parse_stack_config(
    stack: str, values: Mapping[str, Any], region: str | None = None, project_root: Path = PROJECT_ROOT
) -> StackConfig:
    """Parse the ``swipesavvy:*`` settings (keys without the namespace; values raw strings or
    already-decoded objects) into a validated StackConfig, or raise ConfigError. ``region``
    is ``aws:region``: given, the availability zones must be in it."""
    unknown = sorted(set(values) - set(SECTIONS))
    if unknown:
        raise ConfigError(
            f"{NAMESPACE}:{unknown[0]} is not a setting of this program; known settings: "
            f"{', '.join(SECTIONS)} (fix: pulumi config rm {NAMESPACE}:{unknown[0]})"
        )
    environment = values.get("environment")
    if environment not in ENVIRONMENTS:
        raise _fail("environment", environment, f"must be one of {', '.join(ENVIRONMENTS)}", "staging")
    network = parse_network(values.get("network"), region)
    backend = parse_backend(values.get("backend"), project_root, environment)
    _require_backend_egress(backend, network)
    frontend = parse_frontend(values.get("frontend"), project_root, environment)
    config = StackConfig(
        stack=stack,
        environment=environment,
        network=network,
        database=_resolve_access(parse_database(values.get("database"), environment), network),
        seed=parse_seed(values.get("seed"), environment),
        feature_flags=parse_feature_flags(values.get("featureFlags")),
        backend=backend,
        frontend=frontend,
        monitoring=parse_monitoring(values.get("monitoring"), environment, backend, frontend),
        cost=parse_cost(values.get("cost")),
    )
    if config.is_review:
        _require_review_settings(config)
    return config


# What a review stack may not have, and why: each would outlive the stack, be shared with
# other stacks, or collide with staging's (README "Review stacks").
REVIEW_REFUSALS = (
    (
        "database.deletionProtection",
        lambda c: c.database.deletion_protection,
        "a review stack is destroyed when its pull request closes",
        f"pulumi config set --path '{NAMESPACE}:database.deletionProtection' false",
    ),
    (
        "monitoring.awsIntegration",
        lambda c: c.monitoring.enabled and c.monitoring.aws_integration,
        "Datadog's AWS integration is one per account, owned by one long-lived stack",
        f"pulumi config set --path '{NAMESPACE}:monitoring.awsIntegration' false",
    ),
    (
        "frontend.domain",
        lambda c: c.frontend is not None and c.frontend.domain is not None,
        "a custom domain belongs to one stack; a review stack uses its CloudFront address",
        f"pulumi config rm --path '{NAMESPACE}:frontend.domain' and '{NAMESPACE}:frontend.hostedZoneId'",
    ),
)


def _require_review_settings(config: StackConfig) -> None:
    for key, violated, why, fix in REVIEW_REFUSALS:
        if violated(config):
            raise ConfigError(
                f"{NAMESPACE}:{key} is not allowed in review stack {config.stack}: {why} (fix: {fix}, or generate"
                " the file with python -m ops review-config)"
            )


def _resolve_access(database: DatabaseConfig, network: NetworkConfig) -> DatabaseConfig:
    """``database.access`` with its default, refusing combinations that cannot reach the database."""
    access = database.access or ("direct" if network.uses_existing_vpc else "operator")
    if access == "operator" and (database.connect_host or database.connect_port):
        key = "connectHost" if database.connect_host else "connectPort"
        raise ConfigError(
            f"{NAMESPACE}:database.{key} is only used with database.access direct: the operator connects from"
            f" inside the VPC (fix: pulumi config rm --path '{NAMESPACE}:database.{key}', or pulumi config set"
            f" --path '{NAMESPACE}:database.access' direct)"
        )
    if (
        access == "direct"
        and not network.uses_existing_vpc
        and not (database.deploy_runner_cidrs or database.connect_host)
    ):
        raise _fail(
            "database.access",
            "direct",
            "cannot reach a database in the VPC this stack creates without database.deployRunnerCidrs (a runner"
            " inside it) or database.connectHost (a tunnel); operator needs neither",
            "operator",
        )
    return dataclasses.replace(database, access=access)


# --- cost assumptions (swipesavvy:cost) ------------------------------------------------------------


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
