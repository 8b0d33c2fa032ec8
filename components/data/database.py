"""``Database``: RDS PostgreSQL, its secrets and login roles, the schema and the mock data.

Secure by default: encrypted gp3 storage, private subnets only, TLS forced by the
parameter group, 5432 open only to the backend's security group (and to explicitly
configured deploy-runner CIDRs), IAM database authentication on, the master password
generated and rotated by RDS in Secrets Manager, one generated password per application
login in its own secret, deletion protection and a final snapshot.

No password is copied into Pulumi state: the dynamic resources get the ARN of the secret
holding the password and read it when they run, so RDS's rotation of the master password
never leaves a stale copy for ``refresh`` or ``destroy``.

The logins the instances hold (the backend's, the agent's) come in two slots used
alternately (components/data/credential_slots.py): ``database.credentialRotation`` names
the active one, and a rotation regenerates only the inactive one's password before the
instances move to it, so no running instance loses its login (docs/operations.md "Secrets").

Order inside the database, as in the runbook: DatabaseSchema (migrations; creates the
group roles) -> the login roles (members of those groups) and the "after schema" snapshot
-> MockDataSeed -> the "after seed" snapshot. FeatureFlagSettings follows the schema.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components.aws_shared import secret_recovery_days, service_trust_policy, tcp_rule
from components.config import DatabaseConfig, FeatureFlagSetting, SeedConfig
from components.data import credential_slots
from components.data.operator import HTTPS_PORT, DatabaseOperator, DatabaseOperatorArgs, OperatorCode
from components.feature_flags import FeatureFlagSettings, FeatureFlagSettingsArgs
from components.login_role import LoginRole, LoginRoleArgs
from components.mock_data import MockDataSeed, MockDataSeedArgs
from components.rds_ca import SERVER_CA
from components.schema import DatabaseSchema, DatabaseSchemaArgs
from dbops.logins import LoginSpec

MASTER_USERNAME = "swipesavvy_admin"


POSTGRES_PORT = 5432
ENHANCED_MONITORING_POLICY = "policy/service-role/AmazonRDSEnhancedMonitoringRole"
APP_PASSWORD_LENGTH = 40
LOG_EXPORTS = ("postgresql", "upgrade")
DISPOSABLE_LOG_DAYS = 7
KEPT_LOG_DAYS = 90  # staging's and production's, as their load balancer's and site's logs


@dataclass(frozen=True)
class AppLogin:
    """An application login and the group role (created by the migrations) it joins."""

    name: str
    group: str
    connection_limit_setting: str  # DatabaseConfig attribute holding its connection limit
    statement_timeout_ms: int = 0
    slot: int | None = None  # one of the two slots of a rotated login (credential_slots); None: a single login
    base: str = ""  # a slot's login: the rotated login's name (its slot a)


def _slots(login: AppLogin) -> tuple[AppLogin, ...]:
    """The two logins of a login the instances hold: same group and limits, names by slot."""
    return tuple(
        replace(login, name=credential_slots.slot_name(login.name, slot), slot=slot, base=login.name)
        for slot in credential_slots.LOGIN_SLOTS.all
    )


BACKEND_LOGIN, MONITOR_LOGIN = "swipesavvy_backend", "swipesavvy_monitor"
LOGIN_ROLES = (
    *_slots(AppLogin(BACKEND_LOGIN, "swipesavvy_readwrite", "backend_connection_limit")),
    # Ad-hoc analytics queries must not hold locks or connections forever. People and the
    # read-only operator read its secret when they connect: one login, rotated in place.
    AppLogin("swipesavvy_analytics", "swipesavvy_readonly", "analytics_connection_limit", statement_timeout_ms=300_000),
    # The Datadog agent's postgres check: statistics only (pg_monitor, through migration 011).
    *_slots(
        AppLogin(MONITOR_LOGIN, "swipesavvy_monitoring", "monitoring_connection_limit", statement_timeout_ms=10_000)
    ),
)


@dataclass(frozen=True)
class ActiveLogin:
    """The slot of a rotated login the instances use now, and the other one."""

    name: str
    secret_arn: pulumi.Output[str]
    secret_version: pulumi.Output[str]
    """Its secret's version: on the launch template, so a new password rolls the instances."""
    slot_secret_arns: tuple[pulumi.Output[str], ...]
    """Both slots' secrets, a then b: the instances of the previous launch template still
    read the other one, and the list does not change with a rotation (nor the role's policy)."""


# As which login the read-only operator reads: SELECT on the tables, the views and the
# deployment's records in swipesavvy_meta, no write (swipesavvy_readonly), and the catalogs
# everyone may read (pg_roles, pg_auth_members, pg_db_role_setting): all that refresh and
# verify read. An application login already, so no fourth password to manage.
READER_LOGIN = "swipesavvy_analytics"


def parameter_group_settings(config: DatabaseConfig) -> dict[str, str]:
    return {
        "rds.force_ssl": "1",
        "log_min_duration_statement": str(config.slow_query_ms),
        "log_statement": "ddl",  # schema changes leave a trace in CloudWatch
        "log_lock_waits": "1",
        "log_connections": "1",
        "log_disconnections": "1",
    }


@dataclass
class DatabaseArgs:
    config: DatabaseConfig
    seed: SeedConfig
    vpc_id: pulumi.Input[str]
    subnet_ids: pulumi.Input[list]
    backend_security_group_id: pulumi.Input[str]
    stack: str
    tags: Mapping[str, str]
    feature_flags: Mapping[str, FeatureFlagSetting] = field(default_factory=dict)
    apply_immediately: bool = True
    """Apply modifications now rather than in the next maintenance window (off in production)."""
    operator_code: OperatorCode | None = None
    """The operator function's code; required when ``config.access`` is "operator"."""
    keep_on_destroy: bool = True
    """A final snapshot, automated backups and the manual snapshots outlive the instance;
    False (review stacks): destroy leaves none of them."""
    existing_secrets_endpoint_security_group_id: str | None = None
    """Another stack's Secrets Manager endpoint in this VPC (private DNS): the operator and
    the backend are admitted on it, or their calls to Secrets Manager time out there."""


class Database(pulumi.ComponentResource):
    address: pulumi.Output[str]
    port: pulumi.Output[int]
    database_name: str
    security_group_id: pulumi.Output[str]
    master_secret_arn: pulumi.Output[str]
    app_secret_arns: dict[str, pulumi.Output[str]]
    login_roles: dict[str, LoginRole]
    """The application logins by name: what depends on a login existing (the backend's boot) waits for it."""
    active_logins: dict[str, ActiveLogin]
    """The rotated logins (BACKEND_LOGIN, MONITOR_LOGIN): the slot in use at ``database.credentialRotation``."""
    applied_migrations: pulumi.Output[list]
    instance_identifier: pulumi.Output[str]
    connection: pulumi.Output[dict]
    operator: DatabaseOperator | None

    def __init__(self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("swipesavvy:database:Database", name, None, opts)
        config, tags = args.config, dict(args.tags)
        child = pulumi.ResourceOptions(parent=self)
        self.database_name = config.name

        security_group = self._security_group(name, args, tags, child)
        instance = self._instance(name, args, security_group, tags, child)
        self.address, self.port = instance.address, instance.port
        self.instance_identifier = instance.identifier
        self.master_secret_arn = instance.master_user_secrets.apply(lambda secrets: secrets[0].secret_arn)

        # Direct access may go through a tunnel (SSM port forward), where the name the server's
        # certificate holds is not the host connected to; the operator never does, and verifies
        # both the certificate (RDS's CA, in its archive: PGSSLROOTCERT) and the name.
        sslmode = "verify-full" if config.access == "operator" else "require"
        host = pulumi.Output.from_input(config.connect_host) if config.connect_host else instance.address
        port = pulumi.Output.from_input(config.connect_port) if config.connect_port else instance.port
        connection = pulumi.Output.all(host, port, self.master_secret_arn).apply(
            lambda values: {
                "host": values[0],
                "port": int(values[1]),
                "dbname": config.name,
                "user": MASTER_USERNAME,
                "sslmode": sslmode,
                "password_secret_arn": values[2],
            }
        )
        self.connection = connection
        secrets = {login.name: self._login_secret(name, login, args, instance, tags) for login in LOGIN_ROLES}
        self.app_secret_arns = {login: secret.arn for login, (secret, _version) in secrets.items()}
        self.active_logins = self._active_logins(config.credential_rotation, secrets)
        operator = self._operator(name, args, security_group, tags) if config.access == "operator" else None
        self.operator = operator
        self.secrets_endpoint_security_group_id = operator.endpoint_security_group_id if operator else None
        if args.existing_secrets_endpoint_security_group_id:
            readers = {"backend": args.backend_security_group_id}
            if operator:
                readers["operator"] = operator.security_group_id
            for reader, group_id in readers.items():
                tcp_rule(
                    aws.vpc.SecurityGroupIngressRule,
                    f"{name}-existing-endpoint-from-{reader}",
                    args.existing_secrets_endpoint_security_group_id,
                    HTTPS_PORT,
                    f"HTTPS from the {args.stack} {reader} security group",
                    pulumi.ResourceOptions(parent=self),
                    referenced_security_group_id=group_id,
                )
        # What every resource working inside the database gets: where, and through what.
        reach = {
            "connection": connection,
            "database_id": pulumi.Output.concat(instance.resource_id, "/", config.name),
            "operator": operator.function_arn if operator else None,
            "reader": operator.reader_arn if operator else None,
        }

        schema = DatabaseSchema(
            f"{name}-schema",
            DatabaseSchemaArgs(**reach, allow_data_destruction=config.allow_data_destruction),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[instance, *filter(None, [operator])]),
        )
        self.applied_migrations = schema.applied
        # The backend's group boots only after these exist (BackendServiceArgs.boot_after).
        self.login_roles = {
            login.name: self._login_role(name, login, args, reach, schema, *secrets[login.name])
            for login in LOGIN_ROLES
        }

        after_schema = pulumi.ResourceOptions(parent=self, depends_on=[schema])
        # Taken once per instance, before any data: on later schema changes the database
        # already holds mock data, so "after schema" would no longer mean "without data".
        schema_snapshot = (
            self._snapshot(name, args, "schema", instance, {}, [schema], tags) if config.snapshot_after_schema else None
        )
        mock_data = (
            MockDataSeed(
                f"{name}-mock-data",
                MockDataSeedArgs(**reach, seed=args.seed),
                # The "after schema" snapshot must not contain mock data.
                opts=pulumi.ResourceOptions(parent=self, depends_on=[schema, *filter(None, [schema_snapshot])]),
            )
            if args.seed.enabled
            else None
        )
        if args.feature_flags:
            FeatureFlagSettings(
                f"{name}-feature-flags",
                FeatureFlagSettingsArgs(
                    **reach,
                    actor=f"pulumi:{args.stack}",
                    flags={
                        key: {"enabled": s.enabled, "rollout_percentage": s.rollout_percentage}
                        for key, s in args.feature_flags.items()
                    },
                ),
                opts=after_schema,
            )

        if config.snapshot_after_seed and mock_data is not None:
            captured = {"schema": schema.migrations.apply(_digest), "data": mock_data.checksum.apply(lambda c: c[:12])}
            self._snapshot(name, args, "seed", instance, captured, [schema, mock_data], tags)

        self.security_group_id = security_group.id
        self.register_outputs(
            {
                "address": self.address,
                "port": self.port,
                "database_name": self.database_name,
                "security_group_id": self.security_group_id,
                "master_secret_arn": self.master_secret_arn,
                "app_secret_arns": self.app_secret_arns,
                "applied_migrations": self.applied_migrations,
                "instance_identifier": self.instance_identifier,
            }
        )

    # --- pieces ---------------------------------------------------------------------------

    def _security_group(
        self, name: str, args: DatabaseArgs, tags: dict, child: pulumi.ResourceOptions
    ) -> aws.ec2.SecurityGroup:
        group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            vpc_id=args.vpc_id,
            description="SwipeSavvy PostgreSQL: 5432 from the backend and the deploy runner only",
            tags={**tags, "Name": f"{name}-sg"},
            opts=child,
        )
        rule = functools.partial(tcp_rule, port=POSTGRES_PORT, opts=child)
        rule(
            aws.vpc.SecurityGroupIngressRule,
            f"{name}-from-backend",
            group.id,
            description="PostgreSQL from the backend",
            referenced_security_group_id=args.backend_security_group_id,
        )
        rule(
            aws.vpc.SecurityGroupEgressRule,
            f"{name}-backend-to-db",
            args.backend_security_group_id,
            description="Backend to PostgreSQL",
            referenced_security_group_id=group.id,
        )
        for i, cidr in enumerate(args.config.deploy_runner_cidrs):
            rule(
                aws.vpc.SecurityGroupIngressRule,
                f"{name}-from-deploy-runner-{i}",
                group.id,
                description="PostgreSQL from the Pulumi deploy runner",
                cidr_ipv4=cidr,
            )
        return group

    def _instance(
        self,
        name: str,
        args: DatabaseArgs,
        security_group: aws.ec2.SecurityGroup,
        tags: dict,
        child: pulumi.ResourceOptions,
    ) -> aws.rds.Instance:
        config = args.config
        subnet_group = aws.rds.SubnetGroup(
            f"{name}-subnets",
            subnet_ids=args.subnet_ids,
            description="SwipeSavvy PostgreSQL (private subnets)",
            tags=tags,
            opts=child,
        )
        parameter_group = aws.rds.ParameterGroup(
            f"{name}-params",
            family=f"postgres{config.engine_version}",
            description="SwipeSavvy PostgreSQL: TLS only, slow statement logging",
            parameters=[
                aws.rds.ParameterGroupParameterArgs(name=k, value=v, apply_method="immediate")
                for k, v in sorted(parameter_group_settings(config).items())
            ],
            tags=tags,
            opts=child,
        )
        partition = aws.get_partition_output(opts=pulumi.InvokeOutputOptions(parent=self)).partition
        monitoring_role = aws.iam.Role(
            f"{name}-monitoring",
            description="RDS enhanced monitoring for SwipeSavvy PostgreSQL",
            assume_role_policy=service_trust_policy("monitoring.rds.amazonaws.com"),
            tags=tags,
            opts=child,
        )
        monitoring_attachment = aws.iam.RolePolicyAttachment(
            f"{name}-monitoring",
            role=monitoring_role.name,
            policy_arn=pulumi.Output.concat("arn:", partition, ":iam::aws:", ENHANCED_MONITORING_POLICY),
            opts=child,
        )
        # The inputs whose change makes AWS replace the instance: the final snapshot's suffix
        # is renewed with them, so a replaced instance and its successor never both take
        # "final-<suffix>" (DBSnapshotAlreadyExists would stop the later destroy).
        identity = {
            "engine": "postgres",
            "db_name": config.name,
            "username": MASTER_USERNAME,
            "storage_encrypted": True,
        }
        if args.keep_on_destroy:
            # The instance's suffix, renewed with what replaces it: names its identifier and its
            # final snapshot, so a successor takes neither the old identifier nor "final-<suffix>"
            # (DBSnapshotAlreadyExists would stop the later destroy).
            suffix = random.RandomId(
                f"{name}-final-snapshot",
                byte_length=4,
                keepers={key: str(value) for key, value in identity.items()},
                opts=child,
            ).hex
            identifier = pulumi.Output.concat(f"swipesavvy-{args.stack}-postgres-", suffix)
            final_snapshot = {
                "skip_final_snapshot": False,
                "final_snapshot_identifier": pulumi.Output.concat(f"swipesavvy-{args.stack}-final-", suffix),
            }
        else:
            identifier = pulumi.Output.from_input(f"swipesavvy-{args.stack}-postgres")
            final_snapshot = {"skip_final_snapshot": True}
        log_groups = self._log_groups(name, args, identifier, tags)
        return aws.rds.Instance(
            f"{name}-postgres",
            **identity,
            engine_version=config.engine_version,
            instance_class=config.instance_class,
            manage_master_user_password=True,  # generated and rotated by RDS, never in code or state
            port=POSTGRES_PORT,
            storage_type="gp3",
            allocated_storage=config.allocated_storage_gib,
            max_allocated_storage=config.max_allocated_storage_gib,
            db_subnet_group_name=subnet_group.name,
            vpc_security_group_ids=[security_group.id],
            publicly_accessible=False,
            multi_az=config.multi_az,
            parameter_group_name=parameter_group.name,
            backup_retention_period=config.backup_retention_days,
            copy_tags_to_snapshot=True,
            delete_automated_backups=not args.keep_on_destroy,
            deletion_protection=config.deletion_protection,
            iam_database_authentication_enabled=True,  # AWS FSBP RDS.10
            ca_cert_identifier=SERVER_CA,  # the CA its clients verify it with (components/rds_ca.py)
            identifier=identifier,
            **final_snapshot,
            enabled_cloudwatch_logs_exports=list(LOG_EXPORTS),
            performance_insights_enabled=True,
            performance_insights_retention_period=config.performance_insights_retention_days,
            monitoring_interval=config.monitoring_interval_seconds,
            monitoring_role_arn=monitoring_role.arn,
            auto_minor_version_upgrade=True,
            # Only with database.allowMajorVersionUpgrade (StackShape refuses a major change otherwise).
            allow_major_version_upgrade=config.allow_major_version_upgrade,
            apply_immediately=args.apply_immediately,
            tags=tags,
            # Protected while deletion protection is on, so `pulumi destroy` stops before it
            # deletes anything (the seed, logins and secrets would go first otherwise).
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[monitoring_attachment, *log_groups],
                protect=config.deletion_protection,
                delete_before_replace=not args.keep_on_destroy,  # a review stack's identifier is fixed
            ),
        )

    def _log_groups(
        self, name: str, args: DatabaseArgs, identifier: pulumi.Output[str], tags: dict
    ) -> list[aws.cloudwatch.LogGroup]:
        """The log groups RDS exports to (/aws/rds/instance/<identifier>/<log>, RDS user guide,
        "Publishing PostgreSQL logs to Amazon CloudWatch Logs"), created before the instance with
        an expiry; RDS would otherwise create them itself, never expiring. A review stack's go
        with it; a kept stack's stay after `pulumi destroy` (as its final snapshot does) and
        expire with their retention, and a re-created stack's instance has a new suffix, so
        new groups."""
        keep = args.keep_on_destroy
        return [
            aws.cloudwatch.LogGroup(
                f"{name}-{log}-log",
                name=pulumi.Output.concat("/aws/rds/instance/", identifier, f"/{log}"),
                retention_in_days=KEPT_LOG_DAYS if keep else DISPOSABLE_LOG_DAYS,
                tags=tags,
                opts=pulumi.ResourceOptions(parent=self, retain_on_delete=keep),
            )
            for log in LOG_EXPORTS
        ]

    def _login_secret(
        self, name: str, login: AppLogin, args: DatabaseArgs, instance: aws.rds.Instance, tags: dict
    ) -> tuple[aws.secretsmanager.Secret, aws.secretsmanager.SecretVersion]:
        """The login's generated password and the Secrets Manager secret holding it."""
        slug = login.name.removeprefix("swipesavvy_")
        child = pulumi.ResourceOptions(parent=self)
        password = random.RandomPassword(
            f"{name}-{slug}-password",
            length=APP_PASSWORD_LENGTH,
            special=False,
            # A slot's password is generated again when a rotation makes that slot active.
            keepers=credential_slots.LOGIN_SLOTS.keepers(args.config.credential_rotation, login.slot)
            if login.slot is not None
            else None,
            opts=child,
        )
        secret = aws.secretsmanager.Secret(
            f"{name}-{slug}",
            # A prefix, not a fixed name: a destroyed stack's secrets wait out their recovery
            # window under the old name while a re-created stack gets new ones the same day.
            name_prefix=f"swipesavvy/{args.stack}/db/{login.name}-",
            description=f"SwipeSavvy {args.stack}: PostgreSQL login {login.name}",
            recovery_window_in_days=secret_recovery_days(args.keep_on_destroy),
            tags=tags,
            opts=child,
        )
        version = aws.secretsmanager.SecretVersion(
            f"{name}-{slug}",
            secret_id=secret.id,
            secret_string=pulumi.Output.json_dumps(
                {
                    "engine": "postgres",
                    "host": instance.address,
                    "port": instance.port,
                    "dbname": args.config.name,
                    "username": login.name,
                    "password": password.result,
                }
            ),
            opts=child,
        )
        return secret, version

    @staticmethod
    def _login_spec(login: AppLogin, config: DatabaseConfig) -> LoginSpec:
        """The login as the stack declares it: what LoginRole creates and the operator allows."""
        return LoginSpec(
            login.name, login.group, getattr(config, login.connection_limit_setting), login.statement_timeout_ms
        )

    @staticmethod
    def _active_logins(
        rotation: int, secrets: Mapping[str, tuple[aws.secretsmanager.Secret, aws.secretsmanager.SecretVersion]]
    ) -> dict[str, ActiveLogin]:
        active = {}
        for login in LOGIN_ROLES:
            if login.slot == credential_slots.LOGIN_SLOTS.active(rotation):
                secret, version = secrets[login.name]
                slots = tuple(
                    secrets[credential_slots.slot_name(login.base, s)][0].arn for s in credential_slots.LOGIN_SLOTS.all
                )
                active[login.base] = ActiveLogin(login.name, secret.arn, version.version_id, slots)
        return active

    def _login_role(
        self,
        name: str,
        login: AppLogin,
        args: DatabaseArgs,
        reach: dict[str, pulumi.Output | None],
        schema: DatabaseSchema,
        secret: aws.secretsmanager.Secret,
        version: aws.secretsmanager.SecretVersion,
    ) -> LoginRole:
        """The login in the database, with the password its secret holds."""
        declared = self._login_spec(login, args.config)
        return LoginRole(
            f"{name}-{login.name.removeprefix('swipesavvy_')}",
            LoginRoleArgs(
                **reach,
                name=login.name,
                group=login.group,
                connection_limit=declared.connection_limit,
                statement_timeout_ms=declared.statement_timeout_ms,
                password_secret_arn=secret.arn,
                password_version=version.version_id,
            ),
            # The group roles it joins are created by the migrations.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[schema]),
        )

    def _operator(
        self, name: str, args: DatabaseArgs, security_group: aws.ec2.SecurityGroup, tags: dict
    ) -> DatabaseOperator:
        if args.operator_code is None:
            raise ValueError("database.access is operator but no operator code was built")
        return DatabaseOperator(
            f"{name}-operator",
            DatabaseOperatorArgs(
                stack=args.stack,
                vpc_id=args.vpc_id,
                subnet_ids=args.subnet_ids,
                database_security_group_id=security_group.id,
                connection=self.connection,
                logins={login.name: self._login_spec(login, args.config) for login in LOGIN_ROLES},
                login_secret_arns=self.app_secret_arns,
                reader_login=READER_LOGIN,
                code=args.operator_code,
                allow_data_destruction=args.config.allow_data_destruction,
                secrets_endpoint=args.config.operator_secrets_endpoint,
                reserved_concurrency=args.config.operator_reserved_concurrency,
                # The endpoint's private DNS also answers the backend's instances (boot, agent).
                secrets_clients={"backend": args.backend_security_group_id},
                tags=tags,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _snapshot(
        self,
        name: str,
        args: DatabaseArgs,
        after: str,
        instance: aws.rds.Instance,
        captured: Mapping[str, pulumi.Input[str]],
        depends_on: list[pulumi.Resource],
        tags: dict,
    ) -> aws.rds.Snapshot:
        """A manual snapshot (runbook steps 1.5 and 2.4), retained when replaced or destroyed
        unless the stack keeps nothing on destroy (``python -m ops snapshots prune`` bounds them).

        Its identifier ends in a random suffix renewed with the instance and with what it
        captured (``captured``, also its tags), so it never collides with a retained
        snapshot: not after a destroy and re-create, an instance replacement, or a return
        to earlier seed parameters (DBSnapshotAlreadyExists otherwise)."""
        suffix = random.RandomId(
            f"{name}-after-{after}",
            byte_length=4,
            keepers={"instance": instance.resource_id, **captured},
            opts=pulumi.ResourceOptions(parent=self),
        )
        return aws.rds.Snapshot(
            f"{name}-after-{after}",
            db_instance_identifier=instance.identifier,
            db_snapshot_identifier=pulumi.Output.concat(f"swipesavvy-{args.stack}-after-{after}-", suffix.hex),
            tags={**tags, "captures": after, **captured},
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on, retain_on_delete=args.keep_on_destroy),
        )


def _digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:12]
