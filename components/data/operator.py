"""``DatabaseOperator``: two small functions inside the VPC that do the database work.

The database is private, yet ``pulumi up`` runs SQL (migrations, logins, the seed, flag
settings). In ``database.access: operator`` mode the dynamic resources send each
operation to these AWS Lambda functions, which run the same ``dbops`` code as the CLI next
to the database. One ``pulumi up`` from a laptop or a hosted runner then builds everything.

- Two functions, two authorities (dbops/authority.py), each in its own environment:
  ``swipesavvy-<stack>-db-operator`` changes the database as its deploying login, only
  within what the stack declares (its database, its three logins with their groups and
  secrets, data destruction only when allowed); ``swipesavvy-<stack>-db-reader`` runs only
  the reads that refresh, previews and ``verify`` need, as a login that may only read
  (``reader_login``), and its role may read only that login's secret.
- Who may invoke which: the managed policies ``swipesavvy-<stack>-db-read-invoke`` (the
  reader) and ``swipesavvy-<stack>-db-operate-invoke`` (the operator), for the preview and
  deploy roles to attach.
- Code: the project's ``ops/``, ``seed/`` and ``sql/`` with psycopg's binary wheel for
  arm64, as a byte-identical archive for identical inputs (components/data/operator_package.py).
- Network: private subnets, one security group for both; it may reach only PostgreSQL on
  the database's security group and HTTPS on the Secrets Manager interface endpoint. The
  endpoint's private DNS answers for the whole VPC, so it admits every compute in the VPC
  that reads Secrets Manager: the functions and each group in ``secrets_clients`` (the
  backend's instances). The functions are the one new peer the database admits on 5432.
- IAM: each function reads only its own secrets, writes its own log group, manages the VPC
  network interfaces Lambda needs.
- Timeout: Lambda's maximum (900 s), the invoke client waits longer and never retries a
  timed-out call (dbops/operator_client.py).
- Reserved concurrency (Checkov CKV_AWS_115), when the stack sets
  ``database.operatorReservedConcurrency`` (production): the operator runs one execution at a
  time, so deploy operations are serialized, and the client retries a throttle while another
  one runs; the reader a few, for a refresh's parallel reads. Off (staging, review stacks),
  both draw on the account's unreserved pool and deploy operations may run side by side, as
  they do in ``direct`` access (migrations and the seed take their own locks): a function may
  reserve only what leaves the account 100 unreserved, which a new account does not have
  (``python -m ops preflight`` counts it). X-Ray tracing is active (CKV_AWS_50).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
import pulumi_aws as aws

from components.aws_shared import service_trust_policy, tcp_rule
from components.data.operator_package import (
    ARCHIVE,
    OPERATOR_ARCHITECTURE,
    OPERATOR_RUNTIME,
    PROJECT_ROOT,
    WHEELHOUSE,
    build_operator_archive,
    fetch_wheels,
    psycopg_pin,
)
from components.rds_ca import BUNDLE
from dbops.authority import ACCESS_READ, ACCESS_WRITE, AUTHORITY_ENV, DATABASE_KEYS, Authority, ManagedLogin
from dbops.db_credentials import PASSWORD_SECRET_KEY
from dbops.logins import LoginSpec
from dbops.operator_client import FUNCTION_TIMEOUT_S

HANDLER = "dbops.operator_handler.handler"
MEMORY_MB = 1769  # one full vCPU: the seed generator is CPU-bound
OPERATOR_CONCURRENCY = 1  # deploy operations never run side by side
# A refresh reads every dynamic resource at once; 5 stays within the reader login's 10 connections.
READER_CONCURRENCY = 5
XRAY_WRITE_POLICY = "policy/AWSXRayDaemonWriteAccess"  # what active tracing needs
LOG_RETENTION_DAYS = 30
POSTGRES_PORT = 5432
HTTPS_PORT = 443
# Where the archive unpacks (Lambda developer guide, "Defined runtime environment variables":
# LAMBDA_TASK_ROOT), and so the CA bundle in it.
LAMBDA_TASK_ROOT = "/var/task"
LAMBDA_CA_BUNDLE = f"{LAMBDA_TASK_ROOT}/{BUNDLE.relative_to(PROJECT_ROOT).as_posix()}"
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
    """Package the project's dbops/, seed/ and sql/ with psycopg's wheels for the function's
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
    connection: pulumi.Input[dict]
    """The database (host, port, dbname, sslmode) and its deploying login (user and
    ``password_secret_arn``, the RDS-managed master secret): both functions' database."""
    logins: Mapping[str, LoginSpec]
    """The logins the operator manages, with their groups and limits: exactly the stack's."""
    login_secret_arns: Mapping[str, pulumi.Input[str]]
    """Each managed login's secret."""
    reader_login: str
    """The managed login, one that may only read, as which the reader connects."""
    code: OperatorCode
    allow_data_destruction: bool = False
    """The stack's ``database.allowDataDestruction``: whether the operator may drop the schema."""
    secrets_endpoint: bool = True
    """Create a Secrets Manager interface endpoint; false when the subnets already reach
    Secrets Manager (a NAT gateway, or an endpoint the VPC has)."""
    reserved_concurrency: bool = False
    """Reserve each function's concurrency (the operator 1, the reader 5); off: none reserved."""
    secrets_clients: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """The security groups of the other computes in the VPC that read Secrets Manager, by a
    short name (``backend``): the endpoint admits each on 443, besides the functions."""
    tags: Mapping[str, str] | None = None


@dataclass(frozen=True)
class _FunctionKind:
    """One of the two functions: its resource-name prefix, its name suffix and its access."""

    prefix: str
    suffix: str
    access: str
    does: str
    concurrency: int


class DatabaseOperator(pulumi.ComponentResource):
    function_arn: pulumi.Output[str]
    function_name: pulumi.Output[str]
    reader_arn: pulumi.Output[str]
    reader_name: pulumi.Output[str]
    read_invoke_policy_arn: pulumi.Output[str]
    operate_invoke_policy_arn: pulumi.Output[str]
    security_group_id: pulumi.Output[str]

    def __init__(self, name: str, args: DatabaseOperatorArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("swipesavvy:database:DatabaseOperator", name, None, opts)
        tags = dict(args.tags or {})
        child = pulumi.ResourceOptions(parent=self)

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
        # The endpoint's group: another stack in this VPC admits its own readers on it.
        self.endpoint_security_group_id: pulumi.Output[str] | None = None
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

        master_secret_arn = pulumi.Output.from_input(args.connection).apply(lambda c: c[PASSWORD_SECRET_KEY])
        secret_arns = [args.login_secret_arns[login] for login in args.logins]
        writer = self._function(
            _FunctionKind(name, "operator", ACCESS_WRITE, "migrations, logins, seed and flags", OPERATOR_CONCURRENCY),
            args,
            group,
            endpoint,
            [master_secret_arn, *secret_arns],
            tags,
        )
        reader = self._function(
            _FunctionKind(
                f"{name}-reader", "reader", ACCESS_READ, "read-only: refresh, previews, verify", READER_CONCURRENCY
            ),
            args,
            group,
            endpoint,
            [args.login_secret_arns[args.reader_login]],
            tags,
        )
        self.function_arn, self.function_name = writer.arn, writer.name
        self.reader_arn, self.reader_name = reader.arn, reader.name
        self.read_invoke_policy_arn = self._invoke_policy(name, args, "read", reader, tags).arn
        self.operate_invoke_policy_arn = self._invoke_policy(name, args, "operate", writer, tags).arn
        self.security_group_id = group.id
        self.register_outputs(
            {
                "function_arn": self.function_arn,
                "function_name": self.function_name,
                "reader_arn": self.reader_arn,
                "reader_name": self.reader_name,
                "read_invoke_policy_arn": self.read_invoke_policy_arn,
                "operate_invoke_policy_arn": self.operate_invoke_policy_arn,
                "security_group_id": self.security_group_id,
            }
        )

    def _function(
        self,
        kind: _FunctionKind,
        args: DatabaseOperatorArgs,
        group: aws.ec2.SecurityGroup,
        endpoint: aws.ec2.VpcEndpoint | None,
        secret_arns: list[pulumi.Input[str]],
        tags: dict,
    ) -> aws.lambda_.Function:
        """One function with its log group, its role (these secrets only) and its authority."""
        child = pulumi.ResourceOptions(parent=self)
        function_name = f"swipesavvy-{args.stack}-db-{kind.suffix}"
        log_group = aws.cloudwatch.LogGroup(
            f"{kind.prefix}-logs",
            name=f"/aws/lambda/{function_name}",
            retention_in_days=LOG_RETENTION_DAYS,
            tags=tags,
            opts=child,
        )
        role, policy = self._role(kind, args, log_group, secret_arns, tags, child)
        partition = aws.get_partition_output(opts=pulumi.InvokeOutputOptions(parent=self)).partition
        tracing = aws.iam.RolePolicyAttachment(
            f"{kind.prefix}-xray",
            role=role.name,
            policy_arn=pulumi.Output.concat("arn:", partition, ":iam::aws:", XRAY_WRITE_POLICY),
            opts=child,
        )
        authority = pulumi.Output.all(args.connection, *[args.login_secret_arns[login] for login in args.logins]).apply(
            lambda values: Authority(
                access=kind.access,
                database={key: values[0][key] for key in DATABASE_KEYS},
                logins={
                    login: ManagedLogin(
                        group=spec.group,
                        secret_arn=arn,
                        connection_limit=spec.connection_limit,
                        statement_timeout_ms=spec.statement_timeout_ms,
                    )
                    for (login, spec), arn in zip(args.logins.items(), values[1:], strict=True)
                },
                allow_data_destruction=args.allow_data_destruction,
                reader_login=args.reader_login if kind.access == ACCESS_READ else None,
            ).to_json()
        )
        return aws.lambda_.Function(
            f"{kind.prefix}-function",
            name=function_name,
            description=f"SwipeSavvy {args.stack} database, inside the VPC: {kind.does}",
            role=role.arn,
            runtime=args.code.runtime,
            architectures=[args.code.architecture],
            handler=HANDLER,
            code=args.code.archive,
            timeout=FUNCTION_TIMEOUT_S,
            memory_size=MEMORY_MB,
            vpc_config=aws.lambda_.FunctionVpcConfigArgs(subnet_ids=args.subnet_ids, security_group_ids=[group.id]),
            # Its authority: what it may do comes from here, never from an event. libpq verifies
            # the server (sslmode verify-full) against RDS's CAs in the archive.
            environment=aws.lambda_.FunctionEnvironmentArgs(
                variables={AUTHORITY_ENV: authority, "PGSSLROOTCERT": LAMBDA_CA_BUNDLE}
            ),
            reserved_concurrent_executions=kind.concurrency if args.reserved_concurrency else None,
            tracing_config={"mode": "Active"},
            tags=tags,
            # Lambda needs its role's network-interface permissions before it can create the
            # function in the VPC; the log group first so its retention applies from the start.
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[policy, tracing, log_group, *filter(None, [endpoint])]
            ),
        )

    def _invoke_policy(
        self, name: str, args: DatabaseOperatorArgs, what: str, function: aws.lambda_.Function, tags: dict
    ) -> aws.iam.Policy:
        """Who may invoke ``function``: the roles this managed policy is attached to (the
        preview role: read only; the deploy role: both). GetFunction is the client's wait
        for an active function."""
        return aws.iam.Policy(
            f"{name}-{what}-invoke",
            name=f"swipesavvy-{args.stack}-db-{what}-invoke",
            description=f"Invoke the SwipeSavvy {args.stack} database function: {what}",
            policy=pulumi.Output.json_dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "InvokeIt",
                            "Effect": "Allow",
                            "Action": ["lambda:InvokeFunction", "lambda:GetFunction"],
                            "Resource": function.arn,
                        }
                    ],
                }
            ),
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self),
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
        functions and each of ``secrets_clients``; anything else times out on it.
        (PrivateLink guide, "DNS hostnames"; EC2 API reference, CreateVpcEndpoint PrivateDnsEnabled.)"""
        endpoint_group = aws.ec2.SecurityGroup(
            f"{name}-endpoint-sg",
            vpc_id=args.vpc_id,
            description="SwipeSavvy Secrets Manager endpoint: HTTPS from the computes that read secrets",
            tags={**tags, "Name": f"{name}-endpoint-sg"},
            opts=child,
        )
        self.endpoint_security_group_id = endpoint_group.id
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
        kind: _FunctionKind,
        args: DatabaseOperatorArgs,
        log_group: aws.cloudwatch.LogGroup,
        secret_arns: list[pulumi.Input[str]],
        tags: dict,
        child: pulumi.ResourceOptions,
    ) -> tuple[aws.iam.Role, aws.iam.RolePolicy]:
        """A function's role and its one inline policy: its secrets, its own log group, and
        the network-interface actions a VPC function needs (which IAM cannot scope to
        resources)."""
        role = aws.iam.Role(
            f"{kind.prefix}-role",
            description=f"SwipeSavvy {args.stack} database {kind.suffix}",
            assume_role_policy=service_trust_policy("lambda.amazonaws.com"),
            tags=tags,
            opts=child,
        )
        policy = aws.iam.RolePolicy(
            f"{kind.prefix}-policy",
            role=role.id,
            policy=pulumi.Output.json_dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "ReadItsDatabaseSecrets",
                            "Effect": "Allow",
                            "Action": "secretsmanager:GetSecretValue",
                            "Resource": secret_arns,
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
