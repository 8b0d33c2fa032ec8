"""A review stack's settings (``Pulumi.pr-<N>.yaml``), generated from staging's on purpose.

A pull request's stack is staging's program and settings, changed where a copy would fail,
collide, be shared or outlive the stack (docs/operations.md "Review stacks"):
- network: staging's VPC and subnets (``existingVpcId`` from staging's stack outputs), not
  a VPC, NAT gateway and Elastic IP of its own (the default quotas allow about two more);
  admitted on staging's Secrets Manager endpoint, whose private DNS answers for the VPC;
- database: no deletion protection, no snapshots, the operator function for access (in an
  existing VPC the default would be a runner inside it), no Secrets Manager endpoint of its
  own (one VPC holds one private-DNS endpoint per service; staging's NAT gateway serves);
  the stack itself skips the final snapshot and deletes automated backups (a ``pr-<N>`` name);
- the seed at a tenth of staging's scale, one backend instance;
- no custom domain (it belongs to staging); staging's response-headers policy
  (``existingResponseHeadersPolicyId`` from staging's outputs), not one of its own: the
  policies are an account-wide CloudFront quota (CloudFront developer guide, "Quotas",
  general quotas on policies);
- monitoring only when the Datadog keys come from the environment (``DD_API_KEY`` and
  ``DD_APP_KEY``, which the Datadog provider reads): secrets are encrypted per stack, so
  staging's cannot be decrypted here. Then without the AWS integration (one per account)
  and without ``notify``: a review stack's monitors page nobody;
- every other secret of staging's file is dropped, for the same reason.

Pure: staging's settings and outputs in, the review stack's settings out; the CLI reads
and writes the files, and the result passes ``components.config`` for the stack ``pr-<N>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from components.config import NAMESPACE

DATADOG_KEY_ENV = ("DD_API_KEY", "DD_APP_KEY")
NETWORK_OUTPUTS = {
    "existingVpcId": "vpc_id",
    "privateSubnetIds": "private_subnet_ids",
    "publicSubnetIds": "public_subnet_ids",
}
# Staging's Secrets Manager endpoint (private DNS: it answers for the whole VPC), when it has one.
ENDPOINT_OUTPUT = "secrets_endpoint_security_group_id"
HEADERS_POLICY_OUTPUT = "site_response_headers_policy_id"
REVIEW_SEED_SCALE_SHARE = 0.1
MIN_SEED_SCALE = 0.01
# Database settings a review stack does not take from staging: its access and what it keeps.
DATABASE_DROPPED = ("deployRunnerCidrs", "allowPublicDeployRunnerCidrs", "connectHost", "connectPort")
REVIEW_DATABASE = {
    "deletionProtection": False,
    "snapshotAfterSchema": False,
    "snapshotAfterSeed": False,
    "access": "operator",
    "operatorSecretsEndpoint": False,
    "multiAz": False,
    "allowMajorVersionUpgrade": False,
}


class ReviewConfigError(ValueError):
    """Staging's outputs or settings cannot make a review stack; one line naming the fix."""


def review_stack_name(pr: int) -> str:
    return f"pr-{pr}"


def _is_secret(value: Any) -> bool:
    return isinstance(value, Mapping) and set(value) == {"secure"}


def _output(outputs: Mapping[str, Any], name: str, why: str) -> Any:
    value = outputs.get(name)
    if not value:
        raise ReviewConfigError(
            f"staging's stack outputs have no {name}: {why} (fix: pulumi up --stack staging with this program, which"
            " exports it, then run this again)"
        )
    return value


def _network(outputs: Mapping[str, Any]) -> dict[str, Any]:
    network = {
        key: _output(outputs, output, "a review stack goes into staging's network")
        for key, output in NETWORK_OUTPUTS.items()
    }
    if outputs.get(ENDPOINT_OUTPUT):
        network["existingSecretsEndpointSecurityGroupId"] = outputs[ENDPOINT_OUTPUT]
    return network


def review_config(staging: Mapping[str, Any], outputs: Mapping[str, Any], pr: int, datadog_keys: bool) -> dict:
    """The ``config:`` mapping of ``Pulumi.pr-<pr>.yaml`` from staging's (full keys, as in
    ``Pulumi.staging.yaml``) and staging's stack outputs (``pulumi stack output --json``).
    ``datadog_keys``: both Datadog keys are in the environment of the run that deploys it."""
    if pr < 1:
        raise ReviewConfigError(f"--pr {pr} is not a pull request number (fix: a number from 1)")
    config = {key: value for key, value in staging.items() if not _is_secret(value)}

    def section(name: str) -> dict[str, Any]:
        return dict(config.get(f"{NAMESPACE}:{name}") or {})

    config[f"{NAMESPACE}:network"] = _network(outputs)

    database = {k: v for k, v in section("database").items() if k not in DATABASE_DROPPED}
    config[f"{NAMESPACE}:database"] = {**database, **REVIEW_DATABASE}

    seed = section("seed")
    if seed.get("enabled", True):
        scale = float(seed.get("scale", 1)) * REVIEW_SEED_SCALE_SHARE
        config[f"{NAMESPACE}:seed"] = {**seed, "scale": max(MIN_SEED_SCALE, round(scale, 2))}

    if f"{NAMESPACE}:backend" in config:
        config[f"{NAMESPACE}:backend"] = {**section("backend"), "instanceCount": 1}
    if f"{NAMESPACE}:frontend" in config:
        frontend = {k: v for k, v in section("frontend").items() if k not in ("domain", "hostedZoneId")}
        frontend["existingResponseHeadersPolicyId"] = _output(
            outputs,
            HEADERS_POLICY_OUTPUT,
            "a review stack's site uses staging's response-headers policy (one account-wide CloudFront quota)",
        )
        config[f"{NAMESPACE}:frontend"] = frontend

    monitoring = section("monitoring")
    if datadog_keys and monitoring.get("enabled"):
        dropped = ("notify", "awsIntegration")
        config[f"{NAMESPACE}:monitoring"] = {k: v for k, v in monitoring.items() if k not in dropped}
    else:
        config[f"{NAMESPACE}:monitoring"] = {"enabled": False}
    return config


def header(pr: int) -> str:
    return (
        f"# Review stack {review_stack_name(pr)}: generated by `python -m ops review-config --pr {pr}` from\n"
        '# Pulumi.staging.yaml and staging\'s stack outputs (docs/operations.md "Review stacks"). Not committed.\n'
    )
