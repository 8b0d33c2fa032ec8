"""Small AWS building blocks the components share: one-port security-group rules and
service trust policies."""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

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


def secret_recovery_days(keep_on_destroy: bool) -> int:
    """A deleted secret's recovery window: 7 days, or none for a stack that keeps nothing on
    destroy (a review stack's secrets must not outlive it)."""
    return 7 if keep_on_destroy else 0
