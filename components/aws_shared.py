"""Small AWS building blocks the components share: one-port security-group rules, service
trust policies, and action lists split into policies IAM accepts."""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

# A managed policy document: at most 6,144 characters, whitespace not counted (IAM user
# guide, "IAM and AWS STS quotas").
MANAGED_POLICY_CHARS = 6144

RuleKind = type[aws.vpc.SecurityGroupIngressRule] | type[aws.vpc.SecurityGroupEgressRule]


def tcp_rule(
    kind: RuleKind,
    name: str,
    security_group_id: pulumi.Input[str],
    port: int,
    description: str,
    opts: pulumi.ResourceOptions,
    **peer: pulumi.Input[str],
) -> pulumi.CustomResource:
    """One TCP port between ``security_group_id`` and ``peer``: ``referenced_security_group_id``,
    ``cidr_ipv4`` or ``prefix_list_id``."""
    return kind(
        name,
        security_group_id=security_group_id,
        ip_protocol="tcp",
        from_port=port,
        to_port=port,
        description=description,
        opts=opts,
        **peer,
    )


def service_trust_policy(service: str) -> str:
    """An IAM role trust policy that lets the AWS ``service`` (e.g. lambda.amazonaws.com) assume it."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": service}}],
        }
    )


def allow_document(actions: list[str], resource: str = "*") -> dict:
    """One statement allowing ``actions`` on ``resource``."""
    return {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": resource}]}


def policy_size(document: dict) -> int:
    """The size IAM counts against its quotas: the JSON without whitespace."""
    return len(json.dumps(document, separators=(",", ":")))


def split_actions(actions: list[str], limit: int = MANAGED_POLICY_CHARS) -> list[list[str]]:
    """``actions`` (sorted, without repeats) in consecutive groups whose ``allow_document`` each
    fits in ``limit`` characters: as few managed policies as the list needs."""
    groups: list[list[str]] = [[]]
    for action in sorted(set(actions)):
        if groups[-1] and policy_size(allow_document([*groups[-1], action])) > limit:
            groups.append([])
        groups[-1].append(action)
        if policy_size(allow_document(groups[-1])) > limit:
            raise ValueError(f"the IAM action {action!r} alone does not fit in a policy of {limit} characters")
    return groups if groups[0] else []
