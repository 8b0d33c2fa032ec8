"""The change-control policy pack: what must never reach staging or production.

Each policy is a small predicate over a resource's properties (camelCase, as the engine hands
them to a policy pack: numbers may be floats, some booleans strings) that returns the
violations as one-line messages naming the property and the fix. No Pulumi engine call here,
so the tests call the predicates and the policies directly; ``__main__.py`` only serves them.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

RDS_INSTANCE = "aws:rds/instance:Instance"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
EC2_INSTANCE = "aws:ec2/instance:Instance"
DATADOG_MONITOR = "datadog:index/monitor:Monitor"
MIN_BACKUP_RETENTION_DAYS = 7  # AWS FSBP RDS.11; the runbook's restore point window
PUBLIC_WEB_PORTS = (80, 443)  # the only ports the internet may reach directly
OPEN_CIDRS = ("0.0.0.0/0", "::/0")
PUBLIC_ACLS = ("public-read", "public-read-write", "authenticated-read")
HTTPS_VIEWER_POLICIES = ("https-only", "redirect-to-https")
RDS_METRIC_PREFIX = "aws.rds."  # Datadog's namespace for the RDS integration's metrics
# A shell-style assignment of a literal to a secret-looking name. Names that hold a reference
# (..._ARN, ..._ID, ..._NAME, ..._FILE, ..._PATH) and values that are expansions ($...) are not secrets.
_SECRET_ASSIGNMENT = re.compile(
    r"\b(?P<name>[A-Z0-9_]*(?:PASSWORD|PASSWD|SECRET|TOKEN|API_KEY|APP_KEY|PRIVATE_KEY)(?:_[A-Z0-9]+)*)"
    r"\s*=\s*['\"]?(?P<value>[^\s'\"$]{8,})"
)
_REFERENCE_NAME = re.compile(r"_(ARN|ID|NAME|FILE|PATH)$")
_KNOWN_SECRET_SHAPES = (
    ("an AWS access key id", re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("a private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")),
)

Check = Callable[[Mapping[str, Any]], list[str]]


def _truthy(value: Any) -> bool:
    """The engine may hand a boolean over as a string (``"false"``), as pulumi_aws declares some."""
    return value is True or (isinstance(value, str) and value.lower() == "true")


# --- predicates: properties -> violations ----------------------------------------------------


def database_encrypted_and_private(props: Mapping[str, Any]) -> list[str]:
    problems = []
    if not _truthy(props.get("storageEncrypted")):
        problems.append("storageEncrypted must be true (fix: storage_encrypted=True; an existing instance is replaced)")
    if _truthy(props.get("publiclyAccessible")):
        problems.append("publiclyAccessible must be false (fix: publicly_accessible=False; reach it through the VPC)")
    return problems


def database_backup_retention(props: Mapping[str, Any]) -> list[str]:
    days = props.get("backupRetentionPeriod")
    if isinstance(days, (int, float)) and days >= MIN_BACKUP_RETENTION_DAYS:
        return []
    return [
        f"backupRetentionPeriod = {days} is under {MIN_BACKUP_RETENTION_DAYS} days "
        f"(fix: pulumi config set --path 'swipesavvy:database.backupRetentionDays' {MIN_BACKUP_RETENTION_DAYS})"
    ]


def _public_statements(policy: Any) -> Iterable[dict]:
    if not isinstance(policy, dict):
        return []
    statements = policy.get("Statement", [])
    statements = statements if isinstance(statements, list) else [statements]
    return [
        s
        for s in statements
        if isinstance(s, dict)
        and s.get("Effect") == "Allow"
        and s.get("Principal") in ("*", {"AWS": "*"})
        and not s.get("Condition")
    ]


def bucket_not_public(props: Mapping[str, Any]) -> list[str]:
    """A public access block that leaves a door open, a public canned ACL, or a bucket policy
    that allows anyone without a condition (the site is served through CloudFront's OAC)."""
    problems = [
        f"{flag} must be true (fix: the PrivateBucket component sets all four)"
        for flag in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
        if flag in props and not _truthy(props[flag])
    ]
    if props.get("acl") in PUBLIC_ACLS:
        problems.append(f"acl = {props['acl']} makes the bucket public (fix: drop the ACL; ownership is enforced)")
    policy = props.get("policy")
    if isinstance(policy, str):
        try:
            policy = json.loads(policy)
        except ValueError:
            policy = None
    if _public_statements(policy):
        problems.append('the bucket policy allows Principal "*" without a condition (fix: grant CloudFront by OAC)')
    return problems


def _cache_behaviors(props: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    default = props.get("defaultCacheBehavior")
    return [b for b in [default, *(props.get("orderedCacheBehaviors") or [])] if isinstance(b, dict)]


def cloudfront_https_only(props: Mapping[str, Any]) -> list[str]:
    problems = [
        f"viewerProtocolPolicy = {b.get('viewerProtocolPolicy')} on {b.get('pathPattern', 'the default behaviour')}"
        " lets viewers use HTTP (fix: redirect-to-https)"
        for b in _cache_behaviors(props)
        if b.get("viewerProtocolPolicy") not in HTTPS_VIEWER_POLICIES
    ]
    certificate = props.get("viewerCertificate") or {}
    custom = not _truthy(certificate.get("cloudfrontDefaultCertificate"))
    if custom and not str(certificate.get("minimumProtocolVersion", "")).startswith("TLSv1.2"):
        problems.append(
            f"viewerCertificate.minimumProtocolVersion = {certificate.get('minimumProtocolVersion')} allows TLS"
            " before 1.2 (fix: TLSv1.2_2021)"
        )
    return problems


def imdsv2_required(props: Mapping[str, Any]) -> list[str]:
    tokens = (props.get("metadataOptions") or {}).get("httpTokens")
    if tokens == "required":
        return []
    return [f"metadataOptions.httpTokens = {tokens} allows IMDSv1 (fix: http_tokens='required')"]


def _port_range(props: Mapping[str, Any]) -> tuple[int, int] | None:
    """(from, to), or None for all ports (protocol -1, or ports left out)."""
    low, high = props.get("fromPort"), props.get("toPort")
    if str(props.get("ipProtocol", props.get("protocol"))) in ("-1", "all") or low is None or high is None:
        return None
    return int(low), int(high)


def _open_rule_problem(rule: Mapping[str, Any]) -> str | None:
    cidrs = [rule.get("cidrIpv4"), rule.get("cidrIpv6"), *(rule.get("cidrBlocks") or [])]
    cidrs += rule.get("ipv6CidrBlocks") or []
    opened = next((c for c in cidrs if c in OPEN_CIDRS), None)
    if opened is None:
        return None
    ports = _port_range(rule)
    if ports is not None and ports[0] == ports[1] and ports[0] in PUBLIC_WEB_PORTS:
        return None
    shown = "all ports" if ports is None else f"ports {ports[0]}-{ports[1]}"
    return (
        f"ingress from {opened} on {shown}: only 80 and 443 may be open to the internet"
        " (fix: a security group or prefix list as the source)"
    )


def no_open_ingress(props: Mapping[str, Any]) -> list[str]:
    """Standalone ingress rules, ``aws:ec2/securityGroupRule`` of type ingress, and inline
    ``ingress`` blocks of a security group."""
    if props.get("type") not in (None, "ingress"):
        return []
    rules = [props, *(props.get("ingress") or [])]
    return [problem for rule in rules if isinstance(rule, dict) and (problem := _open_rule_problem(rule))]


def _user_data_text(props: Mapping[str, Any]) -> str:
    """User data as the instance sees it: launch templates take it base64-encoded."""
    raw = props.get("userData") or ""
    if props.get("userDataBase64"):
        raw = props["userDataBase64"]
    if not isinstance(raw, str):
        return ""
    try:
        return base64.b64decode(raw, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return raw


def no_secret_in_user_data(props: Mapping[str, Any]) -> list[str]:
    """User data is readable by anything on the instance and by ec2:DescribeInstanceAttribute:
    secrets are read at boot from Secrets Manager by ARN instead."""
    text = _user_data_text(props)
    names = [m["name"] for m in _SECRET_ASSIGNMENT.finditer(text) if not _REFERENCE_NAME.search(m["name"])]
    shapes = [what for what, pattern in _KNOWN_SECRET_SHAPES if pattern.search(text)]
    return [
        f"user data holds {what} in plain text (fix: store it in Secrets Manager and read it at boot by ARN)"
        for what in [*(f"a value for {name}" for name in names), *shapes]
    ]


def missing_database_monitors(resources: Iterable[tuple[str, Mapping[str, Any]]]) -> list[str]:
    """(type, props) of every resource in the stack -> a violation when a database has no monitor."""
    resources = list(resources)
    if not any(typ == RDS_INSTANCE for typ, _ in resources):
        return []
    if any(typ == DATADOG_MONITOR and RDS_METRIC_PREFIX in str(p.get("query", "")) for typ, p in resources):
        return []
    return [
        f"the stack has a database but no Datadog monitor on its {RDS_METRIC_PREFIX}* metrics "
        "(fix: configure swipesavvy:monitoring, so the database pages someone)"
    ]


# --- the policies ----------------------------------------------------------------------------


def _resource_policy(name: str, description: str, types: tuple[str, ...], check: Check) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if args.resource_type in types:
            for problem in check(args.props):
                report_violation(f"{args.name}: {problem}", None)

    return ResourceValidationPolicy(
        name=name, description=description, validate=validate, enforcement_level=EnforcementLevel.MANDATORY
    )


def _validate_monitors(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    for problem in missing_database_monitors((r.resource_type, r.props) for r in args.resources):
        report_violation(problem, None)


RESOURCE_POLICIES = [
    _resource_policy(
        "database-encrypted-and-private",
        "An RDS instance is encrypted at rest and not publicly accessible.",
        (RDS_INSTANCE,),
        database_encrypted_and_private,
    ),
    _resource_policy(
        "database-backup-retention",
        f"An RDS instance keeps automated backups for at least {MIN_BACKUP_RETENTION_DAYS} days.",
        (RDS_INSTANCE,),
        database_backup_retention,
    ),
    _resource_policy(
        "bucket-not-public",
        "No S3 bucket is public: all four public access blocks on, no public ACL, no policy open to anyone.",
        (
            "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
            "aws:s3/bucket:Bucket",
            "aws:s3/bucketV2:BucketV2",
            "aws:s3/bucketAcl:BucketAcl",
            "aws:s3/bucketAclV2:BucketAclV2",
            "aws:s3/bucketPolicy:BucketPolicy",
        ),
        bucket_not_public,
    ),
    _resource_policy(
        "cloudfront-https-only",
        "A CloudFront distribution serves viewers over HTTPS only, TLS 1.2 or later on a custom certificate.",
        ("aws:cloudfront/distribution:Distribution",),
        cloudfront_https_only,
    ),
    _resource_policy(
        "imdsv2-required",
        "EC2 instances and launch templates require IMDSv2 session tokens.",
        (LAUNCH_TEMPLATE, EC2_INSTANCE),
        imdsv2_required,
    ),
    _resource_policy(
        "no-open-ingress",
        "No security group admits 0.0.0.0/0 or ::/0 on any port but 80 and 443.",
        (
            "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
            "aws:ec2/securityGroupRule:SecurityGroupRule",
            "aws:ec2/securityGroup:SecurityGroup",
        ),
        no_open_ingress,
    ),
    _resource_policy(
        "no-secret-in-user-data",
        "User data holds no secret value: secrets are read at boot from Secrets Manager.",
        (LAUNCH_TEMPLATE, EC2_INSTANCE),
        no_secret_in_user_data,
    ),
]

STACK_POLICIES = [
    StackValidationPolicy(
        name="database-has-monitors",
        description="A stack with a database has at least one Datadog monitor on its RDS metrics.",
        validate=_validate_monitors,
        enforcement_level=EnforcementLevel.MANDATORY,
    ),
]

POLICIES = [*RESOURCE_POLICIES, *STACK_POLICIES]
