"""``DatabaseOperator``: a small function inside the VPC that does the database work.

The database is private, yet ``pulumi up`` runs SQL (migrations, logins, the seed, flag
settings). In ``database.access: operator`` mode the dynamic resources send each
operation to this AWS Lambda function, which runs the same ``ops`` code as the CLI next to
the database. One ``pulumi up`` from a laptop or a hosted runner then builds everything.

- Code: the project's ``ops/``, ``seed/`` and ``sql/`` with psycopg's binary wheel for
  arm64, as a byte-identical archive for identical inputs (components/operator_package.py).
- Network: private subnets; its security group may reach only PostgreSQL on the database's
  security group and HTTPS on the Secrets Manager interface endpoint. The endpoint's private
  DNS answers for the whole VPC, so it admits every compute in the VPC that reads Secrets
  Manager: the operator and each group in ``secrets_clients`` (the backend's instances).
  The operator is the one new peer the database admits on 5432.
- IAM: read this stack's database secrets (the RDS-managed master secret and
  ``swipesavvy/<stack>/db/*``), write its own log group, manage the VPC network
  interfaces Lambda needs.
- Timeout: Lambda's maximum (900 s), the invoke client waits longer and never retries a
  timed-out call (ops/operator_client.py).
- One execution at a time (reserved concurrency 1): deploy operations are serialized, and
  the client retries a throttle while another one runs. X-Ray tracing is active.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
import pulumi_aws as aws

from components.aws_shared import service_trust_policy, tcp_rule
from components.operator_package import (
    ARCHIVE,
    OPERATOR_ARCHITECTURE,
    OPERATOR_RUNTIME,
    PROJECT_ROOT,
    WHEELHOUSE,
    build_operator_archive,
    fetch_wheels,
    psycopg_pin,
)
from ops.operator_client import FUNCTION_TIMEOUT_S

HANDLER = "ops.operator_handler.handler"
MEMORY_MB = 1769  # one full vCPU: the seed generator is CPU-bound
RESERVED_CONCURRENCY = 1  # deploy operations never run side by side (Checkov CKV_AWS_115)
XRAY_WRITE_POLICY = "policy/AWSXRayDaemonWriteAccess"  # what active tracing needs (CKV_AWS_50)
LOG_RETENTION_DAYS = 30
POSTGRES_PORT = 5432
HTTPS_PORT = 443
# What AWSLambdaVPCAccessExecutionRole grants for the function's network interfaces.
VPC_NETWORK_INTERFACE_ACTIONS = [
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
]


@dataclass(frozen=True)
class OperatorCode:
    """The operator function's code archive and the platform it was built for."""

    archive: pulumi.Archive
    runtime: str = OPERATOR_RUNTIME
    architecture: str = OPERATOR_ARCHITECTURE


def build_operator_code(project_root: Path = PROJECT_ROOT) -> OperatorCode:
    """Package the project's ops/, seed/ and sql/ with psycopg's wheels for the function's
    platform (fetched once into .build/, offline afterwards); byte-identical for the same
    inputs, so an unchanged program is no change to the function."""
    wheelhouse = project_root / WHEELHOUSE
    fetch_wheels(wheelhouse, psycopg_pin(project_root / "requirements.txt"))
    archive = build_operator_archive(project_root, wheelhouse, project_root / ARCHIVE)
    return OperatorCode(pulumi.FileArchive(str(archive.path)))


@dataclass
class DatabaseOperatorArgs:
    stack: str
    vpc_id: pulumi.Input[str]
    subnet_ids: pulumi.Input[list]
    database_security_group_id: pulumi.Input[str]
    master_secret_arn: pulumi.Input[str]
    code: OperatorCode
    secrets_endpoint: bool = True
    """Create a Secrets Manager interface endpoint; false when the subnets already reach
    Secrets Manager (a NAT gateway, or an endpoint the VPC has)."""
    secrets_clients: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """The security groups of the other computes in the VPC that read Secrets Manager, by a
    short name (``backend``): the endpoint admits each on 443, besides the operator."""
    tags: Mapping[str, str] | None = None


class DatabaseOperator(pulumi.ComponentResource):
    function_arn: pulumi.Output[str]
    function_name: pulumi.Output[str]
    security_group_id: pulumi.Output[str]

    def __init__(self, name: str, args: DatabaseOperatorArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("swipesavvy:database:DatabaseOperator", name, None, opts)
        tags = dict(args.tags or {})
        child = pulumi.ResourceOptions(parent=self)
        function_name = f"swipesavvy-{args.stack}-db-operator"

        group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            vpc_id=args.vpc_id,
            description="SwipeSavvy database operator: PostgreSQL and Secrets Manager only",
            tags={**tags, "Name": f"{name}-sg"},
            opts=child,
        )
        tcp_rule(
            aws.vpc.SecurityGroupEgressRule,
            f"{name}-to-db",
            group.id,
            POSTGRES_PORT,
            "Operator to PostgreSQL",
            child,
            referenced_security_group_id=args.database_security_group_id,
        )
        tcp_rule(
            aws.vpc.SecurityGroupIngressRule,
            f"{name}-db-from-operator",
            args.database_security_group_id,
            POSTGRES_PORT,
            "PostgreSQL from the database operator",
            child,
            referenced_security_group_id=group.id,
        )
        if args.secrets_endpoint:
            endpoint = self._secrets_endpoint(name, args, group, tags, child)
        else:  # the subnets reach Secrets Manager by their own route (a NAT gateway, an existing endpoint)
            endpoint = None
            tcp_rule(
                aws.vpc.SecurityGroupEgressRule,
                f"{name}-https-out",
                group.id,
                HTTPS_PORT,
                "Operator to Secrets Manager through the VPC route (NAT gateway or an existing endpoint)",
                child,
                cidr_ipv4="0.0.0.0/0",
            )

        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"/aws/lambda/{function_name}",
            retention_in_days=LOG_RETENTION_DAYS,
            tags=tags,
            opts=child,
        )
        role, policy = self._role(name, args, log_group, tags, child)
        partition = aws.get_partition_output(opts=pulumi.InvokeOutputOptions(parent=self)).partition
        tracing = aws.iam.RolePolicyAttachment(
            f"{name}-xray",
            role=role.name,
            policy_arn=pulumi.Output.concat("arn:", partition, ":iam::aws:", XRAY_WRITE_POLICY),
            opts=child,
        )
        function = aws.lambda_.Function(
            f"{name}-function",
            name=function_name,
            description=f"SwipeSavvy {args.stack}: migrations, logins, seed and flags inside the VPC",
            role=role.arn,
            runtime=args.code.runtime,
            architectures=[args.code.architecture],
            handler=HANDLER,
            code=args.code.archive,
            timeout=FUNCTION_TIMEOUT_S,
            memory_size=MEMORY_MB,
            vpc_config=aws.lambda_.FunctionVpcConfigArgs(subnet_ids=args.subnet_ids, security_group_ids=[group.id]),
            reserved_concurrent_executions=RESERVED_CONCURRENCY,
            tracing_config={"mode": "Active"},
            tags=tags,
            # Lambda needs its role's network-interface permissions before it can create the
            # function in the VPC; the log group first so its retention applies from the start.
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[policy, tracing, log_group, *filter(None, [endpoint])]
            ),
        )
        self.function_arn = function.arn
        self.function_name = function.name
        self.security_group_id = group.id
        self.register_outputs(
            {
                "function_arn": self.function_arn,
                "function_name": self.function_name,
                "security_group_id": self.security_group_id,
            }
        )

    def _secrets_endpoint(
        self,
        name: str,
        args: DatabaseOperatorArgs,
        group: aws.ec2.SecurityGroup,
        tags: dict,
        child: pulumi.ResourceOptions,
    ) -> aws.ec2.VpcEndpoint:
        """Secrets Manager from private subnets with no route out: an interface endpoint whose
        private DNS makes the regular endpoint name resolve to it. That answer holds for the
        whole VPC, so the endpoint admits every compute here that reads Secrets Manager: the
        operator and each of ``secrets_clients``; anything else times out on it.
        (PrivateLink guide, "DNS hostnames"; EC2 API reference, CreateVpcEndpoint PrivateDnsEnabled.)"""
        endpoint_group = aws.ec2.SecurityGroup(
            f"{name}-endpoint-sg",
            vpc_id=args.vpc_id,
            description="SwipeSavvy Secrets Manager endpoint: HTTPS from the computes that read secrets",
            tags={**tags, "Name": f"{name}-endpoint-sg"},
            opts=child,
        )
        for client, client_group_id in {"operator": group.id, **args.secrets_clients}.items():
            tcp_rule(
                aws.vpc.SecurityGroupIngressRule,
                f"{name}-endpoint-from-{client}",
                endpoint_group.id,
                HTTPS_PORT,
                f"HTTPS from the {client} security group",
                child,
                referenced_security_group_id=client_group_id,
            )
        tcp_rule(
            aws.vpc.SecurityGroupEgressRule,
            f"{name}-to-endpoint",
            group.id,
            HTTPS_PORT,
            "Operator to the Secrets Manager endpoint",
            child,
            referenced_security_group_id=endpoint_group.id,
        )
        region = aws.get_region_output(opts=pulumi.InvokeOutputOptions(parent=self)).region
        return aws.ec2.VpcEndpoint(
            f"{name}-secretsmanager",
            vpc_id=args.vpc_id,
            service_name=pulumi.Output.concat("com.amazonaws.", region, ".secretsmanager"),
            vpc_endpoint_type="Interface",
            private_dns_enabled=True,
            subnet_ids=args.subnet_ids,
            security_group_ids=[endpoint_group.id],
            tags={**tags, "Name": f"{name}-secretsmanager"},
            opts=child,
        )

    def _role(
        self,
        name: str,
        args: DatabaseOperatorArgs,
        log_group: aws.cloudwatch.LogGroup,
        tags: dict,
        child: pulumi.ResourceOptions,
    ) -> tuple[aws.iam.Role, aws.iam.RolePolicy]:
        """The function's role and its one inline policy: this stack's database secrets, its
        own log group, and the network-interface actions a VPC function needs (which IAM
        cannot scope to resources)."""
        identity = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self))
        partition = aws.get_partition_output(opts=pulumi.InvokeOutputOptions(parent=self)).partition
        region = aws.get_region_output(opts=pulumi.InvokeOutputOptions(parent=self)).region
        role = aws.iam.Role(
            f"{name}-role",
            description=f"SwipeSavvy {args.stack} database operator",
            assume_role_policy=service_trust_policy("lambda.amazonaws.com"),
            tags=tags,
            opts=child,
        )
        app_secrets = pulumi.Output.concat(
            "arn:",
            partition,
            ":secretsmanager:",
            region,
            ":",
            identity.account_id,
            f":secret:swipesavvy/{args.stack}/db/*",
        )
        policy = aws.iam.RolePolicy(
            f"{name}-policy",
            role=role.id,
            policy=pulumi.Output.json_dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "ReadThisStacksDatabaseSecrets",
                            "Effect": "Allow",
                            "Action": "secretsmanager:GetSecretValue",
                            "Resource": [args.master_secret_arn, app_secrets],
                        },
                        {
                            "Sid": "WriteOwnLogs",
                            "Effect": "Allow",
                            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                            "Resource": pulumi.Output.concat(log_group.arn, ":*"),
                        },
                        {
                            "Sid": "VpcNetworkInterfaces",
                            "Effect": "Allow",
                            "Action": VPC_NETWORK_INTERFACE_ACTIONS,
                            "Resource": "*",
                        },
                    ],
                }
            ),
            opts=child,
        )
        return role, policy
