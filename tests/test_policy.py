"""The policy pack (policy/policies.py): each policy called as the engine calls it, with the
properties of every resource the program declares for the committed stack configs (all must
pass), and with one resource of a real program run mutated into each bad case (its policy,
and only its policy, must report it)."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable

import pytest
from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    StackValidationArgs,
)
from pulumi_program import ProgramRun, unwrap_all

from policy.policies import POLICIES, RESOURCE_POLICIES, STACK_POLICIES, missing_database_monitors

Resource = tuple[str, str, dict]  # (type, name, props)


def _options() -> PolicyResourceOptions:
    return PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])


def _resources(run: ProgramRun) -> list[Resource]:
    """What the engine hands a policy: the inputs with secrets unwrapped."""
    return [(r.typ, r.name, unwrap_all(r.inputs)) for r in run.resources]


def resource_violations(resources: list[Resource]) -> dict[str, list[str]]:
    """Policy name -> the messages its validate reported, over every resource."""
    found: dict[str, list[str]] = {}
    for policy in RESOURCE_POLICIES:
        for typ, name, props in resources:
            args = ResourceValidationArgs(
                typ, props, f"urn:pulumi:test::swipesavvy::{typ}::{name}", name, _options(), None
            )
            policy.validate(args, lambda message, _urn, p=policy.name: found.setdefault(p, []).append(message))
    return found


def stack_violations(resources: list[Resource]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    stack = [PolicyResource(t, p, f"urn:{n}", n, _options(), None, None, [], {}) for t, n, p in resources]
    for policy in STACK_POLICIES:
        policy.validate(
            StackValidationArgs(stack), lambda message, _urn, p=policy.name: found.setdefault(p, []).append(message)
        )
    return found


def test_policy_names_are_unique_and_all_mandatory():
    assert len({p.name for p in POLICIES}) == len(POLICIES) == 8
    assert {p.enforcement_level.value for p in POLICIES} == {"mandatory"}


@pytest.mark.parametrize("run_name", ["staging", "production"])
def test_committed_configs_pass_every_resource_policy(run_name, request):
    assert resource_violations(_resources(request.getfixturevalue(run_name))) == {}


@pytest.mark.parametrize("run_name", ["staging", "production"])
def test_committed_configs_pass_the_monitors_policy(run_name, request):
    assert stack_violations(_resources(request.getfixturevalue(run_name))) == {}


# --- each bad case, on a mutated program run -------------------------------------------------


def _mutated(run: ProgramRun, typ: str, change: Callable[[dict], None], name: str | None = None) -> list[Resource]:
    """The run's resources with the first ``typ`` (or the one called ``name``) changed by ``change``."""
    resources = copy.deepcopy(_resources(run))
    target = next(props for t, n, props in resources if t == typ and name in (None, n))
    change(target)
    return resources


def _set(**values) -> Callable[[dict], None]:
    return lambda props: props.update(values)


def _user_data_with(line: str) -> Callable[[dict], None]:
    def change(props: dict) -> None:
        text = base64.b64decode(props["userData"]).decode() + f"\n{line}\n"
        props["userData"] = base64.b64encode(text.encode()).decode()

    return change


def _http_default_behaviour(props: dict) -> None:
    props["defaultCacheBehavior"]["viewerProtocolPolicy"] = "allow-all"


def _public_statement(props: dict) -> None:
    policy = json.loads(props["policy"])
    policy["Statement"].append({"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "*"})
    props["policy"] = json.dumps(policy)


RDS, LT, INGRESS = (
    "aws:rds/instance:Instance",
    "aws:ec2/launchTemplate:LaunchTemplate",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
)
BAD_CASES = {
    "unencrypted database": ("database-encrypted-and-private", RDS, _set(storageEncrypted=False), None),
    "public database": ("database-encrypted-and-private", RDS, _set(publiclyAccessible=True), None),
    "backups under 7 days": ("database-backup-retention", RDS, _set(backupRetentionPeriod=3.0), None),
    "public access block off": (
        "bucket-not-public",
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        _set(blockPublicPolicy=False),
        None,
    ),
    "bucket policy open to anyone": ("bucket-not-public", "aws:s3/bucketPolicy:BucketPolicy", _public_statement, None),
    "CloudFront over HTTP": (
        "cloudfront-https-only",
        "aws:cloudfront/distribution:Distribution",
        _http_default_behaviour,
        None,
    ),
    "CloudFront TLS 1.0": (
        "cloudfront-https-only",
        "aws:cloudfront/distribution:Distribution",
        _set(viewerCertificate={"acmCertificateArn": "arn:aws:acm:::certificate/x", "minimumProtocolVersion": "TLSv1"}),
        None,
    ),
    "IMDSv1": ("imdsv2-required", LT, lambda p: p["metadataOptions"].update(httpTokens="optional"), None),
    "SSH from anywhere": (
        "no-open-ingress",
        INGRESS,
        _set(cidrIpv4="0.0.0.0/0", fromPort=22.0, toPort=22.0, referencedSecurityGroupId=None),
        "swipesavvy-api-from-alb",
    ),
    "all ports from anywhere over IPv6": (
        "no-open-ingress",
        INGRESS,
        _set(cidrIpv6="::/0", ipProtocol="-1", fromPort=None, toPort=None),
        "swipesavvy-api-from-alb",
    ),
    "password in user data": ("no-secret-in-user-data", LT, _user_data_with("DB_PASSWORD=hunter2-correct-horse"), None),
    "access key in user data": ("no-secret-in-user-data", LT, _user_data_with("export AWS=AKIAABCDEFGHIJKLMNOP"), None),
}


@pytest.mark.parametrize("case", BAD_CASES)
def test_each_bad_case_fails_its_policy_and_only_it(case, staging):
    policy, typ, change, name = BAD_CASES[case]
    found = resource_violations(_mutated(staging, typ, change, name))
    assert list(found) == [policy]
    assert len(found[policy]) == 1 and "fix:" in found[policy][0]


def test_80_and_443_from_anywhere_are_allowed(staging):
    https = _mutated(
        staging, INGRESS, _set(cidrIpv4="0.0.0.0/0", fromPort=443.0, toPort=443.0), "swipesavvy-api-from-alb"
    )
    assert resource_violations(https) == {}


def test_secret_references_in_user_data_are_not_secrets():
    from policy.policies import no_secret_in_user_data

    text = "DB_SECRET_ARN=arn:aws:secretsmanager:...\nAPI_TOKEN=$(read_secret \"$ARN\")\nSENTRY_DSN_SECRET_ARN=''"
    assert no_secret_in_user_data({"userData": text}) == []


def test_a_database_without_monitors_fails_and_an_rds_monitor_satisfies_it(staging):
    monitors = "datadog:index/monitor:Monitor"
    resources = [r for r in _resources(staging) if r[0] != monitors]  # as if monitoring were off
    assert list(stack_violations(resources)) == ["database-has-monitors"]
    other = (
        monitors,
        "api-errors",
        {"query": "sum(last_5m):sum:aws.applicationelb.httpcode_target_5xx{*} > 10"},
    )
    assert list(stack_violations([*resources, other])) == ["database-has-monitors"]
    rds = (monitors, "db-cpu", {"query": "avg(last_10m):avg:aws.rds.cpuutilization{*} > 80"})
    assert stack_violations([*resources, rds]) == {}


def test_a_stack_without_a_database_needs_no_monitor():
    assert missing_database_monitors([("aws:s3/bucket:Bucket", {})]) == []
