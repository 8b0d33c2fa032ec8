"""A mocked AWS account for ``python -m ops preflight``: botocore's Stubber answers, in order,
exactly the read-only calls ``ops/live/preflight_aws.py`` makes (a write, or any other call, fails).

The tests use it to make accounts that pass and fail each item; ``python -m ops rehearse``
shows the plan's preflight against ``NEW_ACCOUNT`` (Lambda concurrency 10, as AWS gives some
new accounts: Lambda developer guide, "Lambda quotas"). No network, no credentials.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.stub import Stubber

from ops.live.preflight import EC2_STANDARD_VCPUS, RESPONSE_HEADERS_POLICIES, VPC_ORIGINS, StackNeeds, quotas_to_read
from ops.rehearsal.mock_program import ACCOUNT

CALLER = f"arn:aws:sts::{ACCOUNT}:assumed-role/swipesavvy-deploy/ci"
# An account whose us-east-1a is use1-az3 (zone names map to different IDs in every account).
ZONES = [("us-east-1a", "use1-az3"), ("us-east-1b", "use1-az4"), ("us-east-1c", "use1-az1"), ("us-east-1d", "use1-az2")]
# The codes this mocked Service Quotas answers for CloudFront's quotas (made up: preflight
# finds CloudFront's quotas by name and prints the code the account answers with).
CLOUDFRONT_CODES = {RESPONSE_HEADERS_POLICIES.name: "L-0000C0F1", VPC_ORIGINS.name: "L-0000C0F2"}


@dataclass
class MockAccount:
    """What the stubbed account answers: quotas by code (CloudFront's by name) and usage by quota name.

    The defaults are AWS's documented defaults where this program relies on one (VPCs 5,
    internet gateways 5, NAT gateways 5 per zone, interface endpoints 50 per VPC, Elastic IPs 5: "Amazon VPC quotas";
    manual DB snapshots 100: "Quotas in Amazon RDS"; CloudFront response headers policies 20 and
    VPC origins 25: CloudFront "Quotas"); standard vCPUs 64 and Lambda concurrency 1000 are
    mocked values (``NEW_ACCOUNT`` below has 10). Instance types have DescribeInstanceTypes'
    DefaultVCpus (t4g.small and m7g.large: 2)."""

    account: str = ACCOUNT
    zones: list[tuple[str, str]] = field(default_factory=lambda: list(ZONES))
    concurrency: int = 1000
    unreserved: int = 1000
    vcpus: dict[str, int] = field(default_factory=lambda: {"t4g.small": 2, "m7g.large": 2})
    quotas: dict[str, int] = field(
        default_factory=lambda: {
            "L-1216C47A": 64,
            "L-F678F1CE": 5,
            "L-A4707A72": 5,
            "L-FE5A380F": 5,
            "L-0263D0A3": 5,
            "L-29B6F2EB": 50,
            "L-272F1212": 100,
            RESPONSE_HEADERS_POLICIES.name: 20,
            VPC_ORIGINS.name: 25,
        }
    )
    usage: dict[str, int] = field(default_factory=dict)  # by quota name; 0 when absent
    unlisted: set[str] = field(default_factory=set)  # CloudFront quotas Service Quotas does not list
    unapplied: set[str] = field(default_factory=set)  # quota codes with no applied value: AWS's default answers
    denied: set[str] = field(default_factory=set)  # boto3 method names answered AccessDenied

    def clients(self, needs: StackNeeds) -> tuple[Any, list[Stubber]]:
        """A client factory whose clients answer, in order, exactly the calls preflight makes."""
        made: dict[tuple[str, str], Any] = {}
        stubbers: dict[tuple[str, str], Stubber] = {}

        def stub(service: str, region: str) -> Stubber:
            if (service, region) not in made:
                client = boto3.client(
                    service, region_name=region, aws_access_key_id="AKIDTEST", aws_secret_access_key="test"
                )
                made[(service, region)], stubbers[(service, region)] = client, Stubber(client)
                stubbers[(service, region)].activate()  # from here on, an unstubbed call is an error
            return stubbers[(service, region)]

        def answer(service: str, region: str, method: str, response: dict, params: dict | None = None) -> None:
            if method in self.denied:
                stub(service, region).add_client_error(method, "AccessDeniedException", http_status_code=403)
            else:
                stub(service, region).add_response(method, response, params)

        region = needs.region
        answer("sts", region, "get_caller_identity", {"Account": self.account, "Arn": CALLER, "UserId": "AROA1"})
        answer(
            "ec2",
            region,
            "describe_availability_zones",
            {"AvailabilityZones": [{"ZoneName": n, "ZoneId": i, "State": "available"} for n, i in self.zones]},
        )
        answer(
            "lambda",
            region,
            "get_account_settings",
            {
                "AccountLimit": {
                    "ConcurrentExecutions": self.concurrency,
                    "UnreservedConcurrentExecutions": self.unreserved,
                }
            },
        )
        if needs.instance_type:
            answer(
                "ec2",
                region,
                "describe_instance_types",
                {"InstanceTypes": [{"VCpuInfo": {"DefaultVCpus": self.vcpus[needs.instance_type]}}]},
                {"InstanceTypes": [needs.instance_type]},
            )
        for quota in quotas_to_read(needs):
            used = self.usage.get(quota.name, 0)
            if quota.service == "cloudfront":
                listed = [] if quota.name in self.unlisted else [self._cloudfront_quota(quota.name)]
                answer("service-quotas", "us-east-1", "list_service_quotas", {"Quotas": listed})
                if not listed:
                    answer("service-quotas", "us-east-1", "list_aws_default_service_quotas", {"Quotas": []})
            else:
                if quota.code in self.unapplied:
                    stub("service-quotas", region).add_client_error(
                        "get_service_quota", "NoSuchResourceException", http_status_code=400
                    )
                answer(
                    "service-quotas",
                    region,
                    "get_aws_default_service_quota" if quota.code in self.unapplied else "get_service_quota",
                    {
                        "Quota": {
                            "QuotaCode": quota.code,
                            "QuotaName": quota.name,
                            "Value": float(self.quotas[quota.code]),
                        }
                    },
                    {"ServiceCode": quota.service, "QuotaCode": quota.code},
                )
            self._usage(answer, region, quota.name, used, needs)

        def client(service: str, region: str) -> Any:
            stub(service, region)  # a client nothing was stubbed for fails every call
            return made[(service, region)]

        return client, list(stubbers.values())

    def _cloudfront_quota(self, name: str) -> dict:
        return {"QuotaCode": CLOUDFRONT_CODES[name], "QuotaName": name, "Value": float(self.quotas[name])}

    @staticmethod
    def _usage(answer, region: str, name: str, used: int, needs: StackNeeds) -> None:
        if name == EC2_STANDARD_VCPUS.name:
            instances = [{"InstanceType": "m7g.large", "CpuOptions": {"CoreCount": used, "ThreadsPerCore": 1}}]
            answer("ec2", region, "describe_instances", {"Reservations": [{"Instances": instances if used else []}]})
        elif name == "VPCs per Region":
            answer("ec2", region, "describe_vpcs", {"Vpcs": [{"VpcId": f"vpc-{i:08x}"} for i in range(used)]})
        elif name == "Internet gateways per Region":
            gateways = [{"InternetGatewayId": f"igw-{i:08x}"} for i in range(used)]
            answer("ec2", region, "describe_internet_gateways", {"InternetGateways": gateways})
        elif name == "NAT gateways per Availability Zone":
            gateways = [{"NatGatewayId": f"nat-{i}", "SubnetId": "subnet-0123abcd"} for i in range(used)]
            answer("ec2", region, "describe_nat_gateways", {"NatGateways": gateways})
            if used:
                subnets = [{"SubnetId": "subnet-0123abcd", "AvailabilityZone": "us-east-1c"}]
                answer("ec2", region, "describe_subnets", {"Subnets": subnets})
        elif name == "EC2-VPC Elastic IPs":
            answer("ec2", region, "describe_addresses", {"Addresses": [{"AllocationId": f"e{i}"} for i in range(used)]})
        elif name == "Interface VPC endpoints per VPC" and not needs.creates_vpc:
            answer("ec2", region, "describe_vpc_endpoints", {"VpcEndpoints": [{"VpcEndpointId": "e"}] * used})
        elif name == "Manual DB instance snapshots":
            answer("rds", region, "describe_db_snapshots", {"DBSnapshots": [{"DBSnapshotIdentifier": "s"}] * used})
        elif name == RESPONSE_HEADERS_POLICIES.name:
            page = {"ResponseHeadersPolicyList": {"MaxItems": 100, "Quantity": used}}
            answer("cloudfront", "us-east-1", "list_response_headers_policies", page, {"Type": "custom"})
        elif name == VPC_ORIGINS.name:
            page = {"VpcOriginList": {"Marker": "", "MaxItems": 100, "IsTruncated": False, "Quantity": used}}
            answer("cloudfront", "us-east-1", "list_vpc_origins", page)


NEW_ACCOUNT = MockAccount(concurrency=10, unreserved=10)
