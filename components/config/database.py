"""``swipesavvy:database``: the RDS PostgreSQL instance, its access and production's floor."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any

from components.config.section import MAX_ROTATION, _as_int, _camel, _fail, _is_cidr, _Section

POSTGRES_MAJOR_VERSIONS = ("14", "15", "16", "17")
MIN_STORAGE_GIB = 100
MAX_STORAGE_GIB = 65536
AUTOSCALING_OFF = 0  # the max_allocated_storage that tells pulumi_aws: no storage autoscaling
ACCESS_MODES = ("operator", "direct")
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
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_INSTANCE_CLASS = re.compile(r"^db\.[a-z0-9]+\.[a-z0-9]+$")


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
    # says so; then RDS is allowed to upgrade (docs/operations.md "Upgrading PostgreSQL": snapshot first).
    allow_major_version_upgrade: bool = False
    # How many times the logins the instances use (backend, agent) were rotated: one more
    # rotates them without an outage (components/data/credential_slots.py, docs/operations.md "Secrets").
    credential_rotation: int = 0


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
