"""The whole Pulumi program (``__main__.py``) run in-process under Pulumi's mocks, recorded.

``run_program`` gives back every resource registration (type, name, inputs with secrets
still wrapped, so callers can tell secret from plain), its declared dependencies and
parent, and the stack outputs with their secret flag. The mocks fill in what AWS would
compute (addresses, ARNs, ids) with recognisable fake values; passwords are distinctive
strings tests search for. The tests and ``python -m ops rehearse`` both use it: no cloud
account, no Pulumi CLI.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import runpy
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.settings import ROOT as ROOT_RESOURCE

from components.config import read_stack_file

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"
DB_ADDRESS = "swipesavvy-db-postgres.c0ffee.us-east-1.rds.amazonaws.com"
MASTER_SECRET_ARN = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:rds!db-0123-AbCdEf"
MASTER_PASSWORD = "MASTER-PASSWORD-from-rds-managed-secret"
APP_PASSWORD_PREFIX = "APP-PASSWORD-generated-"
ALB_DNS_NAME = "swipesavvy-api-alb-123456.us-east-1.elb.amazonaws.com"
AMI_ID = "ami-0al2023arm64"
RELEASE_AMI_ID = "ami-0al2023release"  # what aws.ec2.get_ami finds for a pinned AL2023 release name
VPC_ORIGINS_SECURITY_GROUP_ID = "sg-0cf0vpc0origins0sg"  # CloudFront's, once a VPC origin exists
ELB_ACCOUNT = "127311923021"  # us-east-1's legacy Elastic Load Balancing account: in no policy
OPERATOR_ARN_PREFIX = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:"
CLOUDFRONT_DOMAIN = "d111111abcdef8.cloudfront.net"
CLOUDFRONT_ZONE_ID = "Z2FDTNDATAQYW2"
CERTIFICATE_ARN_PREFIX = f"arn:aws:acm:us-east-1:{ACCOUNT}:certificate/"
DATADOG_AGENT_KEY = "DATADOG-AGENT-API-KEY-generated"
DATADOG_IAM_PERMISSIONS = [
    "cloudwatch:GetMetricData",
    "cloudwatch:ListMetrics",
    "rds:DescribeDBInstances",
    "tag:GetResources",
]
DATADOG_TOKEN_VARIABLE_ID = "2b0c9f3e-token-variable"


def _computed(args: pulumi.runtime.MockResourceArgs) -> dict[str, Any]:
    """What the cloud would fill in after create, per resource type."""
    inputs = args.inputs
    if args.typ == "aws:rds/instance:Instance":
        return {
            "address": DB_ADDRESS,
            "endpoint": f"{DB_ADDRESS}:5432",
            "port": 5432,
            "resourceId": "db-ABCDEF0123",
            "identifier": f"{args.name}-1a2b3c4",
            "arn": f"arn:aws:rds:us-east-1:{ACCOUNT}:db:{args.name}",
            "masterUserSecrets": [
                {"secretArn": MASTER_SECRET_ARN, "kmsKeyId": "alias/aws/secretsmanager", "secretStatus": "active"}
            ],
        }
    if args.typ == "random:index/randomPassword:RandomPassword":
        # New keepers are a new value, as the random provider replaces it (a rotated slot).
        rotation = (inputs.get("keepers") or {}).get("rotation")
        return {"result": f"{APP_PASSWORD_PREFIX}{args.name}" + (f"-rotation-{rotation}" if rotation else "")}
    if args.typ == "random:index/randomId:RandomId":
        return {"hex": "1a2b3c4d"}
    if args.typ == "aws:secretsmanager/secret:Secret":
        name = inputs.get("name") or f"{inputs['namePrefix']}20261126"  # AWS appends to a prefix
        return {"arn": f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:{name}-AbCdEf", "name": name}
    if args.typ == "aws:secretsmanager/secretVersion:SecretVersion":
        # Another value is another version, as Secrets Manager stores it.
        value = hashlib.sha256(json.dumps(inputs.get("secretString"), sort_keys=True).encode()).hexdigest()[:8]
        return {"versionId": f"{args.name}-version-{value}", "arn": inputs["secretId"]}
    if args.typ == "aws:lambda/function:Function":
        return {"arn": f"{OPERATOR_ARN_PREFIX}{inputs['name']}", "name": inputs["name"]}
    if args.typ == "aws:cloudwatch/logGroup:LogGroup":
        return {"arn": f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:{inputs['name']}"}
    if args.typ == "aws:lb/loadBalancer:LoadBalancer":
        return {
            "arn": f"arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}:loadbalancer/app/{args.name}/1",
            "dnsName": ALB_DNS_NAME,
        }
    if args.typ in ("aws:lb/targetGroup:TargetGroup", "aws:lb/listener:Listener"):
        return {"arn": f"arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}:{args.name}"}
    if args.typ == "aws:ec2/launchTemplate:LaunchTemplate":
        return {"latestVersion": 1, "arn": f"arn:aws:ec2:us-east-1:{ACCOUNT}:launch-template/{args.name}"}
    if args.typ == "aws:autoscaling/group:Group":
        return {"name": args.name, "arn": f"arn:aws:autoscaling:us-east-1:{ACCOUNT}:{args.name}"}
    if args.typ == "aws:iam/instanceProfile:InstanceProfile":
        return {"arn": f"arn:aws:iam::{ACCOUNT}:instance-profile/{args.name}", "name": args.name}
    if args.typ == "aws:iam/policy:Policy":
        name = inputs.get("name", args.name)
        return {"arn": f"arn:aws:iam::{ACCOUNT}:policy/{name}", "name": name}
    if args.typ == "aws:iam/role:Role":
        return {"arn": f"arn:aws:iam::{ACCOUNT}:role/{args.name}", "name": args.name}
    if args.typ in ("aws:rds/subnetGroup:SubnetGroup", "aws:rds/parameterGroup:ParameterGroup"):
        return {"name": args.name}
    if args.typ == "aws:s3/bucket:Bucket":
        bucket = inputs.get("bucket") or f"{args.name}-a1b2c3d"  # the provider appends to an autoname
        return {
            "bucket": bucket,
            "arn": f"arn:aws:s3:::{bucket}",
            "bucketRegionalDomainName": f"{bucket}.s3.us-east-1.amazonaws.com",
            "region": inputs.get("region") or "us-east-1",
        }
    if args.typ == "aws:cloudfront/distribution:Distribution":
        return {
            "arn": f"arn:aws:cloudfront::{ACCOUNT}:distribution/{args.name}-id",
            "domainName": CLOUDFRONT_DOMAIN,
            "hostedZoneId": CLOUDFRONT_ZONE_ID,
        }
    if args.typ == "aws:wafv2/webAcl:WebAcl":
        return {"arn": f"arn:aws:wafv2:us-east-1:{ACCOUNT}:global/webacl/{inputs['name']}/0123"}
    if args.typ == "aws:cloudfront/function:Function":
        return {"arn": f"arn:aws:cloudfront::{ACCOUNT}:function/{inputs['name']}"}
    if args.typ == "aws:acm/certificate:Certificate":
        domain = inputs["domainName"]
        return {
            "arn": f"{CERTIFICATE_ARN_PREFIX}{args.name}",
            "domainValidationOptions": [
                {
                    "domainName": domain,
                    "resourceRecordName": f"_c0ffee.{domain}.",
                    "resourceRecordType": "CNAME",
                    "resourceRecordValue": "_beef.acm-validations.aws.",
                }
            ],
        }
    if args.typ == "aws:route53/record:Record":
        return {"fqdn": inputs["name"].rstrip(".")}
    if args.typ in (
        "aws:cloudwatch/logDeliverySource:LogDeliverySource",
        "aws:cloudwatch/logDeliveryDestination:LogDeliveryDestination",
    ):
        kind = "delivery-source" if args.typ.endswith("Source") else "delivery-destination"
        return {"arn": f"arn:aws:logs:us-east-1:{ACCOUNT}:{kind}:{inputs['name']}"}
    if args.typ == "datadog:index/apiKey:ApiKey":
        return {"key": DATADOG_AGENT_KEY}
    if args.typ == "datadog:index/dashboard:Dashboard":
        return {"url": f"/dashboard/abc-def-ghi/{args.name}"}
    if args.typ == "datadog:index/syntheticsTest:SyntheticsTest":
        return {"monitorId": 4242}
    if args.typ == "pulumi-python:dynamic/db:DatabaseSchema":
        return {"applied": sorted(inputs["migrations"])}
    if args.typ == "pulumi-python:dynamic/db:MockDataSeed":
        return {"counts": {"campaign_analytics_daily": 4500}, "checksum": "c0ffee" * 10 + "beef"}
    return {}


def _invoke(
    args: pulumi.runtime.MockCallArgs, master_password: str, iam_roles: Mapping[str, Mapping[str, str]]
) -> dict[str, Any]:
    if args.token == "aws:iam/getRoles:getRoles":
        pattern = re.compile(args.args.get("nameRegex", ""))
        names = sorted(name for name in iam_roles if pattern.search(name))
        return {"id": "roles", "names": names, "arns": [f"arn:aws:iam::{ACCOUNT}:role/{n}" for n in names]}
    if args.token == "aws:iam/getRole:getRole":
        name = args.args["name"]
        return {"id": name, "name": name, "arn": f"arn:aws:iam::{ACCOUNT}:role/{name}", "tags": dict(iam_roles[name])}
    if args.token == "aws:index/getAvailabilityZones:getAvailabilityZones":
        return {
            "id": "us-east-1",
            "names": ["us-east-1a", "us-east-1b", "us-east-1c"],
            "zoneIds": ["use1-az1", "use1-az2", "use1-az4"],
        }
    if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
        return {"id": ACCOUNT, "accountId": ACCOUNT, "arn": f"arn:aws:iam::{ACCOUNT}:user/deployer", "userId": "AIDA"}
    if args.token == "aws:index/getRegion:getRegion":
        return {
            "id": "us-east-1",
            "region": "us-east-1",
            "name": "us-east-1",
            "endpoint": "ec2.us-east-1.amazonaws.com",
        }
    if args.token == "aws:ssm/getParameter:getParameter":
        return {
            "id": args.args["name"],
            "name": args.args["name"],
            "value": AMI_ID,
            "insecureValue": AMI_ID,
            "type": "String",
            "arn": f"arn:aws:ssm:us-east-1::parameter{args.args['name']}",
        }
    if args.token == "aws:ec2/getAmi:getAmi":
        (name,) = next(f["values"] for f in args.args["filters"] if f["name"] == "name")
        return {"id": RELEASE_AMI_ID, "imageId": RELEASE_AMI_ID, "name": name, "architecture": name.rsplit("-", 1)[1]}
    if args.token == "aws:ec2/getSecurityGroup:getSecurityGroup":
        (group_name,) = [f["values"][0] for f in args.args["filters"] if f["name"] == "group-name"]
        return {
            "id": VPC_ORIGINS_SECURITY_GROUP_ID,
            "name": group_name,
            "vpcId": args.args["vpcId"],
            "arn": f"arn:aws:ec2:us-east-1:{ACCOUNT}:security-group/{VPC_ORIGINS_SECURITY_GROUP_ID}",
            "description": "CloudFront VPC origins",
            "filters": args.args["filters"],
            "tags": {},
        }
    if args.token == "datadog:aws/getIntegrationIamPermissions:getIntegrationIamPermissions":
        return {"id": "permissions", "iamPermissions": DATADOG_IAM_PERMISSIONS}
    if args.token == "datadog:index/getSyntheticsGlobalVariable:getSyntheticsGlobalVariable":
        return {"id": DATADOG_TOKEN_VARIABLE_ID, "name": args.args["name"], "tags": []}
    if args.token == "aws:index/getPartition:getPartition":
        return {"id": "aws", "partition": "aws", "dnsSuffix": "amazonaws.com", "reverseDnsPrefix": "com.amazonaws"}
    if args.token == "aws:secretsmanager/getSecretVersion:getSecretVersion":  # a program must not need it
        return {
            "id": args.args["secretId"],
            "arn": args.args["secretId"],
            "versionId": "v1",
            "secretString": json.dumps({"username": "swipesavvy_admin", "password": master_password}),
        }
    raise NotImplementedError(f"no mock for invoke {args.token}")


class RecordingMocks(pulumi.runtime.Mocks):
    def __init__(
        self, master_password: str = MASTER_PASSWORD, iam_roles: Mapping[str, Mapping[str, str]] | None = None
    ) -> None:
        self.resources: list[pulumi.runtime.MockResourceArgs] = []
        self.master_password = master_password  # what the RDS-managed secret holds (it rotates)
        self.calls: list[pulumi.runtime.MockCallArgs] = []  # every invoke, in order
        self.iam_roles = dict(iam_roles or {})  # roles that already exist in the account: name -> tags

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        self.resources.append(args)
        return f"{args.name}-id", {**args.inputs, **_computed(args)}

    def call(self, args: pulumi.runtime.MockCallArgs):
        self.calls.append(args)
        return _invoke(args, self.master_password, self.iam_roles)


def urn_key(urn: str) -> tuple[str, str]:
    """``urn:pulumi:stack::project::parent$type::name`` -> ``(type, name)``."""
    qualified_type, name = urn.split("::")[2:4]
    return qualified_type.rsplit("$", 1)[-1], name


class RecordingMonitor(MockMonitor):
    """Also records each registration's declared dependencies and parent (the mocks do not see them)."""

    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self.dependencies: dict[tuple[str, str], list[str]] = {}
        self.parent_keys: dict[tuple[str, str], tuple[str, str]] = {}
        self.protected: set[tuple[str, str]] = set()
        self.retained: set[tuple[str, str]] = set()
        self.ignored: dict[tuple[str, str], list[str]] = {}
        self.replace_on_changes: dict[tuple[str, str], list[str]] = {}

    def RegisterResource(self, request):
        self.dependencies[(request.type, request.name)] = [urn.rsplit("::", 1)[-1] for urn in request.dependencies]
        if request.parent:
            self.parent_keys[(request.type, request.name)] = urn_key(request.parent)
        if request.protect:
            self.protected.add((request.type, request.name))
        if request.retainOnDelete:
            self.retained.add((request.type, request.name))
        if request.ignoreChanges:
            self.ignored[(request.type, request.name)] = list(request.ignoreChanges)
        if request.replaceOnChanges:
            self.replace_on_changes[(request.type, request.name)] = list(request.replaceOnChanges)
        return super().RegisterResource(request)


@dataclass
class ProgramRun:
    resources: list[pulumi.runtime.MockResourceArgs]
    dependencies: dict[tuple[str, str], list[str]]  # (type, name) -> names of what it depends on
    protected: set[tuple[str, str]]  # (type, name) of resources registered with protect=True
    retained: set[tuple[str, str]]  # (type, name) of resources registered with retain_on_delete=True
    parent_keys: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)  # (type, name) -> its parent's
    outputs: dict[str, tuple[Any, bool]] = field(default_factory=dict)  # name -> (value, is_secret)
    ignored: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # (type, name) -> its ignore_changes
    replace_on_changes: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # (type, name) -> its paths

    def of_type(self, typ: str) -> list[pulumi.runtime.MockResourceArgs]:
        return [r for r in self.resources if r.typ == typ]

    def one(self, typ: str) -> pulumi.runtime.MockResourceArgs:
        found = self.of_type(typ)
        assert len(found) == 1, f"expected one {typ}, found {[r.name for r in found]}"
        return found[0]

    def of_name(self, typ: str, name: str) -> pulumi.runtime.MockResourceArgs:
        """The resource of type ``typ`` called ``name`` (names repeat across types)."""
        return next(r for r in self.of_type(typ) if r.name == name)

    def named(self, name: str) -> pulumi.runtime.MockResourceArgs:
        return next(r for r in self.resources if r.name == name)


def stack_config(stack: str) -> dict[str, Any]:
    return read_stack_file(PROJECT_ROOT / f"Pulumi.{stack}.yaml")


def run_program(
    config: dict[str, Any],
    stack: str = "staging",
    preview: bool = False,
    mocks: RecordingMocks | None = None,
    secret_keys: tuple[str, ...] = (),
) -> ProgramRun:
    """Run the whole program with ``config`` (full keys, e.g. ``swipesavvy:database``),
    handed over as the Pulumi CLI does: the whole bag in ``PULUMI_CONFIG`` and the secret
    keys in ``PULUMI_CONFIG_SECRET_KEYS``, which the language host also loads into the runtime."""
    mocks = mocks or RecordingMocks()
    ROOT_RESOURCE.set(None)  # a fresh root stack per run, so exports do not accumulate
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project="swipesavvy", stack=stack, preview=preview, monitor=monitor)
    raw = {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}
    pulumi.runtime.set_all_config(raw, list(secret_keys))
    os.environ["PULUMI_CONFIG"] = json.dumps(raw)
    os.environ["PULUMI_CONFIG_SECRET_KEYS"] = json.dumps(list(secret_keys))
    run = ProgramRun(
        mocks.resources,
        monitor.dependencies,
        monitor.protected,
        monitor.retained,
        monitor.parent_keys,
        ignored=monitor.ignored,
        replace_on_changes=monitor.replace_on_changes,
    )

    async def resolve_outputs() -> None:
        for name, value in pulumi.runtime.get_root_resource().outputs.items():
            output = pulumi.Output.from_input(value)
            run.outputs[name] = (await output.future(), await output.is_secret())

    @pulumi.runtime.test
    def program():
        runpy.run_path(str(PROJECT_ROOT / "__main__.py"), run_name="__main__")
        return asyncio.ensure_future(resolve_outputs())

    try:
        program()
    finally:
        del os.environ["PULUMI_CONFIG"], os.environ["PULUMI_CONFIG_SECRET_KEYS"]
    return run
