"""AWS's own rules, which a mocked run cannot see, over every resource the program declares.

Run over both committed stacks and the tests' other configs (conftest's session runs, plus
two variants here): names and descriptions against each API reference's characters and
lengths, sizes against the service quotas, and a small model of the stack's network in
which every compute that calls an AWS service or the database reaches it, and nothing else
can. Each rule cites the AWS page it comes from, and is shown failing on a mutated resource.
"""

from __future__ import annotations

import base64
import dataclasses
import ipaddress
import json
import re
import zipfile
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import _production_existing_vpc_config
from pulumi_program import (
    ACCOUNT,
    MASTER_SECRET_ARN,
    VPC_ORIGINS_SECURITY_GROUP_ID,
    RecordingMocks,
    run_program,
    stack_config,
    unwrap_all,
)
from test_review_config import STAGING_OUTPUTS

from ops.live.review import review_config, review_stack_name

# Pulumi names a resource without an explicit name "<logical name>-<7 random characters>"
# (Pulumi docs, "Resource names: autonaming"). The providers cut an over-long autoname to
# fit; the rules here are stricter: a cut name no longer says what it is.
AUTONAME_SUFFIX = "-1a2b3c4"
# Secrets Manager appends 26 characters to a name prefix (terraform-provider-aws
# `name_prefix`, resource.PrefixedUniqueId).
NAME_PREFIX_SUFFIX = "20261130153000000000000001"


@dataclass(frozen=True)
class Resource:
    """What a rule reads of a declared resource: its type, logical name and inputs (no secrets)."""

    typ: str
    name: str
    inputs: dict[str, Any]


@dataclass
class Stack:
    label: str
    resources: list[Resource]
    config: dict[str, Any]

    def of_type(self, typ: str) -> list[Resource]:
        return [r for r in self.resources if r.typ == typ]


def stack_of(label: str, run, config: dict[str, Any]) -> Stack:
    return Stack(label, [Resource(r.typ, r.name, unwrap_all(r.inputs)) for r in run.resources], config)


def mutated(stack: Stack, typ: str, name: str, change: Callable[[dict], dict | None]) -> Stack:
    """``stack`` with one resource's inputs changed (``change`` returns None: removed)."""
    resources = []
    for resource in stack.resources:
        if (resource.typ, resource.name) == (typ, name):
            inputs = change(json.loads(json.dumps(resource.inputs, default=str)))
            if inputs is None:
                continue
            resource = Resource(typ, name, inputs)
        resources.append(resource)
    assert len(resources) != len(stack.resources) or resources != stack.resources, f"no {typ} {name}"
    return Stack(stack.label, resources, stack.config)


def added(stack: Stack, resource: Resource) -> Stack:
    return Stack(stack.label, [*stack.resources, resource], stack.config)


# --- the runs ------------------------------------------------------------------------------


def _staging_without_endpoint() -> dict:
    config = stack_config("staging")
    config["swipesavvy:database"] = {**config["swipesavvy:database"], "operatorSecretsEndpoint": False}
    return config


def _database_only_without_nat() -> dict:
    """The database and the operator alone, in a VPC with no route out (its endpoint serves)."""
    config = {
        k: v for k, v in stack_config("staging").items() if k not in ("swipesavvy:backend", "swipesavvy:frontend")
    }
    config["swipesavvy:network"] = {**config["swipesavvy:network"], "natGateway": False}
    config["swipesavvy:monitoring"] = {"enabled": False}
    return config


@pytest.fixture(scope="module")
def stacks(staging, production, production_existing_vpc) -> list[Stack]:
    return [
        stack_of("staging", staging, stack_config("staging")),
        stack_of("production", production, stack_config("production")),
        stack_of("production-existing-vpc", production_existing_vpc, _production_existing_vpc_config()),
        stack_of("staging-without-endpoint", run_program(_staging_without_endpoint()), _staging_without_endpoint()),
        stack_of("database-only", run_program(_database_only_without_nat()), _database_only_without_nat()),
    ]


@pytest.fixture(scope="module")
def committed(stacks) -> Stack:
    return stacks[0]


# --- names and descriptions ----------------------------------------------------------------


@dataclass(frozen=True)
class TextRule:
    """``field`` of every ``typ`` resource: ``pattern`` (full match), length bounds."""

    typ: str
    field: str
    pattern: str
    max_length: int
    min_length: int = 1
    autonamed: bool = False
    forbidden: Callable[[str], str | None] = lambda value: None

    def value(self, resource: Resource) -> str | None:
        value = resource.inputs.get(self.field)
        if value is None and self.field == "name" and resource.inputs.get("namePrefix"):
            return resource.inputs["namePrefix"] + NAME_PREFIX_SUFFIX
        if value is None and self.autonamed:
            return resource.name + AUTONAME_SUFFIX
        return value

    def check(self, resource: Resource) -> list[str]:
        value = self.value(resource)
        if value is None:
            return []
        where = f"{resource.typ} {resource.name} {self.field} {value!r}"
        if not self.min_length <= len(value) <= self.max_length:
            return [f"{where}: {len(value)} characters, allowed {self.min_length}-{self.max_length}"]
        if not re.fullmatch(self.pattern, value, re.DOTALL):
            return [f"{where}: not of the allowed characters {self.pattern}"]
        problem = self.forbidden(value)
        return [f"{where}: {problem}"] if problem else []


def _db_identifier(value: str) -> str | None:
    return "two consecutive hyphens" if "--" in value else None


def _bucket_name(value: str) -> str | None:
    if ".." in value or re.fullmatch(r"\d+\.\d+\.\d+\.\d+", value):
        return "adjacent periods or an IP address"
    if value.startswith(("xn--", "sthree-", "amzn-s3-demo-")) or value.endswith(("-s3alias", "--ol-s3", ".mrap")):
        return "a reserved prefix or suffix"
    return None


def _security_group_name(value: str) -> str | None:
    return "starts with sg-" if value.startswith("sg-") else None


# EC2 API reference: CreateSecurityGroup GroupName/GroupDescription, and IpRange,
# PrefixListId, UserIdGroupPair Description: "Up to 255 characters in length. Valid
# characters: a-z, A-Z, 0-9, spaces, and ._-:/()#,@[]+=&;{}!$*" (no apostrophe).
EC2_TEXT = r"[a-zA-Z0-9 ._\-:/()#,@\[\]+=&;{}!$*]*"
# IAM API reference: CreateRole RoleName, CreateInstanceProfile, CreatePolicy, PutRolePolicy
# PolicyName: [\w+=,.@-]+; Description: up to 1,000 of [\u0009\u000A\u000D\u0020-\u007E\u00A1-\u00FF].
IAM_NAME = r"[\w+=,.@-]+"
IAM_DESCRIPTION = r"[\t\n\r\x20-\x7e\xa1-\xff]*"
# ELBv2 API reference: CreateLoadBalancer / CreateTargetGroup Name: at most 32 alphanumerics
# or hyphens, not beginning or ending with a hyphen (nor "internal-" for a load balancer).
ELB_NAME = r"(?!internal-)[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
# RDS API reference: CreateDBInstance DBInstanceIdentifier (1-63), FinalDBSnapshotIdentifier
# and CreateDBSnapshot DBSnapshotIdentifier (1-255), CreateDBParameterGroup
# DBParameterGroupName (1-255): letters, digits, hyphens, first a letter, no "--", no
# trailing hyphen; the provider accepts them lowercase only.
RDS_IDENTIFIER = r"[a-z][a-z0-9-]*(?<!-)"

TEXT_RULES = [
    TextRule(
        "aws:ec2/securityGroup:SecurityGroup", "name", EC2_TEXT, 255, autonamed=True, forbidden=_security_group_name
    ),
    TextRule("aws:ec2/securityGroup:SecurityGroup", "description", EC2_TEXT, 255),
    TextRule("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "description", EC2_TEXT, 255),
    TextRule("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule", "description", EC2_TEXT, 255),
    TextRule("aws:lb/loadBalancer:LoadBalancer", "name", ELB_NAME, 32, autonamed=True),
    TextRule("aws:lb/targetGroup:TargetGroup", "name", ELB_NAME, 32, autonamed=True),
    TextRule("aws:iam/role:Role", "name", IAM_NAME, 64, autonamed=True),
    TextRule("aws:iam/role:Role", "description", IAM_DESCRIPTION, 1000),
    TextRule("aws:iam/instanceProfile:InstanceProfile", "name", IAM_NAME, 128, autonamed=True),
    TextRule("aws:iam/policy:Policy", "name", IAM_NAME, 128, autonamed=True),
    TextRule("aws:iam/policy:Policy", "description", IAM_DESCRIPTION, 1000),
    TextRule("aws:iam/rolePolicy:RolePolicy", "name", IAM_NAME, 128, autonamed=True),
    # Lambda API reference: CreateFunction FunctionName (1-64 of a-zA-Z0-9-_), Description (0-256).
    TextRule("aws:lambda/function:Function", "name", r"[a-zA-Z0-9_-]+", 64, autonamed=True),
    TextRule("aws:lambda/function:Function", "description", r".*", 256, min_length=0),
    # S3 user guide, "General purpose bucket naming rules": 3-63 lowercase letters, digits,
    # periods, hyphens; a letter or digit first and last.
    TextRule(
        "aws:s3/bucket:Bucket",
        "bucket",
        r"[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?",
        63,
        min_length=3,
        autonamed=True,
        forbidden=_bucket_name,
    ),
    # CloudFront API reference: CreateFunction Name ([a-zA-Z0-9-_]{1,64}),
    # CreateOriginAccessControl OriginAccessControlConfig Name (1-64) and Description (0-256).
    TextRule("aws:cloudfront/function:Function", "name", r"[a-zA-Z0-9_-]+", 64, autonamed=True),
    TextRule("aws:cloudfront/originAccessControl:OriginAccessControl", "name", r".+", 64, autonamed=True),
    TextRule("aws:cloudfront/originAccessControl:OriginAccessControl", "description", r".*", 256, min_length=0),
    # CloudFront API reference: DistributionConfig and ResponseHeadersPolicyConfig Comment:
    # "cannot be longer than 128 characters".
    TextRule("aws:cloudfront/distribution:Distribution", "comment", r".*", 128, min_length=0),
    TextRule("aws:cloudfront/responseHeadersPolicy:ResponseHeadersPolicy", "comment", r".*", 128, min_length=0),
    TextRule("aws:rds/instance:Instance", "identifier", RDS_IDENTIFIER, 63, autonamed=True, forbidden=_db_identifier),
    TextRule("aws:rds/instance:Instance", "finalSnapshotIdentifier", RDS_IDENTIFIER, 255, forbidden=_db_identifier),
    # RDS API reference: CreateDBInstance DBName for PostgreSQL: 1-63 letters, digits, underscores, a letter first.
    TextRule("aws:rds/instance:Instance", "dbName", r"[A-Za-z][A-Za-z0-9_]*", 63),
    TextRule("aws:rds/snapshot:Snapshot", "dbSnapshotIdentifier", RDS_IDENTIFIER, 255, forbidden=_db_identifier),
    TextRule(
        "aws:rds/parameterGroup:ParameterGroup", "name", RDS_IDENTIFIER, 255, autonamed=True, forbidden=_db_identifier
    ),
    # RDS API reference: CreateDBSubnetGroup DBSubnetGroupName: up to 255 lowercase letters,
    # digits, periods, underscores, spaces, hyphens; not "default".
    TextRule("aws:rds/subnetGroup:SubnetGroup", "name", r"(?!default$)[a-z0-9._ -]+", 255, autonamed=True),
    # RDS: DBSubnetGroupDescription and parameter group Description are required.
    TextRule("aws:rds/subnetGroup:SubnetGroup", "description", r".+", 255),
    TextRule("aws:rds/parameterGroup:ParameterGroup", "description", r".+", 255),
    # EC2 API reference: CreateLaunchTemplate LaunchTemplateName (3-128 of [a-zA-Z0-9\(\)\.\-/_]),
    # VersionDescription (up to 255).
    TextRule("aws:ec2/launchTemplate:LaunchTemplate", "name", r"[a-zA-Z0-9().\-/_]+", 128, 3, autonamed=True),
    TextRule("aws:ec2/launchTemplate:LaunchTemplate", "description", r".*", 255, min_length=0),
    # Secrets Manager API reference: CreateSecret Name (1-512 of [A-Za-z0-9/_+=.@-]), Description (up to 2,048).
    TextRule("aws:secretsmanager/secret:Secret", "name", r"[A-Za-z0-9/_+=.@-]+", 512, autonamed=True),
    TextRule("aws:secretsmanager/secret:Secret", "description", r".*", 2048, min_length=0),
    # CloudWatch Logs API reference: CreateLogGroup logGroupName (1-512 of [\.\-_/#A-Za-z0-9]+),
    # PutDeliverySource / PutDeliveryDestination name (1-60 of [\w-]).
    TextRule("aws:cloudwatch/logGroup:LogGroup", "name", r"[.\-_/#A-Za-z0-9]+", 512, autonamed=True),
    TextRule("aws:cloudwatch/logDeliverySource:LogDeliverySource", "name", r"[\w-]+", 60),
    TextRule("aws:cloudwatch/logDeliveryDestination:LogDeliveryDestination", "name", r"[\w-]+", 60),
    # WAF API reference: CreateWebACL Name (1-128 of [\w\-]), Description (1-256 of
    # [\w+=:#@/\-,\.][\w+=:#@/\-,\.\s]+[\w+=:#@/\-,\.]), VisibilityConfig MetricName.
    TextRule("aws:wafv2/webAcl:WebAcl", "name", r"[\w-]+", 128, autonamed=True),
    TextRule("aws:wafv2/webAcl:WebAcl", "description", r"[\w+=:#@/\-,.][\w+=:#@/\-,.\s]+[\w+=:#@/\-,.]", 256),
]


# WAF API reference: Rule Name (1-128 of [\w\-]+) and VisibilityConfig MetricName
# (1-255 of [\w#:\.\-/]+), for the web ACL and each of its rules.
WAF_RULE_NAME, WAF_METRIC_NAME = r"[\w-]{1,128}", r"[\w#:.\-/]{1,255}"


def waf_problems(acl: Resource) -> list[str]:
    problems = []
    for rule in acl.inputs.get("rules", []):
        if not re.fullmatch(WAF_RULE_NAME, rule["name"]):
            problems.append(f"{acl.typ} {acl.name} rule name {rule['name']!r}: not {WAF_RULE_NAME}")
    for owner in [acl.inputs, *acl.inputs.get("rules", [])]:
        metric = owner["visibilityConfig"]["metricName"]
        if not re.fullmatch(WAF_METRIC_NAME, metric):
            problems.append(f"{acl.typ} {acl.name} metric name {metric!r}: not {WAF_METRIC_NAME}")
    return problems


def text_problems(stack: Stack) -> list[str]:
    return [
        problem
        for resource in stack.resources
        for rule in TEXT_RULES
        if rule.typ == resource.typ
        for problem in rule.check(resource)
    ] + [problem for acl in stack.of_type("aws:wafv2/webAcl:WebAcl") for problem in waf_problems(acl)]


def test_every_name_and_description_is_one_the_api_accepts(stacks):
    for stack in stacks:
        assert text_problems(stack) == [], stack.label


def test_every_rule_covers_a_resource_the_program_declares(stacks):
    """A rule for a type nothing declares would pass forever: each one meets a resource."""
    declared = {
        (r.typ, rule.field)
        for stack in stacks
        for r in stack.resources
        for rule in TEXT_RULES
        if rule.typ == r.typ and rule.value(r) is not None
    }
    assert {(rule.typ, rule.field) for rule in TEXT_RULES} <= declared


def test_a_bad_waf_rule_or_metric_name_is_named(stacks):
    production = stacks[1]
    acl_name = "swipesavvy-frontend-waf"

    def rename(inputs: dict) -> dict:
        inputs["rules"][2]["name"] = "api rate limit"
        inputs["visibilityConfig"]["metricName"] = "swipesavvy production cdn"
        return inputs

    assert text_problems(mutated(production, "aws:wafv2/webAcl:WebAcl", acl_name, rename)) == [
        f"aws:wafv2/webAcl:WebAcl {acl_name} rule name 'api rate limit': not {WAF_RULE_NAME}",
        f"aws:wafv2/webAcl:WebAcl {acl_name} metric name 'swipesavvy production cdn': not {WAF_METRIC_NAME}",
    ]


@pytest.mark.parametrize(
    ("typ", "name", "field", "bad", "problem"),
    [
        (
            "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
            "swipesavvy-frontend-api-from-vpc-origin",
            "description",
            "HTTP from CloudFront's servers",
            "not of the allowed characters",
        ),
        ("aws:ec2/securityGroup:SecurityGroup", "swipesavvy-db-sg", "description", "x" * 256, "256 characters"),
        ("aws:ec2/securityGroup:SecurityGroup", "swipesavvy-db-sg", "name", "sg-database", "starts with sg-"),
        (
            "aws:lb/loadBalancer:LoadBalancer",
            "swipesavvy-api-alb",
            "name",
            "swipesavvy-staging-api-load-balancer",
            "36 characters",
        ),
        ("aws:lb/targetGroup:TargetGroup", "swipesavvy-api-api", "name", "api-", "not of the allowed characters"),
        ("aws:iam/role:Role", "swipesavvy-db-operator-role", "name", "r" * 65, "65 characters"),
        ("aws:iam/role:Role", "swipesavvy-db-operator-role", "name", "operator role", "not of the allowed characters"),
        (
            "aws:lambda/function:Function",
            "swipesavvy-db-operator-function",
            "name",
            "db.operator",
            "not of the allowed",
        ),
        ("aws:s3/bucket:Bucket", "swipesavvy-frontend-site", "bucket", "SwipeSavvy-site", "not of the allowed"),
        ("aws:s3/bucket:Bucket", "swipesavvy-frontend-site", "bucket", "xn--site", "a reserved prefix or suffix"),
        (
            "aws:cloudfront/function:Function",
            "swipesavvy-frontend-spa-routes",
            "name",
            "spa routes",
            "not of the allowed",
        ),
        (
            "aws:cloudfront/originAccessControl:OriginAccessControl",
            "swipesavvy-frontend-oac",
            "name",
            "o" * 65,
            "65 characters",
        ),
        (
            "aws:rds/instance:Instance",
            "swipesavvy-db-postgres",
            "finalSnapshotIdentifier",
            "swipesavvy-final-",
            "not of the allowed",
        ),
        (
            "aws:rds/instance:Instance",
            "swipesavvy-db-postgres",
            "finalSnapshotIdentifier",
            "final--1",
            "two consecutive hyphens",
        ),
        ("aws:rds/instance:Instance", "swipesavvy-db-postgres", "identifier", "1-postgres", "not of the allowed"),
        (
            "aws:rds/snapshot:Snapshot",
            "swipesavvy-db-after-schema",
            "dbSnapshotIdentifier",
            "after_schema",
            "not of the allowed",
        ),
        ("aws:rds/parameterGroup:ParameterGroup", "swipesavvy-db-params", "name", "Params", "not of the allowed"),
        ("aws:rds/subnetGroup:SubnetGroup", "swipesavvy-db-subnets", "name", "default", "not of the allowed"),
        ("aws:ec2/launchTemplate:LaunchTemplate", "swipesavvy-api-lt", "name", "lt", "2 characters"),
        ("aws:secretsmanager/secret:Secret", "swipesavvy-db-backend", "name", "db login", "not of the allowed"),
        ("aws:cloudfront/distribution:Distribution", "swipesavvy-frontend-cdn", "comment", "c" * 129, "129 characters"),
        (
            "aws:cloudwatch/logGroup:LogGroup",
            "swipesavvy-db-operator-logs",
            "name",
            "/aws/lambda/a b",
            "not of the allowed",
        ),
        (
            "aws:cloudwatch/logDeliverySource:LogDeliverySource",
            "swipesavvy-frontend-access-logs",
            "name",
            "s" * 61,
            "61 characters",
        ),
    ],
)
def test_a_bad_name_or_description_is_named(committed, typ, name, field, bad, problem):
    bad_stack = mutated(committed, typ, name, lambda inputs: {**inputs, field: bad})
    problems = text_problems(bad_stack)
    assert len(problems) == 1 and problems[0].startswith(f"{typ} {name} {field} {bad!r}: ") and problem in problems[0]


# --- sizes ---------------------------------------------------------------------------------

USER_DATA_BYTES = 16 * 1024  # EC2 user guide, "Run commands at launch": 16 KB, before base64
ROLE_INLINE_POLICY_CHARS = 10240  # IAM user guide, "IAM and AWS STS quotas": a role's inline policies together
MANAGED_POLICY_CHARS = 6144  # same page: one managed policy
TRUST_POLICY_CHARS = 2048  # same page: a role trust policy (default quota)
LAMBDA_ZIP_BYTES = 50 * 1024 * 1024  # Lambda developer guide, "Lambda quotas": direct upload, zipped
LAMBDA_UNZIPPED_BYTES = 250 * 1024 * 1024  # same page: unzipped, layers included
LAMBDA_ENVIRONMENT_BYTES = 4 * 1024  # same page: all environment variables together
LAMBDA_TIMEOUT_S = 900  # same page: function timeout
CLOUDFRONT_FUNCTION_BYTES = 10 * 1024  # CloudFront developer guide, "Quotas on CloudFront Functions"


def iam_size(policy: str) -> int:
    """IAM counts a policy's characters without whitespace."""
    return len(re.sub(r"\s", "", policy))


def _role_key(stack: Stack, reference: str) -> str:
    """The role a policy or attachment names (by id, name or ARN) -> its logical name."""
    for role in stack.of_type("aws:iam/role:Role"):
        if reference in (f"{role.name}-id", role.name, role.inputs.get("name")) or reference.endswith(
            f":role/{role.name}"
        ):
            return role.name
    return reference


def size_problems(stack: Stack) -> list[str]:
    problems = []
    for template in stack.of_type("aws:ec2/launchTemplate:LaunchTemplate"):
        size = len(base64.b64decode(template.inputs.get("userData", "")))
        if size > USER_DATA_BYTES:
            problems.append(f"{template.name} user data: {size} bytes, at most {USER_DATA_BYTES}")
    inline: dict[str, int] = defaultdict(int)
    for policy in stack.of_type("aws:iam/rolePolicy:RolePolicy"):
        inline[_role_key(stack, policy.inputs["role"])] += iam_size(policy.inputs["policy"])
    problems += [
        f"role {role} inline policies: {size} characters, at most {ROLE_INLINE_POLICY_CHARS}"
        for role, size in inline.items()
        if size > ROLE_INLINE_POLICY_CHARS
    ]
    for policy in stack.of_type("aws:iam/policy:Policy"):
        if (size := iam_size(policy.inputs["policy"])) > MANAGED_POLICY_CHARS:
            problems.append(f"managed policy {policy.name}: {size} characters, at most {MANAGED_POLICY_CHARS}")
    for role in stack.of_type("aws:iam/role:Role"):
        if (size := iam_size(role.inputs["assumeRolePolicy"])) > TRUST_POLICY_CHARS:
            problems.append(f"role {role.name} trust policy: {size} characters, at most {TRUST_POLICY_CHARS}")
    for function in stack.of_type("aws:lambda/function:Function"):
        problems += _lambda_size_problems(function)
    for function in stack.of_type("aws:cloudfront/function:Function"):
        if (size := len(function.inputs["code"].encode())) > CLOUDFRONT_FUNCTION_BYTES:
            problems.append(f"CloudFront function {function.name}: {size} bytes, at most {CLOUDFRONT_FUNCTION_BYTES}")
    return problems


def _lambda_size_problems(function: Resource) -> list[str]:
    problems = []
    kind, path = function.inputs["code"]  # unwrap_all gives an archive as (kind, path)
    archive = Path(path)
    if (size := archive.stat().st_size) > LAMBDA_ZIP_BYTES:
        problems.append(f"{function.name} archive: {size} bytes, at most {LAMBDA_ZIP_BYTES} zipped")
    with zipfile.ZipFile(archive) as opened:
        if (size := sum(info.file_size for info in opened.infolist())) > LAMBDA_UNZIPPED_BYTES:
            problems.append(f"{function.name} archive: {size} bytes unzipped, at most {LAMBDA_UNZIPPED_BYTES}")
    if (timeout := int(function.inputs.get("timeout", 3))) > LAMBDA_TIMEOUT_S:
        problems.append(f"{function.name} timeout: {timeout} s, at most {LAMBDA_TIMEOUT_S}")
    variables = (function.inputs.get("environment") or {}).get("variables") or {}
    if (size := sum(len(k) + len(str(v)) for k, v in variables.items())) > LAMBDA_ENVIRONMENT_BYTES:
        problems.append(f"{function.name} environment: {size} bytes, at most {LAMBDA_ENVIRONMENT_BYTES}")
    return problems


def test_everything_fits_the_service_quotas(stacks):
    for stack in stacks:
        assert size_problems(stack) == [], stack.label


def test_user_data_over_16_kb_is_named(committed):
    big = base64.b64encode(b"#cloud-config\n" + b"#" * USER_DATA_BYTES).decode()
    bad = mutated(
        committed, "aws:ec2/launchTemplate:LaunchTemplate", "swipesavvy-api-lt", lambda i: {**i, "userData": big}
    )
    assert size_problems(bad) == [
        f"swipesavvy-api-lt user data: {USER_DATA_BYTES + 14} bytes, at most {USER_DATA_BYTES}"
    ]


def _allow(actions: Iterable[str]) -> str:
    return json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": list(actions), "Resource": "*"}]}
    )


def test_inline_policies_of_one_role_are_counted_together(committed):
    # Each fits on its own; together they are over the role's limit.
    half = _allow(f"ec2:DescribeThing{i:04d}" for i in range(220))
    assert iam_size(half) < ROLE_INLINE_POLICY_CHARS < 2 * iam_size(half)
    bad = mutated(
        committed, "aws:iam/rolePolicy:RolePolicy", "swipesavvy-api-instance", lambda i: {**i, "policy": half}
    )
    bad = added(
        bad, Resource("aws:iam/rolePolicy:RolePolicy", "extra", {"role": "swipesavvy-api-instance", "policy": half})
    )
    (problem,) = size_problems(bad)
    assert problem == f"role swipesavvy-api-instance inline policies: {2 * iam_size(half)} characters, at most 10240"


def test_a_managed_policy_over_6144_characters_is_named(committed):
    long = _allow(f"ec2:DescribeThing{i:04d}" for i in range(300))
    bad = added(committed, Resource("aws:iam/policy:Policy", "long", {"policy": long}))
    assert size_problems(bad) == [f"managed policy long: {iam_size(long)} characters, at most 6144"]


def test_a_long_trust_policy_is_named(committed):
    trust = json.dumps({"Statement": [{"Principal": {"AWS": [f"arn:aws:iam::{i:012d}:root" for i in range(80)]}}]})
    bad = mutated(committed, "aws:iam/role:Role", "swipesavvy-api-instance", lambda i: {**i, "assumeRolePolicy": trust})
    assert size_problems(bad) == [
        f"role swipesavvy-api-instance trust policy: {iam_size(trust)} characters, at most 2048"
    ]


def test_a_lambda_archive_or_environment_over_the_quota_is_named(committed, tmp_path):
    big = tmp_path / "big.zip"
    with zipfile.ZipFile(big, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("zeros", b"\0" * (LAMBDA_UNZIPPED_BYTES + 1))  # compresses to almost nothing
    name = "swipesavvy-db-operator-function"
    bad = mutated(committed, "aws:lambda/function:Function", name, lambda i: {**i, "code": ["FileArchive", str(big)]})
    assert size_problems(bad) == [
        f"{name} archive: {LAMBDA_UNZIPPED_BYTES + 1} bytes unzipped, at most {LAMBDA_UNZIPPED_BYTES}"
    ]
    bad = mutated(committed, "aws:lambda/function:Function", name, lambda i: {**i, "timeout": 901})
    assert size_problems(bad) == [f"{name} timeout: 901 s, at most 900"]
    environment = {"variables": {"LONG": "v" * LAMBDA_ENVIRONMENT_BYTES}}
    bad = mutated(committed, "aws:lambda/function:Function", name, lambda i: {**i, "environment": environment})
    assert size_problems(bad) == [f"{name} environment: {LAMBDA_ENVIRONMENT_BYTES + 4} bytes, at most 4096"]


def test_the_operator_archive_is_checked_as_built(committed):
    functions = committed.of_type("aws:lambda/function:Function")
    assert len(functions) == 2  # the operator and its read-only reader, one archive
    for function in functions:
        kind, path = function.inputs["code"]
        assert kind == "FileArchive" and 0 < Path(path).stat().st_size < LAMBDA_ZIP_BYTES


def test_a_cloudfront_function_over_10_kb_is_named(committed):
    code = "function handler(event) { return event.request; }\n" + "//" + "x" * CLOUDFRONT_FUNCTION_BYTES
    name = "swipesavvy-frontend-spa-routes"
    bad = mutated(committed, "aws:cloudfront/function:Function", name, lambda i: {**i, "code": code})
    assert size_problems(bad) == [f"CloudFront function {name}: {len(code)} bytes, at most {CLOUDFRONT_FUNCTION_BYTES}"]


class LongDatadogPermissions(RecordingMocks):
    """Datadog's published permission list at its real length (hundreds of actions, more than
    one policy holds), which the mocks otherwise keep to four."""

    ACTIONS = [f"service{i % 40:02d}:DescribeSomeResourceKind{i:04d}" for i in range(700)]

    def call(self, args):
        if args.token == "datadog:aws/getIntegrationIamPermissions:getIntegrationIamPermissions":
            return {"id": "permissions", "iamPermissions": self.ACTIONS}
        return super().call(args)


def test_a_long_datadog_permission_list_becomes_managed_policies_iam_accepts():
    # Production owns the account's integration (tests/test_monitoring.py).
    run = run_program(stack_config("production"), stack="production", mocks=LongDatadogPermissions())
    stack = stack_of("production-long-datadog-list", run, stack_config("production"))
    assert size_problems(stack) == []
    policies = [p for p in stack.of_type("aws:iam/policy:Policy") if "datadog-integration" in p.name]
    assert len(policies) == -(-iam_size(_allow(LongDatadogPermissions.ACTIONS)) // MANAGED_POLICY_CHARS)
    granted = [a for p in policies for s in json.loads(p.inputs["policy"])["Statement"] for a in s["Action"]]
    assert granted == sorted(LongDatadogPermissions.ACTIONS)
    attached = {
        a.inputs["policyArn"].rsplit("/", 1)[-1]
        for a in stack.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a.inputs["role"] == "swipesavvy-monitoring-datadog-integration"
    }
    assert attached == {p.name for p in policies}
    assert not [p for p in stack.of_type("aws:iam/rolePolicy:RolePolicy") if "datadog" in p.name]


# --- reachability --------------------------------------------------------------------------
#
# A compute calls what its role may call, and the database when its role may read a login.
# - An interface endpoint with private DNS answers the service's regular name for the whole
#   VPC: every caller in the VPC goes through it, and its security group must admit each one
#   on 443 (PrivateLink guide, "DNS hostnames"; EC2 API reference, CreateVpcEndpoint
#   PrivateDnsEnabled); private DNS needs the VPC's DNS support and DNS hostnames on (same
#   guide, "DNS attributes for your VPC").
# - Without one, a private subnet reaches a service only through a NAT gateway route
#   (VPC user guide, "NAT gateways"; "Route tables").
# - Security groups are stateful allow-lists: a connection needs an egress rule on the
#   caller's group and an ingress rule on the callee's for the port (VPC user guide,
#   "Security group rules").
# - CloudFront reaches an internal load balancer through a VPC origin; the load balancer's
#   group admits only CloudFront's service-managed CloudFront-VPCOrigins-Service-SG (option 2,
#   "restricts the traffic only to your CloudFront distributions"; the origin-facing prefix
#   list would admit every distribution), and the VPC needs an internet gateway (CloudFront
#   developer guide, "Restrict access with VPC origins").

HTTPS = 443
POSTGRES = 5432
ANYWHERE = "0.0.0.0/0"
# What the Lambda service itself does with a VPC function's role (its network interfaces,
# its logs and traces), not calls the function's code makes from the VPC.
LAMBDA_SERVICE_ACTIONS = frozenset({"ec2", "logs", "xray"})
# AmazonSSMManagedInstanceCore: the SSM agent's endpoints (Session Manager).
MANAGED_POLICY_SERVICES = {"AmazonSSMManagedInstanceCore": {"ssm", "ssmmessages", "ec2messages"}}


@dataclass
class Compute:
    name: str
    groups: set[str]
    subnets: list[str]
    services: set[str] = field(default_factory=set)
    database: bool = False
    internet: bool = False
    target_groups: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Rule:
    group: str
    port: int
    peer: str  # a security group id, a CIDR, or a prefix list id


class NetworkModel:
    def __init__(self, stack: Stack):
        self.stack = stack
        rules = [r for r in stack.resources if r.typ.startswith("aws:vpc/securityGroup")]
        self.ingress = {self._rule(r) for r in rules if "Ingress" in r.typ}
        self.egress = {self._rule(r) for r in rules if "Egress" in r.typ}
        self.computes = self._computes()
        self.database_groups = {
            g for db in stack.of_type("aws:rds/instance:Instance") for g in db.inputs["vpcSecurityGroupIds"]
        }
        self.endpoints = {
            e.inputs["serviceName"].rsplit(".", 1)[-1]: e
            for e in stack.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")
            if e.inputs.get("privateDnsEnabled")
        }

    @staticmethod
    def _rule(resource: Resource) -> Rule:
        i = resource.inputs
        assert i["ipProtocol"] == "tcp" and i["fromPort"] == i["toPort"], resource.name
        peer = i.get("referencedSecurityGroupId") or i.get("cidrIpv4") or i.get("prefixListId")
        return Rule(i["securityGroupId"], int(i["fromPort"]), peer)

    # -- who calls what ----------------------------------------------------------------------

    def _role_services(self, role: str, ignore: frozenset[str] = frozenset()) -> tuple[set[str], bool]:
        """The services a role's policies let it call, and whether it may read a database login."""
        stack, services, database = self.stack, set(), False
        for policy in stack.of_type("aws:iam/rolePolicy:RolePolicy"):
            if _role_key(stack, policy.inputs["role"]) != role:
                continue
            for statement in json.loads(policy.inputs["policy"])["Statement"]:
                services |= {a.split(":")[0] for a in _listed(statement["Action"])} - ignore
                # The master secret or a login's (swipesavvy/<stack>/db/...): it connects with it.
                database |= any(
                    r == MASTER_SECRET_ARN or (":secret:swipesavvy/" in r and "/db/" in r)
                    for r in _listed(statement["Resource"])
                )
        for attachment in stack.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment"):
            if _role_key(stack, attachment.inputs["role"]) == role:
                services |= MANAGED_POLICY_SERVICES.get(attachment.inputs["policyArn"].rsplit("/", 1)[-1], set())
        return services, database

    def _computes(self) -> list[Compute]:
        stack, computes = self.stack, []
        for function in stack.of_type("aws:lambda/function:Function"):
            vpc = function.inputs.get("vpcConfig") or {}
            services, database = self._role_services(_role_key(stack, function.inputs["role"]), LAMBDA_SERVICE_ACTIONS)
            groups, subnets = set(vpc.get("securityGroupIds", [])), vpc.get("subnetIds", [])
            computes.append(Compute(function.name, groups, subnets, services, database))
        for group in stack.of_type("aws:autoscaling/group:Group"):
            (template,) = [
                t
                for t in stack.of_type("aws:ec2/launchTemplate:LaunchTemplate")
                if f"{t.name}-id" == group.inputs["launchTemplate"]["id"]
            ]
            profile_name = template.inputs["iamInstanceProfile"]["arn"].rsplit("/", 1)[-1]
            (profile,) = [p for p in stack.of_type("aws:iam/instanceProfile:InstanceProfile") if p.name == profile_name]
            services, database = self._role_services(_role_key(stack, profile.inputs["role"]))
            groups = {g for interface in template.inputs["networkInterfaces"] for g in interface["securityGroups"]}
            computes.append(
                Compute(
                    group.name,
                    groups,
                    group.inputs["vpcZoneIdentifiers"],
                    services,
                    database,
                    internet=True,  # the instances install packages and send to Datadog
                    target_groups=group.inputs.get("targetGroupArns", []),
                )
            )
        return computes

    # -- paths -------------------------------------------------------------------------------

    def routes_out(self, subnets: list[str]) -> bool:
        """Every subnet has a default route to a NAT gateway in a subnet routed to an internet gateway."""
        if not self.stack.of_type("aws:ec2/vpc:Vpc"):
            return True  # an existing VPC: its routes are its own, not declared here
        tables = {
            a.inputs["subnetId"]: a.inputs["routeTableId"]
            for a in self.stack.of_type("aws:ec2/routeTableAssociation:RouteTableAssociation")
        }
        routes = {
            f"{t.name}-id": t.inputs.get("routes") or [] for t in self.stack.of_type("aws:ec2/routeTable:RouteTable")
        }
        nats = {f"{n.name}-id": n.inputs["subnetId"] for n in self.stack.of_type("aws:ec2/natGateway:NatGateway")}

        def default(subnet: str) -> dict:
            return next((r for r in routes.get(tables.get(subnet), []) if r.get("cidrBlock") == ANYWHERE), {})

        def via_nat(subnet: str) -> bool:
            nat_subnet = nats.get(default(subnet).get("natGatewayId"))
            return nat_subnet is not None and bool(default(nat_subnet).get("gatewayId"))

        return all(via_nat(s) for s in subnets)

    @staticmethod
    def allows(rules: set[Rule], groups: Iterable[str], port: int, peers: Iterable[str]) -> bool:
        return any(Rule(g, port, p) in rules for g in groups for p in peers)

    def reaches_internet(self, compute: Compute) -> bool:
        return self.routes_out(compute.subnets) and self.allows(self.egress, compute.groups, HTTPS, [ANYWHERE])

    def reaches_service(self, compute: Compute, service: str) -> bool:
        endpoint = self.endpoints.get(service)
        if endpoint is None:
            return self.reaches_internet(compute)
        endpoint_groups = endpoint.inputs["securityGroupIds"]
        return self.allows(self.egress, compute.groups, HTTPS, [*endpoint_groups, ANYWHERE]) and self.allows(
            self.ingress, endpoint_groups, HTTPS, compute.groups
        )

    def reaches_database(self, compute: Compute) -> bool:
        return self.allows(self.egress, compute.groups, POSTGRES, self.database_groups) and self.allows(
            self.ingress, self.database_groups, POSTGRES, compute.groups
        )

    # -- what the stack needs ----------------------------------------------------------------

    def listeners(self) -> list[tuple[Resource, int, Resource]]:
        """(load balancer, listener port, target group) of every forwarding listener."""
        balancers = {_arn(b): b for b in self.stack.of_type("aws:lb/loadBalancer:LoadBalancer")}
        targets = {_arn(t): t for t in self.stack.of_type("aws:lb/targetGroup:TargetGroup")}
        return [
            (
                balancers[listener.inputs["loadBalancerArn"]],
                int(listener.inputs["port"]),
                targets[action["targetGroupArn"]],
            )
            for listener in self.stack.of_type("aws:lb/listener:Listener")
            for action in listener.inputs["defaultActions"]
            if action["type"] == "forward"
        ]

    def targets(self, target_group: Resource) -> list[Compute]:
        return [c for c in self.computes if _arn(target_group) in c.target_groups]

    def needed_ingress(self) -> set[Rule]:
        needed = set()
        for compute in self.computes:
            for service in compute.services & set(self.endpoints):
                endpoint_groups = self.endpoints[service].inputs["securityGroupIds"]
                needed |= {Rule(e, HTTPS, g) for e in endpoint_groups for g in compute.groups}
            if compute.database:
                needed |= {Rule(d, POSTGRES, g) for d in self.database_groups for g in compute.groups}
        runner_cidrs = self.stack.config.get("swipesavvy:database", {}).get("deployRunnerCidrs", [])
        needed |= {Rule(d, POSTGRES, cidr) for d in self.database_groups for cidr in runner_cidrs}
        for balancer, port, target in self.listeners():
            # Only CloudFront comes in (through its VPC origin); the load balancer reaches its targets.
            balancer_groups = balancer.inputs["securityGroups"]
            needed |= {Rule(g, port, VPC_ORIGINS_SECURITY_GROUP_ID) for g in balancer_groups}
            for compute in self.targets(target):
                needed |= {Rule(c, int(target.inputs["port"]), g) for c in compute.groups for g in balancer_groups}
        return needed

    def empty_groups(self) -> set[str]:
        """Security groups with no member: e.g. the backend tier's, which the network creates
        (so the database can name it) in a stack without a backend."""
        groups = {f"{g.name}-id" for g in self.stack.of_type("aws:ec2/securityGroup:SecurityGroup")}
        members = {g for c in self.computes for g in c.groups}
        members |= {
            g for b in self.stack.of_type("aws:lb/loadBalancer:LoadBalancer") for g in b.inputs["securityGroups"]
        }
        members |= {
            g for e in self.stack.of_type("aws:ec2/vpcEndpoint:VpcEndpoint") for g in e.inputs["securityGroupIds"]
        }
        return groups - members - self.database_groups

    def problems(self) -> list[str]:
        problems = []
        for compute in self.computes:
            problems += [
                f"{compute.name} cannot reach {s}"
                for s in sorted(compute.services)
                if not self.reaches_service(compute, s)
            ]
            if compute.database and not self.reaches_database(compute):
                problems.append(f"{compute.name} cannot reach the database")
            if compute.internet and not self.reaches_internet(compute):
                problems.append(f"{compute.name} cannot reach the internet on 443")
        problems += [
            f"{r.group} admits {r.peer} on {r.port}, which nothing needs"
            for r in sorted(self.ingress - self.needed_ingress(), key=repr)
            if r.peer not in self.empty_groups()  # a group nothing is in admits nobody
        ]
        for service, endpoint in self.endpoints.items():
            vpcs = [v for v in self.stack.of_type("aws:ec2/vpc:Vpc") if f"{v.name}-id" == endpoint.inputs["vpcId"]]
            if any(not (v.inputs.get("enableDnsSupport") and v.inputs.get("enableDnsHostnames")) for v in vpcs):
                problems.append(f"the {service} endpoint's private DNS needs DNS support and hostnames in its VPC")
        return problems + self._load_balancer_problems()

    def _load_balancer_problems(self) -> list[str]:
        problems = []
        vpc_origins = {
            o.inputs["vpcOriginEndpointConfig"]["arn"] for o in self.stack.of_type("aws:cloudfront/vpcOrigin:VpcOrigin")
        }
        for balancer in self.stack.of_type("aws:lb/loadBalancer:LoadBalancer"):
            if not balancer.inputs.get("internal"):
                problems.append(f"{balancer.name} is internet-facing: only CloudFront's VPC origin may reach it")
            if _arn(balancer) not in vpc_origins:
                problems.append(f"{balancer.name} is no CloudFront VPC origin")
        for balancer, _, target in self.listeners():
            port = int(target.inputs["port"])
            for compute in self.targets(target):
                if not self.allows(self.egress, balancer.inputs["securityGroups"], port, compute.groups):
                    problems.append(f"{balancer.name} cannot reach {compute.name} on {port}")
        new_vpc = bool(self.stack.of_type("aws:ec2/vpc:Vpc"))
        if vpc_origins and new_vpc and not self.stack.of_type("aws:ec2/internetGateway:InternetGateway"):
            problems.append("a VPC origin needs an internet gateway attached to the VPC")
        return problems


def _listed(value: str | list[str]) -> list[str]:
    return value if isinstance(value, list) else [value]


def _arn(resource: Resource) -> str:
    """The ARN the mocks give a load balancer or target group (ops/rehearsal/mock_program.py)."""
    if resource.typ == "aws:lb/loadBalancer:LoadBalancer":
        return f"arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}:loadbalancer/app/{resource.name}/1"
    return f"arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}:{resource.name}"


def test_every_compute_reaches_what_it_calls_and_nothing_else_is_admitted(stacks):
    for stack in stacks:
        assert NetworkModel(stack).problems() == [], stack.label


def test_the_model_sees_the_computes_and_what_they_call(committed):
    computes = {c.name: c for c in NetworkModel(committed).computes}
    assert computes["swipesavvy-db-operator-function"].services == {"secretsmanager"}
    assert computes["swipesavvy-db-operator-function"].database
    assert computes["swipesavvy-api-asg"].services == {"s3", "secretsmanager", "ssm", "ssmmessages", "ec2messages"}
    assert computes["swipesavvy-api-asg"].database  # it reads its login's secret
    assert set(NetworkModel(committed).endpoints) == {"secretsmanager"}


def test_an_endpoint_that_admits_only_the_operator_cuts_the_backend_off(committed):
    # The issue-20 blocker: private DNS sends the backend's boot to the endpoint too.
    rule = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
    bad = mutated(committed, rule, "swipesavvy-db-operator-endpoint-from-backend", lambda inputs: None)
    assert NetworkModel(bad).problems() == ["swipesavvy-api-asg cannot reach secretsmanager"]


def test_an_ingress_nothing_needs_is_named(committed):
    extra = Resource(
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
        "db-from-anywhere",
        {
            "securityGroupId": "swipesavvy-db-sg-id",
            "ipProtocol": "tcp",
            "fromPort": 5432,
            "toPort": 5432,
            "cidrIpv4": ANYWHERE,
        },
    )
    assert NetworkModel(added(committed, extra)).problems() == [
        "swipesavvy-db-sg-id admits 0.0.0.0/0 on 5432, which nothing needs"
    ]


def test_a_private_subnet_without_its_nat_route_is_named(committed):
    bad = mutated(committed, "aws:ec2/routeTable:RouteTable", "swipesavvy-private", lambda i: {**i, "routes": []})
    assert NetworkModel(bad).problems() == [
        "swipesavvy-api-asg cannot reach ec2messages",
        "swipesavvy-api-asg cannot reach s3",
        "swipesavvy-api-asg cannot reach ssm",
        "swipesavvy-api-asg cannot reach ssmmessages",
        "swipesavvy-api-asg cannot reach the internet on 443",
    ]


def test_the_database_without_the_operators_ingress_is_named(committed):
    rule = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
    bad = mutated(committed, rule, "swipesavvy-db-operator-db-from-operator", lambda inputs: None)
    assert NetworkModel(bad).problems() == [
        "swipesavvy-db-operator-reader-function cannot reach the database",
        "swipesavvy-db-operator-function cannot reach the database",
    ]


def test_private_dns_without_vpc_dns_hostnames_is_named(committed):
    bad = mutated(committed, "aws:ec2/vpc:Vpc", "swipesavvy-vpc", lambda i: {**i, "enableDnsHostnames": False})
    assert NetworkModel(bad).problems() == [
        "the secretsmanager endpoint's private DNS needs DNS support and hostnames in its VPC"
    ]


def test_a_public_load_balancer_or_one_cloudfront_does_not_reach_is_named(committed):
    bad = mutated(
        committed, "aws:lb/loadBalancer:LoadBalancer", "swipesavvy-api-alb", lambda i: {**i, "internal": False}
    )
    assert NetworkModel(bad).problems() == [
        "swipesavvy-api-alb is internet-facing: only CloudFront's VPC origin may reach it"
    ]
    bad = mutated(
        committed, "aws:cloudfront/vpcOrigin:VpcOrigin", "swipesavvy-frontend-api-origin", lambda inputs: None
    )
    assert NetworkModel(bad).problems() == ["swipesavvy-api-alb is no CloudFront VPC origin"]
    bad = mutated(committed, "aws:ec2/internetGateway:InternetGateway", "swipesavvy-igw", lambda inputs: None)
    assert "a VPC origin needs an internet gateway attached to the VPC" in NetworkModel(bad).problems()


def test_a_load_balancer_admitting_more_than_cloudfront_is_named(committed):
    extra = Resource(
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
        "alb-from-the-vpc",
        {
            "securityGroupId": "swipesavvy-api-alb-sg-id",
            "ipProtocol": "tcp",
            "fromPort": 80,
            "toPort": 80,
            "cidrIpv4": "10.40.0.0/16",
        },
    )
    assert NetworkModel(added(committed, extra)).problems() == [
        "swipesavvy-api-alb-sg-id admits 10.40.0.0/16 on 80, which nothing needs"
    ]


def test_deploy_runner_cidrs_are_the_only_addresses_the_database_admits(stacks):
    existing = next(s for s in stacks if s.label == "production-existing-vpc")
    model = NetworkModel(existing)
    cidrs = {r.peer for r in model.ingress if r.group in model.database_groups and not r.peer.startswith("swipesavvy")}
    assert cidrs == {"10.99.0.0/24"} and all(ipaddress.ip_network(c).is_private for c in cidrs)


# --- the third review (issue 28) ---------------------------------------------------------------
#
# Each rule reads the declared program (with its dependencies and ignore_changes) and names
# what breaks it, with the page it comes from:
# - A rollback launches instances that "match the configuration that you last saved on the Auto
#   Scaling group before starting the instance refresh" (EC2 Auto Scaling user guide, "Undo
#   changes with a manual or auto rollback"): the group must not save a new launch template
#   version itself (no instance_refresh of its own, its version ignored); the rollout refreshes
#   to it with a desired configuration, within one provider call (components/refresh_timing.py).
# - The launched previous version reads the previous release: the instance role reads
#   releases/*, and the group launches after the role's policy exists.
# - ALB access logs: only the logdelivery.elasticloadbalancing.amazonaws.com principal (ELB
#   user guide, "Enable access logs for your Application Load Balancer").
# - RDS exports to /aws/rds/instance/<identifier>/<log> (RDS user guide, "Publishing PostgreSQL
#   logs to Amazon CloudWatch Logs") and creates those groups never expiring: each exists first,
#   with a retention.
# - TLS verified (RDS user guide, "Using SSL/TLS to encrypt a connection to a DB instance"):
#   the operator's connection, the backend's env file and the agent's postgres check use
#   verify-full with RDS's CA, which the instance names (ca_cert_identifier).
# - Datadog's extended resource collection is off unless its permissions are granted (Datadog
#   API reference, "Get resource collection IAM permissions"; pulumi-datadog
#   IntegrationAccount resources_config: on by default).
# - One NAT gateway per zone when asked: each private subnet routes through a NAT gateway in a
#   public subnet of its own zone (VPC user guide, "NAT gateway basics").
# - "To update a VPC origin, first disassociate it from every distribution" (CloudFront
#   developer guide, "Restrict access with VPC origins", Update a VPC origin): a change of its
#   endpoint settings replaces it (create before delete, so the distribution moves first).

ASG = "aws:autoscaling/group:Group"
ROLLOUT = "pulumi-python:dynamic/autoscaling:InstanceRefreshWait"


def third_review_problems(stack: Stack, run) -> list[str]:
    return [
        *_rollout_problems(stack, run),
        *_log_problems(stack, run),
        *_tls_problems(stack),
        *_datadog_problems(stack),
        *_nat_problems(stack),
        *[
            f"{origin.name} would be edited while a distribution uses it"
            for origin in stack.of_type("aws:cloudfront/vpcOrigin:VpcOrigin")
            if run.replace_on_changes.get((origin.typ, origin.name)) != ["vpcOriginEndpointConfig"]
        ],
    ]


def _rollout_problems(stack: Stack, run) -> list[str]:
    from components.refresh_timing import CALL_BUDGET_SECONDS, ROLLBACK_TIMEOUT_SECONDS

    problems = []
    rollouts = {r.inputs["group_name"]: r.inputs for r in stack.of_type(ROLLOUT)}
    for group in stack.of_type(ASG):
        if "instanceRefresh" in group.inputs:
            problems.append(f"{group.name} starts its own refresh: a rollback would restore the new version")
        if "launchTemplate.version" not in run.ignored.get((ASG, group.name), []):
            problems.append(f"{group.name} saves a new launch template version before its refresh")
        rollout = rollouts.get(group.name)
        if rollout is None or rollout["launch_template_version"] != group.inputs["launchTemplate"]["version"]:
            problems.append(f"{group.name} has no rollout keyed to its launch template version")
        elif rollout["timeout_seconds"] + ROLLBACK_TIMEOUT_SECONDS > CALL_BUDGET_SECONDS:
            problems.append(f"{group.name}'s rollout cannot wait for its refresh within one provider call")
        policies = [p.name for p in stack.of_type("aws:iam/rolePolicy:RolePolicy") if p.name.endswith("-instance")]
        if not set(policies) <= set(run.dependencies[(ASG, group.name)]):
            problems.append(f"{group.name} may launch before its role's policy exists")
    for policy in stack.of_type("aws:iam/rolePolicy:RolePolicy"):
        for statement in json.loads(policy.inputs["policy"])["Statement"]:
            reads = [r for r in _listed(statement["Resource"]) if "s3:GetObject" in _listed(statement["Action"])]
            problems += [f"{policy.name} reads one release only: {r}" for r in reads if not r.endswith("/releases/*")]
    return problems


def _log_problems(stack: Stack, run) -> list[str]:
    problems = []
    for policy in stack.of_type("aws:s3/bucketPolicy:BucketPolicy"):
        for statement in json.loads(policy.inputs["policy"])["Statement"]:
            # ELB writes under <prefix>/AWSLogs/<account>/ (the site's CloudFront logs go elsewhere).
            elb_logs = "/AWSLogs/" in str(statement.get("Resource")) and statement["Effect"] == "Allow"
            if elb_logs and statement["Principal"] != {"Service": "logdelivery.elasticloadbalancing.amazonaws.com"}:
                problems.append(f"{policy.name} lets {statement['Principal']} write access logs")
    groups = {g.inputs["name"]: g for g in stack.of_type("aws:cloudwatch/logGroup:LogGroup")}
    for instance in stack.of_type("aws:rds/instance:Instance"):
        for log in instance.inputs.get("enabledCloudwatchLogsExports", []):
            name = f"/aws/rds/instance/{instance.inputs.get('identifier')}/{log}"
            group = groups.get(name)
            if group is None or not group.inputs.get("retentionInDays"):
                problems.append(f"{instance.name} exports {log} to {name}, which RDS creates never expiring")
            elif group.name not in run.dependencies[("aws:rds/instance:Instance", instance.name)]:
                problems.append(f"{instance.name} may create {name} before the program does")
    return problems


def _tls_problems(stack: Stack) -> list[str]:
    import yaml

    from components.rds_ca import SERVER_CA

    problems = []
    for instance in stack.of_type("aws:rds/instance:Instance"):
        if instance.inputs.get("caCertIdentifier") != SERVER_CA:
            problems.append(f"{instance.name} does not name the CA its clients verify it with")
    for typ in ("pulumi-python:dynamic/db:DatabaseSchema", "pulumi-python:dynamic/db:LoginRole"):
        for resource in stack.of_type(typ):
            if resource.inputs.get("operator") and resource.inputs["connection"]["sslmode"] != "verify-full":
                problems.append(f"{resource.name}: the operator connects without verifying the server")
    for template in stack.of_type("aws:ec2/launchTemplate:LaunchTemplate"):
        files = {
            f["path"]: f["content"]
            for f in yaml.safe_load(base64.b64decode(template.inputs["userData"]))["write_files"]
        }
        install = next(c for p, c in files.items() if p.endswith("-install"))
        if '"DB_SSLMODE": "verify-full"' not in install or "truststore" in install:
            problems.append(f"{template.name}: the backend does not verify the database with a shipped CA")
        check = files.get("/etc/datadog-agent/conf.d/postgres.d/conf.yaml")
        if check is not None and "ssl: verify-full" not in check:
            problems.append(f"{template.name}: the agent's postgres check does not verify the database")
    return problems


def _datadog_problems(stack: Stack) -> list[str]:
    attached = {
        a.inputs["policyArn"].rsplit("/", 1)[-1]
        for a in stack.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    }
    return [
        f"{account.name} collects resources with permissions it lacks"
        for account in stack.of_type("datadog:aws/integrationAccount:IntegrationAccount")
        if (account.inputs.get("resourcesConfig") or {}).get("extendedCollection", True)
        and "SecurityAudit" not in attached
    ]


def _nat_problems(stack: Stack) -> list[str]:
    if not stack.config.get("swipesavvy:network", {}).get("natGatewayPerZone"):
        return []
    zone = {f"{s.name}-id": s.inputs["availabilityZone"] for s in stack.of_type("aws:ec2/subnet:Subnet")}
    nat_subnet = {f"{n.name}-id": n.inputs["subnetId"] for n in stack.of_type("aws:ec2/natGateway:NatGateway")}
    routes = {f"{t.name}-id": t.inputs.get("routes") or [] for t in stack.of_type("aws:ec2/routeTable:RouteTable")}
    problems = []
    for association in stack.of_type("aws:ec2/routeTableAssociation:RouteTableAssociation"):
        subnet = association.inputs["subnetId"]
        if "private" not in subnet:
            continue
        nats = [r["natGatewayId"] for r in routes[association.inputs["routeTableId"]] if r.get("natGatewayId")]
        if [zone[nat_subnet[n]] for n in nats] != [zone[subnet]]:
            problems.append(f"{subnet} does not go out through a NAT gateway in its own zone")
    return problems


@pytest.fixture(scope="module")
def reviewed(staging, production, production_existing_vpc) -> list[tuple[Stack, Any]]:
    return [
        (stack_of("staging", staging, stack_config("staging")), staging),
        (stack_of("production", production, stack_config("production")), production),
        (
            stack_of("production-existing-vpc", production_existing_vpc, _production_existing_vpc_config()),
            production_existing_vpc,
        ),
    ]


def test_the_third_reviews_rules_hold_for_every_stack(reviewed):
    for stack, run in reviewed:
        assert third_review_problems(stack, run) == [], stack.label


def test_a_broken_rule_of_the_third_review_is_named(reviewed):
    (staging, run), (production, production_run) = reviewed[0], reviewed[1]

    def without(key: str):
        return lambda inputs: {k: v for k, v in inputs.items() if k != key}

    identifier = staging.of_type("aws:rds/instance:Instance")[0].inputs["identifier"]
    broken = [
        (mutated(staging, ASG, "swipesavvy-api-asg", lambda i: {**i, "instanceRefresh": {"strategy": "Rolling"}}),
         "swipesavvy-api-asg starts its own refresh: a rollback would restore the new version"),
        (mutated(staging, ROLLOUT, "swipesavvy-api-rollout", lambda i: {**i, "timeout_seconds": 3600}),
         "swipesavvy-api-asg's rollout cannot wait for its refresh within one provider call"),
        (mutated(staging, "aws:cloudwatch/logGroup:LogGroup", "swipesavvy-db-postgresql-log", lambda i: None),
         f"swipesavvy-db-postgres exports postgresql to /aws/rds/instance/{identifier}/postgresql, which RDS creates"
         " never expiring"),
        (mutated(staging, "aws:rds/instance:Instance", "swipesavvy-db-postgres", without("caCertIdentifier")),
         "swipesavvy-db-postgres does not name the CA its clients verify it with"),
    ]  # fmt: skip
    for stack, problem in broken:
        assert problem in third_review_problems(stack, run)
    edited = dataclasses.replace(run, replace_on_changes={})
    assert "swipesavvy-frontend-api-origin would be edited while a distribution uses it" in third_review_problems(
        staging, edited
    )
    shared = mutated(
        production,
        "aws:ec2/routeTableAssociation:RouteTableAssociation",
        "swipesavvy-private-1",
        lambda i: {**i, "routeTableId": "swipesavvy-private-id"},
    )
    assert third_review_problems(shared, production_run) == [
        "swipesavvy-private-1-id does not go out through a NAT gateway in its own zone"
    ]


# --- Datadog monitors' no-data timeframe ---------------------------------------------------------
# Datadog API reference, "Monitors" (docs.datadoghq.com/api/latest/monitors/), options
# no_data_timeframe, and pulumi-datadog Monitor no_data_timeframe: "We recommend at least 2x the
# monitor timeframe for metric alerts"; a shorter one reports No Data while a window is still
# filling (Datadog docs, "Troubleshooting No Data in Monitors").

MONITOR = "datadog:index/monitor:Monitor"
METRIC_WINDOW = re.compile(r"^\w+\(last_(\d+)([mhd])\):")
WINDOW_MINUTES = {"m": 1, "h": 60, "d": 24 * 60}


def no_data_problems(stack: Stack) -> list[str]:
    problems = []
    for monitor in stack.of_type(MONITOR):
        window = METRIC_WINDOW.match(str(monitor.inputs.get("query") or ""))
        timeframe = monitor.inputs.get("noDataTimeframe")
        if not monitor.inputs.get("notifyNoData") or window is None or timeframe is None:
            continue  # not a metric alert, or Datadog's own default (twice the window)
        minutes = int(window[1]) * WINDOW_MINUTES[window[2]]
        if timeframe < 2 * minutes:
            problems.append(f"{monitor.name}: no data after {timeframe} min, under twice its {minutes} min window")
    return problems


def test_no_monitor_reports_no_data_within_twice_its_window(stacks):
    assert any(stack.of_type(MONITOR) for stack in stacks)
    for stack in stacks:
        assert no_data_problems(stack) == [], stack.label


def test_a_no_data_timeframe_under_twice_the_window_is_named(committed):
    monitor = next(
        m
        for m in committed.of_type(MONITOR)
        if m.inputs.get("notifyNoData") and METRIC_WINDOW.match(str(m.inputs.get("query") or ""))
    )
    window = METRIC_WINDOW.match(monitor.inputs["query"])
    minutes = int(window[1]) * WINDOW_MINUTES[window[2]]
    short = mutated(committed, MONITOR, monitor.name, lambda i: {**i, "noDataTimeframe": 2 * minutes - 1})
    assert no_data_problems(short) == [
        f"{monitor.name}: no data after {2 * minutes - 1} min, under twice its {minutes} min window"
    ]


# Datadog API reference, "Monitors", Create a monitor: a metric alert's critical threshold is the
# one its query names; another value is refused with "Alert threshold (X) does not match that used
# in the query (Y)" (DataDog/datadog-operator#2106 quotes the API's 400).
QUERY_THRESHOLD = re.compile(r"(?:>=|<=|>|<)\s*(-?[0-9.]+)\s*$")


def threshold_problems(stack: Stack) -> list[str]:
    problems = []
    for monitor in stack.of_type(MONITOR):
        named = QUERY_THRESHOLD.search(str(monitor.inputs.get("query") or ""))
        critical = (monitor.inputs.get("monitorThresholds") or {}).get("critical")
        if monitor.inputs.get("type") != "query alert" or named is None or critical is None:
            continue
        if float(critical) != float(named[1]):
            problems.append(f"{monitor.name}: critical {critical} does not match the query's {named[1]}")
    return problems


def test_every_metric_alerts_critical_threshold_is_the_querys(stacks):
    assert any(m.inputs.get("type") == "query alert" for stack in stacks for m in stack.of_type(MONITOR))
    for stack in stacks:
        assert threshold_problems(stack) == [], stack.label


def test_a_critical_threshold_other_than_the_querys_is_named(committed):
    monitor = next(
        m
        for m in committed.of_type(MONITOR)
        if m.inputs.get("type") == "query alert" and QUERY_THRESHOLD.search(str(m.inputs.get("query") or ""))
    )
    named = QUERY_THRESHOLD.search(monitor.inputs["query"])[1]
    thresholds = {**monitor.inputs["monitorThresholds"], "critical": "12345"}
    wrong = mutated(committed, MONITOR, monitor.name, lambda i: {**i, "monitorThresholds": thresholds})
    assert threshold_problems(wrong) == [f"{monitor.name}: critical 12345 does not match the query's {named}"]


# --- review stacks' names -------------------------------------------------------------------------
# A review stack names its database swipesavvy-pr-<N>-postgres and its other resources after
# pr-<N>: the same rules (RDS API reference, CreateDBInstance DBInstanceIdentifier: 1-63
# letters, digits, hyphens, a letter first, no "--", no trailing hyphen; the others above) hold
# for the config `python -m ops review-config` writes, whatever the pull request's number.


@pytest.mark.parametrize("pr", [1, 99_999_999])
def test_a_review_stacks_names_are_ones_the_api_accepts(pr):
    config = review_config(stack_config("staging"), STAGING_OUTPUTS, pr, datadog_keys=False)
    stack = stack_of(review_stack_name(pr), run_program(config, stack=review_stack_name(pr)), config)
    assert stack.of_type("aws:rds/instance:Instance")[0].inputs["identifier"] == f"swipesavvy-pr-{pr}-postgres"
    assert text_problems(stack) == [], stack.label


# --- log groups' retention ------------------------------------------------------------------------
# CloudWatch Logs API reference, PutRetentionPolicy retentionInDays (shape Days): "Possible values
# are: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
# 3288, and 3653"; any other number fails the log group's create (RDS's groups before the instance).

LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
RETENTION_DAYS = frozenset(
    {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653}
)


def retention_problems(stack: Stack) -> list[str]:
    return [
        f"{group.name}: retention {group.inputs['retentionInDays']} days is not one CloudWatch Logs accepts"
        for group in stack.of_type(LOG_GROUP)
        if group.inputs.get("retentionInDays") is not None and group.inputs["retentionInDays"] not in RETENTION_DAYS
    ]


def test_every_log_groups_retention_is_one_cloudwatch_accepts(stacks):
    assert any(stack.of_type(LOG_GROUP) for stack in stacks)
    for stack in stacks:
        assert retention_problems(stack) == [], stack.label


def test_a_retention_cloudwatch_refuses_is_named(committed):
    name = "swipesavvy-db-postgresql-log"
    assert retention_problems(mutated(committed, LOG_GROUP, name, lambda i: {**i, "retentionInDays": 45})) == [
        f"{name}: retention 45 days is not one CloudWatch Logs accepts"
    ]
