"""``python -m ops preflight``: will this account take this stack? Pure logic, no AWS call.

What the stack will create is counted from its program under mocks (``StackNeeds.from_run``);
what the account allows is read by ``ops/live/preflight_aws.py`` into ``AccountFacts``; ``check``
compares the two, one ``Item`` per quota, each with the fix (the Service Quotas request, or
the stack setting to change). The rules, each with its page (tests/test_preflight.py):
- Lambda: a function may reserve concurrency only while the account keeps 100 unreserved
  (Lambda developer guide, "Configuring reserved concurrency for a function"; "Lambda quotas":
  new accounts have reduced concurrency quotas).
- EC2: running On-Demand instances of the standard families (A, C, D, H, I, M, R, T, Z) are
  counted in vCPUs against L-1216C47A (EC2 user guide, "Amazon EC2 service quotas"); a rolling
  refresh at ``max_healthy_percentage`` 200 runs twice the group (EC2 Auto Scaling user guide,
  "Instance refresh": maximum healthy percentage).
- VPC: VPCs per Region L-F678F1CE, internet gateways per Region L-A4707A72, NAT gateways per Availability Zone L-FE5A380F, interface
  endpoints per VPC L-29B6F2EB (Amazon VPC user guide, "Amazon VPC quotas"); Elastic IPs per
  Region L-0263D0A3 (EC2 user guide, "Elastic IP addresses": "Elastic IP address quota").
- RDS: manual DB instance snapshots per Region L-272F1212 (RDS user guide, "Quotas in Amazon RDS").
- CloudFront (per account, all regions): response headers policies 20, VPC origins 25 by
  default (CloudFront developer guide, "Quotas"); looked up in Service Quotas by name.
- Zones: CloudFront VPC origins are not supported in some zone IDs (components/zones.py).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from components.zones import REGIONS_CHECKED, ZONE_COUNT, ZoneChoiceError, choose_zones, unsupported

PASS, FAIL, UNREAD = "pass", "fail", "unread"
MARKS = {PASS: "✓", FAIL: "✗", UNREAD: "?"}
LAMBDA_UNRESERVED_FLOOR = 100  # what the account must keep unreserved after every reservation
STANDARD_FAMILIES = "acdhimrtz"  # first letter of the instance types L-1216C47A counts
RESERVED_CONCURRENCY_SETTING = "swipesavvy:database.operatorReservedConcurrency"


@dataclass(frozen=True)
class Quota:
    """A Service Quotas entry: where to read it and how to ask for more."""

    service: str
    code: str
    name: str
    region: str | None = None  # None: the stack's; "us-east-1" for CloudFront's global quotas

    def label(self) -> str:
        return f'{self.service} {self.code} "{self.name}"'

    def request(self, value: int, region: str) -> str:
        return (
            f"aws service-quotas request-service-quota-increase --service-code {self.service}"
            f" --quota-code {self.code} --desired-value {value} --region {self.region or region}"
        )


LAMBDA_CONCURRENCY = Quota("lambda", "L-B99A9384", "Concurrent executions")
EC2_STANDARD_VCPUS = Quota("ec2", "L-1216C47A", "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances")
VPCS = Quota("vpc", "L-F678F1CE", "VPCs per Region")
INTERNET_GATEWAYS = Quota("vpc", "L-A4707A72", "Internet gateways per Region")
NAT_GATEWAYS = Quota("vpc", "L-FE5A380F", "NAT gateways per Availability Zone")
INTERFACE_ENDPOINTS = Quota("vpc", "L-29B6F2EB", "Interface VPC endpoints per VPC")
ELASTIC_IPS = Quota("ec2", "L-0263D0A3", "EC2-VPC Elastic IPs")
MANUAL_SNAPSHOTS = Quota("rds", "L-272F1212", "Manual DB instance snapshots")
# CloudFront's codes are looked up by name (``code`` is filled in from Service Quotas); the
# documented defaults stand in when Service Quotas does not list the quota.
RESPONSE_HEADERS_POLICIES = Quota("cloudfront", "", "Response headers policies per AWS account", "us-east-1")
VPC_ORIGINS = Quota("cloudfront", "", "VPC origins per AWS account", "us-east-1")
CLOUDFRONT_DEFAULTS = {RESPONSE_HEADERS_POLICIES.name: 20, VPC_ORIGINS.name: 25}


@dataclass(frozen=True)
class Unread:
    """A value the deploying credentials could not read: the one line saying what and the fix."""

    message: str


@dataclass(frozen=True)
class QuotaValue:
    value: int
    code: str  # the code Service Quotas answered with (CloudFront's are looked up by name)
    source: str = ""  # "" when read from Service Quotas; else where the value comes from


@dataclass(frozen=True)
class StackNeeds:
    """What the stack's first ``up`` creates, counted from its program under mocks."""

    stack: str
    region: str
    allowed_account_ids: tuple[str, ...]
    reserved_concurrency: dict[str, int]  # function resource name -> reserved executions
    instance_type: str | None
    peak_instances: int  # during a rolling refresh: the group times max_healthy_percentage
    creates_vpc: bool
    internet_gateways: int
    existing_vpc_id: str | None
    configured_zones: tuple[str, ...]
    nat_gateways_per_zone: int
    elastic_ips: int
    interface_endpoints: int
    manual_snapshots: int
    response_headers_policies: int
    vpc_origins: int

    @classmethod
    def from_run(cls, stack: str, config: Mapping[str, Any], run: Any) -> StackNeeds:
        """Count from a recorded program run (ops.rehearsal.mock_program.ProgramRun) and its config."""
        network = _object(config.get("swipesavvy:network"))
        functions = run.of_type("aws:lambda/function:Function")
        groups = run.of_type("aws:autoscaling/group:Group")
        templates = run.of_type("aws:ec2/launchTemplate:LaunchTemplate")
        waits = run.of_type("pulumi-python:dynamic/autoscaling:InstanceRefreshWait")
        max_healthy = max((int(w.inputs.get("max_healthy_percentage", 100)) for w in waits), default=100)
        desired = sum(int(g.inputs.get("desiredCapacity", 0)) for g in groups)
        subnet_zones = {f"{s.name}-id": s.inputs.get("availabilityZone") for s in run.of_type("aws:ec2/subnet:Subnet")}
        nat_zones = Counter(
            subnet_zones.get(n.inputs.get("subnetId")) for n in run.of_type("aws:ec2/natGateway:NatGateway")
        )
        endpoints = run.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")
        return cls(
            stack=stack,
            region=str(config.get("aws:region", "us-east-1")),
            allowed_account_ids=tuple(str(a) for a in _list(config.get("aws:allowedAccountIds"))),
            reserved_concurrency={
                f.name: int(f.inputs["reservedConcurrentExecutions"])
                for f in functions
                if f.inputs.get("reservedConcurrentExecutions") is not None
            },
            instance_type=templates[0].inputs.get("instanceType") if templates else None,
            peak_instances=-(-desired * max_healthy // 100),
            creates_vpc=bool(run.of_type("aws:ec2/vpc:Vpc")),
            internet_gateways=len(run.of_type("aws:ec2/internetGateway:InternetGateway")),
            existing_vpc_id=network.get("existingVpcId"),
            configured_zones=tuple(_list(network.get("availabilityZones"))),
            nat_gateways_per_zone=max(nat_zones.values(), default=0),
            elastic_ips=len(run.of_type("aws:ec2/eip:Eip")),
            interface_endpoints=sum(1 for e in endpoints if e.inputs.get("vpcEndpointType") == "Interface"),
            manual_snapshots=len(run.of_type("aws:rds/snapshot:Snapshot")),
            response_headers_policies=len(run.of_type("aws:cloudfront/responseHeadersPolicy:ResponseHeadersPolicy")),
            vpc_origins=len(run.of_type("aws:cloudfront/vpcOrigin:VpcOrigin")),
        )


def _object(value: Any) -> dict[str, Any]:
    value = json.loads(value) if isinstance(value, str) else value
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            value = [value]
    return list(value) if isinstance(value, (list, tuple)) else ([] if value is None else [value])


@dataclass
class AccountFacts:
    """What the deploying credentials read; each value may be ``Unread``."""

    account: str
    caller_arn: str
    zones: list[tuple[str, str]] | Unread  # (name, zone ID) of the region's available zones
    lambda_limit: int | Unread = 0
    lambda_unreserved: int | Unread = 0
    instance_vcpus: int | Unread = 0
    quotas: dict[str, QuotaValue | Unread] = field(default_factory=dict)  # by Quota.name
    usage: dict[str, int | Unread] = field(default_factory=dict)  # by Quota.name


@dataclass(frozen=True)
class Item:
    name: str
    status: str
    needed: str
    available: str
    quota: str = ""
    fix: str = ""

    def line(self) -> str:
        if self.status == UNREAD:
            return f"? {self.name}: could not read: {self.available}"
        text = f"{MARKS[self.status]} {self.name}: needed {self.needed}, available {self.available}"
        text += f"; {self.quota}" if self.quota else ""
        return text + (f" (fix: {self.fix})" if self.status == FAIL else "")


def _unread(name: str, *values: Any) -> Item | None:
    """The item for the first ``Unread`` among ``values``, or None when all were read."""
    for value in values:
        if isinstance(value, Unread):
            return Item(name, UNREAD, "", value.message)
    return None


def credentials_item(needs: StackNeeds, facts: AccountFacts) -> Item:
    caller = f"account {facts.account} as {facts.caller_arn}"
    if not needs.allowed_account_ids:
        return Item(
            "credentials",
            PASS,
            f"any account (Pulumi.{needs.stack}.yaml names none: aws:allowedAccountIds would pin it)",
            caller,
        )
    wanted = ", ".join(needs.allowed_account_ids)
    return Item(
        "credentials",
        PASS if facts.account in needs.allowed_account_ids else FAIL,
        f"account {wanted} (aws:allowedAccountIds in Pulumi.{needs.stack}.yaml)",
        caller,
        fix=f"credentials for account {wanted} (AWS_PROFILE or aws sso login), or correct aws:allowedAccountIds",
    )


def zones_item(needs: StackNeeds, facts: AccountFacts) -> Item | None:
    if not needs.creates_vpc:
        return None
    if isinstance(facts.zones, Unread):
        return Item("zones", UNREAD, "", facts.zones.message)
    unchecked = "" if needs.region in REGIONS_CHECKED else f"; no VPC-origin exceptions on file for {needs.region}"
    wanted = "2 zones where CloudFront VPC origins are supported"
    if needs.configured_zones:
        by_name = dict(facts.zones)
        chosen = [(name, by_name.get(name, "not available")) for name in needs.configured_zones[:ZONE_COUNT]]
        bad = [name for name, zone_id in chosen if zone_id == "not available" or unsupported([zone_id])]
        return Item(
            "zones",
            FAIL if bad else PASS,
            f"{wanted} (swipesavvy:network.availabilityZones)",
            ", ".join(f"{zone_id} ({name})" for name, zone_id in chosen) + unchecked,
            "CloudFront developer guide, Restrict access with VPC origins",
            fix="pulumi config rm --path 'swipesavvy:network.availabilityZones' (the stack then chooses by zone ID)"
            f" or name other zones than {', '.join(bad)}",
        )
    try:
        chosen = choose_zones([name for name, _ in facts.zones], [zone_id for _, zone_id in facts.zones])
    except ZoneChoiceError as error:
        return Item("zones", FAIL, wanted, error.problem, fix=error.FIX)
    return Item(
        "zones",
        PASS,
        wanted,
        "the stack will use " + ", ".join(f"{zone_id} ({name})" for name, zone_id in chosen) + unchecked,
        "chosen by zone ID (components/zones.py)",
    )


def lambda_item(needs: StackNeeds, facts: AccountFacts) -> Item:
    name = "lambda reserved concurrency"
    if unread := _unread(name, facts.lambda_limit, facts.lambda_unreserved):
        return unread
    wanted = sum(needs.reserved_concurrency.values())
    unreserved = int(facts.lambda_unreserved)  # type: ignore[arg-type]
    available = max(unreserved - LAMBDA_UNRESERVED_FLOOR, 0)
    limit = int(facts.lambda_limit)  # type: ignore[arg-type]
    return Item(
        name,
        PASS if wanted <= available else FAIL,
        f"{wanted} reserved"
        + (f" ({', '.join(f'{n} {c}' for n, c in needs.reserved_concurrency.items())})" if wanted else ""),
        f"{available} (unreserved {unreserved} of {limit} minus the {LAMBDA_UNRESERVED_FLOOR} Lambda keeps)",
        LAMBDA_CONCURRENCY.label(),
        fix=f"{LAMBDA_CONCURRENCY.request(limit - unreserved + LAMBDA_UNRESERVED_FLOOR + wanted, needs.region)}, or pulumi config set --path"
        f" '{RESERVED_CONCURRENCY_SETTING}' false --stack {needs.stack}",
    )


def _count_item(name: str, quota: Quota, needed: int, facts: AccountFacts, region: str, what: str = "") -> Item | None:
    """``needed`` more against ``quota``: its value minus current usage."""
    if not needed:
        return None
    value, used = facts.quotas.get(quota.name, Unread("not read")), facts.usage.get(quota.name, 0)
    if unread := _unread(name, value, used):
        return unread
    assert isinstance(value, QuotaValue) and isinstance(used, int)
    available = max(value.value - used, 0)
    code = Quota(quota.service, value.code, quota.name, quota.region)
    source = f", {value.source}" if value.source else ""
    return Item(
        name,
        PASS if needed <= available else FAIL,
        f"{needed}{what}",
        f"{available} ({value.value}{source}, {used} in use)",
        code.label(),
        fix=code.request(used + needed, region),
    )


def ec2_item(needs: StackNeeds, facts: AccountFacts) -> Item | None:
    if not needs.instance_type or needs.instance_type[0] not in STANDARD_FAMILIES:
        return None
    if unread := _unread("ec2 vcpus", facts.instance_vcpus):
        return unread
    vcpus = int(facts.instance_vcpus)  # type: ignore[arg-type]
    return _count_item(
        "ec2 vcpus",
        EC2_STANDARD_VCPUS,
        needs.peak_instances * vcpus,
        facts,
        needs.region,
        f" vCPUs ({needs.peak_instances} x {needs.instance_type} of {vcpus} during a rolling refresh)",
    )


# Each counted item: its name, its quota, how many the stack needs, and what it counts.
COUNTED: tuple[tuple[str, Quota, Callable[[StackNeeds], int], str], ...] = (
    ("vpcs", VPCS, lambda n: int(n.creates_vpc), ""),
    ("internet gateways", INTERNET_GATEWAYS, lambda n: n.internet_gateways, ""),
    ("nat gateways", NAT_GATEWAYS, lambda n: n.nat_gateways_per_zone, " in one zone (in use: the busiest zone)"),
    ("elastic ips", ELASTIC_IPS, lambda n: n.elastic_ips, ""),
    ("interface endpoints", INTERFACE_ENDPOINTS, lambda n: n.interface_endpoints, " in the VPC"),
    ("rds manual snapshots", MANUAL_SNAPSHOTS, lambda n: n.manual_snapshots, ""),
    ("cloudfront response headers policies", RESPONSE_HEADERS_POLICIES, lambda n: n.response_headers_policies, ""),
    ("cloudfront vpc origins", VPC_ORIGINS, lambda n: n.vpc_origins, ""),
)


def quotas_to_read(needs: StackNeeds) -> list[Quota]:
    """The quotas the stack counts against (reading any other is needless)."""
    standard = bool(needs.instance_type) and needs.instance_type[0] in STANDARD_FAMILIES  # type: ignore[index]
    return [EC2_STANDARD_VCPUS] * standard + [quota for _, quota, needed, _ in COUNTED if needed(needs)]


def check(needs: StackNeeds, facts: AccountFacts) -> list[Item]:
    items = [
        credentials_item(needs, facts),
        zones_item(needs, facts),
        lambda_item(needs, facts),
        ec2_item(needs, facts),
    ]
    items += [
        _count_item(name, quota, needed(needs), facts, needs.region, what) for name, quota, needed, what in COUNTED
    ]
    return [item for item in items if item is not None]


def verdict(items: Sequence[Item]) -> str:
    """FAIL when the first ``up`` would fail, else UNREAD when something could not be read, else PASS."""
    statuses = {item.status for item in items}
    return FAIL if FAIL in statuses else UNREAD if UNREAD in statuses else PASS
