"""Reading the account for ``python -m ops preflight`` (ops/live/preflight.py): read-only calls only.

Each value is read with the deploying credentials; one that cannot be read (AccessDenied, a
service not answering) becomes ``Unread`` with the one line saying which permission to grant,
and the rest are still read. Missing or expired credentials stop everything: nothing else
can be read either. The permissions, all read-only (README "Deploying for real"):
sts:GetCallerIdentity, lambda:GetAccountSettings, servicequotas:GetServiceQuota,
GetAWSDefaultServiceQuota, ListServiceQuotas, ListAWSDefaultServiceQuotas,
ec2:DescribeAvailabilityZones, DescribeInstanceTypes, DescribeInstances, DescribeVpcs,
DescribeInternetGateways,
DescribeNatGateways, DescribeSubnets, DescribeAddresses, DescribeVpcEndpoints,
rds:DescribeDBSnapshots, cloudfront:ListResponseHeadersPolicies, cloudfront:ListVpcOrigins.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from dbops.aws_credentials import credentials_problem
from ops.command import EXIT_UNAVAILABLE, CommandFailed
from ops.live.preflight import (
    CLOUDFRONT_DEFAULTS,
    EC2_STANDARD_VCPUS,
    ELASTIC_IPS,
    INTERFACE_ENDPOINTS,
    INTERNET_GATEWAYS,
    MANUAL_SNAPSHOTS,
    NAT_GATEWAYS,
    RESPONSE_HEADERS_POLICIES,
    STANDARD_FAMILIES,
    VPC_ORIGINS,
    VPCS,
    AccountFacts,
    Quota,
    QuotaValue,
    StackNeeds,
    Unread,
    quotas_to_read,
)

T = TypeVar("T")
Clients = Callable[[str, str], Any]  # (service, region) -> a boto3 client
ACTIVE_NAT_STATES = ["pending", "available"]


def boto3_clients(service: str, region: str) -> Any:
    import boto3

    return boto3.client(service, region_name=region)


def _read(action: str, call: Callable[[], T]) -> T | Unread:
    """``call()``, or ``Unread`` naming ``action`` (the IAM action to grant) and why."""
    try:
        return call()
    except (ClientError, BotoCoreError) as error:
        if problem := credentials_problem(error):
            raise CommandFailed(f"cannot read the AWS account: {problem}", EXIT_UNAVAILABLE) from None
        code = error.response["Error"]["Code"] if isinstance(error, ClientError) else type(error).__name__
        return Unread(f"{code} on {action} (fix: allow {action} to the deploying credentials)")


def _quota(client: Any, quota: Quota) -> QuotaValue:
    """The account's value of a quota by code, or AWS's default when none is applied."""
    try:
        found = client.get_service_quota(ServiceCode=quota.service, QuotaCode=quota.code)["Quota"]
    except ClientError as error:
        if error.response["Error"]["Code"] != "NoSuchResourceException":
            raise
        found = client.get_aws_default_service_quota(ServiceCode=quota.service, QuotaCode=quota.code)["Quota"]
    return QuotaValue(int(found["Value"]), found["QuotaCode"])


def _quota_by_name(client: Any, quota: Quota) -> QuotaValue:
    """A CloudFront quota found by its name: applied, else AWS's default, else the documented one."""
    for operation in ("list_service_quotas", "list_aws_default_service_quotas"):
        for page in client.get_paginator(operation).paginate(ServiceCode=quota.service):
            for found in page["Quotas"]:
                if found["QuotaName"] == quota.name:
                    return QuotaValue(int(found["Value"]), found["QuotaCode"])
    return QuotaValue(CLOUDFRONT_DEFAULTS[quota.name], "(no code)", "documented default, not in Service Quotas")


def _count(client: Any, operation: str, key: str, **kwargs: Any) -> int:
    return sum(len(page[key]) for page in client.get_paginator(operation).paginate(**kwargs))


def _cloudfront_count(list_call: Callable[..., dict], key: str, **kwargs: Any) -> int:
    """Items of a CloudFront list (Marker/NextMarker pages)."""
    total, marker = 0, None
    while True:
        page = list_call(**kwargs, **({"Marker": marker} if marker else {}))[key]
        total += int(page.get("Quantity", 0))
        marker = page.get("NextMarker")
        if not marker:
            return total


def _running_standard_vcpus(ec2: Any) -> int:
    states = {"Name": "instance-state-name", "Values": ["pending", "running"]}
    total = 0
    for page in ec2.get_paginator("describe_instances").paginate(Filters=[states]):
        for reservation in page["Reservations"]:
            for instance in reservation["Instances"]:
                if instance["InstanceType"][0] in STANDARD_FAMILIES and instance.get("InstanceLifecycle") != "spot":
                    cpu = instance.get("CpuOptions", {})
                    total += int(cpu.get("CoreCount", 1)) * int(cpu.get("ThreadsPerCore", 1))
    return total


def _busiest_zone_nat_gateways(ec2: Any) -> int:
    """NAT gateways in the zone that has the most (the stack's zone may be that one)."""
    gateways = [
        gateway
        for page in ec2.get_paginator("describe_nat_gateways").paginate(
            Filters=[{"Name": "state", "Values": ACTIVE_NAT_STATES}]
        )
        for gateway in page["NatGateways"]
    ]
    if not gateways:
        return 0
    subnets = ec2.describe_subnets(SubnetIds=sorted({g["SubnetId"] for g in gateways}))["Subnets"]
    zone_of = {s["SubnetId"]: s["AvailabilityZone"] for s in subnets}
    return max(Counter(zone_of[g["SubnetId"]] for g in gateways).values())


def read_account(needs: StackNeeds, clients: Clients = boto3_clients) -> AccountFacts:
    region = needs.region
    identity = _read("sts:GetCallerIdentity", lambda: clients("sts", region).get_caller_identity())
    if isinstance(identity, Unread):
        raise CommandFailed(f"cannot read the AWS account: {identity.message}", EXIT_UNAVAILABLE)
    ec2, quotas = clients("ec2", region), clients("service-quotas", region)
    cloudfront, global_quotas = clients("cloudfront", "us-east-1"), clients("service-quotas", "us-east-1")
    zones = _read(
        "ec2:DescribeAvailabilityZones",
        lambda: sorted(
            (zone["ZoneName"], zone["ZoneId"])
            for zone in ec2.describe_availability_zones(Filters=[{"Name": "state", "Values": ["available"]}])[
                "AvailabilityZones"
            ]
        ),
    )
    settings = _read("lambda:GetAccountSettings", lambda: clients("lambda", region).get_account_settings())
    limits = settings if isinstance(settings, Unread) else settings["AccountLimit"]
    facts = AccountFacts(
        account=identity["Account"],
        caller_arn=identity["Arn"],
        zones=zones,
        lambda_limit=limits if isinstance(limits, Unread) else int(limits["ConcurrentExecutions"]),
        lambda_unreserved=limits if isinstance(limits, Unread) else int(limits["UnreservedConcurrentExecutions"]),
    )
    if needs.instance_type:
        facts.instance_vcpus = _read(
            "ec2:DescribeInstanceTypes",
            lambda: int(
                ec2.describe_instance_types(InstanceTypes=[needs.instance_type])["InstanceTypes"][0]["VCpuInfo"][
                    "DefaultVCpus"
                ]
            ),
        )
    usage: dict[Quota, Callable[[], int]] = {
        EC2_STANDARD_VCPUS: lambda: _running_standard_vcpus(ec2),
        VPCS: lambda: _count(ec2, "describe_vpcs", "Vpcs"),
        INTERNET_GATEWAYS: lambda: _count(ec2, "describe_internet_gateways", "InternetGateways"),
        NAT_GATEWAYS: lambda: _busiest_zone_nat_gateways(ec2),
        ELASTIC_IPS: lambda: len(ec2.describe_addresses(Filters=[{"Name": "domain", "Values": ["vpc"]}])["Addresses"]),
        INTERFACE_ENDPOINTS: lambda: (
            0
            if needs.creates_vpc
            else _count(
                ec2,
                "describe_vpc_endpoints",
                "VpcEndpoints",
                Filters=[
                    {"Name": "vpc-id", "Values": [needs.existing_vpc_id]},
                    {"Name": "vpc-endpoint-type", "Values": ["Interface"]},
                ],
            )
        ),
        MANUAL_SNAPSHOTS: lambda: _count(
            clients("rds", region), "describe_db_snapshots", "DBSnapshots", SnapshotType="manual"
        ),
        RESPONSE_HEADERS_POLICIES: lambda: _cloudfront_count(
            cloudfront.list_response_headers_policies, "ResponseHeadersPolicyList", Type="custom"
        ),
        VPC_ORIGINS: lambda: _cloudfront_count(cloudfront.list_vpc_origins, "VpcOriginList"),
    }
    actions = {
        EC2_STANDARD_VCPUS: "ec2:DescribeInstances",
        VPCS: "ec2:DescribeVpcs",
        INTERNET_GATEWAYS: "ec2:DescribeInternetGateways",
        NAT_GATEWAYS: "ec2:DescribeNatGateways",
        ELASTIC_IPS: "ec2:DescribeAddresses",
        INTERFACE_ENDPOINTS: "ec2:DescribeVpcEndpoints",
        MANUAL_SNAPSHOTS: "rds:DescribeDBSnapshots",
        RESPONSE_HEADERS_POLICIES: "cloudfront:ListResponseHeadersPolicies",
        VPC_ORIGINS: "cloudfront:ListVpcOrigins",
    }
    for quota in quotas_to_read(needs):
        if quota.service == "cloudfront":
            facts.quotas[quota.name] = _read(
                "servicequotas:ListServiceQuotas", lambda q=quota: _quota_by_name(global_quotas, q)
            )
        else:
            facts.quotas[quota.name] = _read("servicequotas:GetServiceQuota", lambda q=quota: _quota(quotas, q))
        facts.usage[quota.name] = _read(actions[quota], usage[quota])
    return facts
