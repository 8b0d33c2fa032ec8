"""``BackendService``: the SwipeSavvy API (runbook phase 3) on EC2, behind a load balancer.

- The release is ``backend.artifact``: a local build (packed reproducibly and uploaded to
  a private, versioned artifact bucket under its digest, the sha256 of its uncompressed
  tar) or an existing ``s3://`` object. Changing it is the release; returning to the old
  value is the rollback.
- Instances: ``backend.ami`` (an AMI id; a dated Amazon Linux 2023 release name, found
  among Amazon's own images; or ``latest``: Amazon Linux 2023's public SSM parameter,
  announced in the preview since a newer image rolls the instances), IMDSv2
  only with hop limit 1, an encrypted root volume, no public address, Session Manager
  instead of SSH (no key pair, no port 22). cloud-init installs Node.js, fetches and
  checks the release, writes the region's RDS CA bundle (shipped, not fetched), writes the env file from Secrets Manager
  at boot and starts the sandboxed systemd service (components/app/backend_boot.py): no secret
  is in user data or state.
- An Auto Scaling group in the private subnets, created after the database logins; a new
  launch-template version rolls the instances through an instance refresh (launch before
  terminate, auto rollback), and `pulumi up` waits for it (``rollout``,
  components/instance_refresh.py): instances that never pass the load balancer's health
  check on ``/api/health`` fail the update with the group back on the previous version.
- Network: an internal load balancer in the private subnets, reached only by CloudFront
  through a VPC origin (components/app/frontend.py): nothing about the API is public but the
  distribution. It admits port 80 only from the VPC origin's service-managed security group
  (added with the origin) and writes access logs to a private bucket. Instances admit 8080 only from the load balancer
  and reach out only on 443 (AWS APIs, package repositories, Datadog) through the VPC's
  NAT gateway (or, for Secrets Manager, the database operator's interface endpoint).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components.app.backend_boot import BACKEND_LOGIN, BootSettings, user_data
from components.app.release_archive import RELEASES_PREFIX, ReleaseArchive
from components.aws_shared import secret_recovery_days, service_trust_policy, tcp_rule
from components.config import LATEST_AMI, BackendConfig
from components.data import credential_slots
from components.instance_refresh import InstanceRefreshWait, InstanceRefreshWaitArgs
from components.observability.agent_config import MONITOR_LOGIN, AgentSettings
from components.private_bucket import bucket_policy, private_bucket

# Launch before terminate: with one instance, 100/200 keeps it serving during a refresh.
from components.refresh_timing import MAX_HEALTHY_PERCENT, MIN_HEALTHY_PERCENT, refresh_timeout

API_PORT = BootSettings.api_port
HEALTH_CHECK_PATH = "/api/health"
SSM_CORE_POLICY = "policy/AmazonSSMManagedInstanceCore"
HTTP_PORT, HTTPS_PORT = 80, 443
# The group's launch template version, as the engine's property path names it: the rollout owns it.
GROUP_TEMPLATE_VERSION = "launchTemplate.version"
BUILD_DIR = Path(".build")
ACCESS_LOG_RETENTION_DAYS = 90
ACCESS_LOG_PREFIX = "alb"
# Who writes access logs: this service principal in every region; the legacy per-region ELB
# account is not supported in newer regions (ELB user guide, "Enable access logs for your
# Application Load Balancer", step 2: "Attach a policy to your S3 bucket").
ELB_LOG_DELIVERY_PRINCIPAL = "logdelivery.elasticloadbalancing.amazonaws.com"


def ami_parameter(architecture: str) -> str:
    return f"/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-{architecture}"


@dataclass(frozen=True)
class LogBucket:
    bucket: aws.s3.Bucket
    policy: aws.s3.BucketPolicy


@dataclass
class AgentArgs:
    """The Datadog agent's inputs: secrets by ARN only (the instance role reads them)."""

    site: str
    api_key_secret_arn: pulumi.Input[str]
    monitor_secret_arn: pulumi.Input[str]
    """The ``swipesavvy_monitor`` login's secret (RDS JSON shape), for the postgres check."""
    db_host: pulumi.Input[str]
    db_port: pulumi.Input[int]
    db_name: str
    api_key_version: pulumi.Input[str] = ""
    """The key's secret version: a rotated key is a new launch template version, so the
    same update rolls the instances and every agent starts with the new key."""
    monitor_login: str = MONITOR_LOGIN
    """The slot of the monitoring login in use (components/data/credential_slots.py)."""
    monitor_secret_version: pulumi.Input[str] = ""
    """Its secret's version, on the launch template as the key's is."""
    monitor_slot_secret_arns: Sequence[pulumi.Input[str]] = ()
    """Both slots' secrets: agents of the previous launch template resolve theirs at every start."""


@dataclass
class BackendServiceArgs:
    config: BackendConfig
    stack: str
    environment: str
    project_root: Path
    vpc_id: pulumi.Input[str]
    private_subnet_ids: pulumi.Input[list]
    security_group_id: pulumi.Input[str]
    """The backend tier's security group (created by Network, admitted by the database)."""
    db_secret_arn: pulumi.Input[str]
    """The backend login's secret (RDS JSON shape), read at boot."""
    tags: Mapping[str, str]
    release: ReleaseArchive | None = None
    """The packed local release (``load_release``); None for an uploaded s3:// release."""
    agent: AgentArgs | None = None
    """The Datadog agent (monitoring enabled); None: no agent."""
    keep_on_destroy: bool = True
    """The release bucket outlives the stack; False (review stacks): emptied and deleted."""
    boot_after: Sequence[pulumi.Resource] = ()
    """What must exist before an instance boots: the database logins its env file names."""
    db_login: str = BACKEND_LOGIN
    """The slot of the backend's login in use (components/data/credential_slots.py)."""
    db_secret_version: pulumi.Input[str] = ""
    """Its secret's version: a new password is a new launch template version, which rolls the instances."""
    db_slot_secret_arns: Sequence[pulumi.Input[str]] = ()
    """Both slots' secrets: the instances of the previous launch template were given the other one."""
    api_token_rotation: int = 0
    """``backend.apiTokenRotation``: which slot of the bearer tokens is current."""


class BackendService(pulumi.ComponentResource):
    load_balancer_dns_name: pulumi.Output[str]
    load_balancer_arn: pulumi.Output[str]
    load_balancer_security_group_id: pulumi.Output[str]
    """Admits nothing of its own: CloudFront's VPC origin adds what it needs."""
    vpc_id: pulumi.Output[str]
    group_name: pulumi.Output[str]
    release_uri: pulumi.Output[str]
    image_id: pulumi.Output[str]
    rollout: InstanceRefreshWait
    """Ends when the instances run the current launch template version; fails `pulumi up` otherwise."""

    def __init__(self, name: str, args: BackendServiceArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("swipesavvy:backend:BackendService", name, None, opts)
        config, tags = args.config, dict(args.tags)
        child = pulumi.ResourceOptions(parent=self)

        release_uri, release_objects_arn, release_sha256 = self._release(name, args, tags)
        tokens_secret_arn, tokens_version = self._api_tokens(name, args, tags, child)

        alb_group = self._load_balancer_security_group(name, args, tags, child)
        self._instance_rules(name, args, alb_group, child)
        target_group = aws.lb.TargetGroup(
            f"{name}-api",
            vpc_id=args.vpc_id,
            port=API_PORT,
            protocol="HTTP",
            target_type="instance",
            deregistration_delay=30,
            health_check={
                "path": HEALTH_CHECK_PATH,
                "matcher": "200",
                "port": "traffic-port",
                "protocol": "HTTP",
                "interval": 15,
                "healthy_threshold": 2,
                "unhealthy_threshold": 3,
                "timeout": 5,
            },
            tags=tags,
            opts=child,
        )
        access_logs = self._access_log_bucket(name, tags, args.keep_on_destroy)
        # Internal, in the private subnets: CloudFront's VPC origin is the only way in
        # (CloudFront developer guide, "Restrict access with VPC origins").
        load_balancer = aws.lb.LoadBalancer(
            f"{name}-alb",
            load_balancer_type="application",
            internal=True,
            subnets=args.private_subnet_ids,
            security_groups=[alb_group.id],
            drop_invalid_header_fields=True,
            enable_deletion_protection=args.environment == "production",
            access_logs={"bucket": access_logs.bucket.bucket, "prefix": ACCESS_LOG_PREFIX, "enabled": True},
            tags=tags,
            # ELB checks that it may write to the bucket when logging is switched on.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[access_logs.policy]),
        )
        aws.lb.Listener(
            f"{name}-http",
            load_balancer_arn=load_balancer.arn,
            port=HTTP_PORT,
            protocol="HTTP",
            default_actions=[{"type": "forward", "target_group_arn": target_group.arn}],
            tags=tags,
            opts=child,
        )

        profile, instance_policy = self._instance_profile(
            name, args, release_objects_arn, tokens_secret_arn, tags, child
        )
        region = aws.get_region_output(opts=pulumi.InvokeOutputOptions(parent=self)).region
        # The base64 user data: cloud-init that fetches the release and the secret at boot.
        boot = pulumi.Output.all(
            region,
            release_uri,
            release_sha256,
            args.db_secret_arn,
            self._agent_settings(args, release_sha256),
            tokens_secret_arn,
        ).apply(
            lambda values: user_data(
                BootSettings(
                    region=values[0],
                    release_uri=values[1],
                    release_sha256=values[2],
                    db_secret_arn=values[3],
                    node_env=args.environment,
                    log_level=config.log_level,
                    agent=values[4],
                    api_tokens_secret_arn=values[5],
                    db_login=args.db_login,
                )
            )
        )
        self.image_id = self._image(config)
        # The secrets' versions: a rotated one is a new launch template version, so the same
        # update rolls the instances (an instance reads its secrets only at boot).
        versions = {"db-login-secret-version": args.db_secret_version, "api-tokens-secret-version": tokens_version}
        if args.agent:
            versions |= {
                "datadog-agent-key-version": args.agent.api_key_version,
                "db-monitor-secret-version": args.agent.monitor_secret_version,
            }
        template = self._launch_template(name, args, profile, boot, self.image_id, versions, tags, child)
        # A version number, not "$Latest": an instance refresh only starts on a change, and a
        # rollback needs a numbered version to return to (EC2 Auto Scaling user guide, "Undo
        # changes with a manual or auto rollback").
        version = template.latest_version.apply(str)
        group = aws.autoscaling.Group(
            f"{name}-asg",
            vpc_zone_identifiers=args.private_subnet_ids,
            min_size=config.instance_count,
            max_size=config.instance_count,
            desired_capacity=config.instance_count,
            # The first version at create; later versions reach the group only through the
            # rollout's refresh (ignore_changes below), so a rollback restores the previous one.
            launch_template={"id": template.id, "version": version},
            target_group_arns=[target_group.arn],
            health_check_type="ELB",
            health_check_grace_period=config.health_check_grace_seconds,
            wait_for_elb_capacity=config.instance_count,
            wait_for_capacity_timeout="20m",
            tags=[
                {"key": key, "value": value, "propagate_at_launch": True}
                for key, value in {**tags, "Name": f"swipesavvy-{args.stack}-backend"}.items()
            ],
            # The env file is written at boot from the backend login's secret: the login must
            # exist; the release and the secrets are read through the role's policy.
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[*args.boot_after, instance_policy],
                ignore_changes=[GROUP_TEMPLATE_VERSION],
            ),
        )
        # Starts the refresh with the new version as its desired configuration and waits for it
        # (components/instance_refresh.py).
        self.rollout = InstanceRefreshWait(
            f"{name}-rollout",
            InstanceRefreshWaitArgs(
                region=region,
                group_name=group.name,
                launch_template_id=template.id,
                launch_template_version=version,
                min_healthy_percentage=MIN_HEALTHY_PERCENT,
                max_healthy_percentage=MAX_HEALTHY_PERCENT,
                instance_warmup_seconds=config.health_check_grace_seconds,
                timeout_seconds=refresh_timeout(config.instance_count, config.health_check_grace_seconds),
            ),
            opts=child,
        )

        self.load_balancer_dns_name = load_balancer.dns_name
        self.load_balancer_arn = load_balancer.arn
        self.load_balancer_security_group_id = alb_group.id
        self.vpc_id = pulumi.Output.from_input(args.vpc_id)
        self.group_name = group.name
        self.release_uri = release_uri
        self.register_outputs(
            {
                "load_balancer_dns_name": self.load_balancer_dns_name,
                "load_balancer_arn": self.load_balancer_arn,
                "group_name": self.group_name,
                "release_uri": self.release_uri,
                "image_id": self.image_id,
            }
        )

    # --- pieces -----------------------------------------------------------------------------

    def _release(
        self, name: str, args: BackendServiceArgs, tags: dict
    ) -> tuple[pulumi.Output[str], pulumi.Output[str], pulumi.Output[str]]:
        """The release's S3 URI, the ARN of every release object in its bucket (``releases/*``:
        a rollback launches the previous version, which names the previous release) and the
        release's sha256 (an uploaded release's key names it)."""
        if args.config.artifact_is_s3:
            bucket, _, key = args.config.artifact.removeprefix("s3://").partition("/")
            partition = aws.get_partition_output(opts=pulumi.InvokeOutputOptions(parent=self)).partition
            arn = pulumi.Output.concat("arn:", partition, f":s3:::{bucket}/{RELEASES_PREFIX}*")
            sha256 = key.removeprefix(RELEASES_PREFIX).removesuffix(".tar.gz")
            return pulumi.Output.from_input(args.config.artifact), arn, pulumi.Output.from_input(sha256)
        release = args.release
        # Old releases stay, also after `pulumi destroy` (retained): the rollback is a config
        # change, and a re-created stack can name an earlier release by its s3:// URI.
        kept = pulumi.ResourceOptions(parent=self, retain_on_delete=args.keep_on_destroy)
        artifacts = private_bucket(
            f"{name}-artifacts",
            kept,
            {**tags, "purpose": "backend releases"},
            expiration_days=None,
            force_destroy=not args.keep_on_destroy,
            region=None,
        )
        bucket_policy(artifacts)  # TLS only; the instances read through their role
        bucket = artifacts.bucket
        obj = aws.s3.BucketObjectv2(
            f"{name}-release",
            bucket=bucket.bucket,
            key=release.key,  # content-addressed: a new release is a new object, the old one stays
            source=pulumi.FileAsset(str(self._staged(args.project_root, release))),
            content_type="application/gzip",
            tags=tags,
            # The key names the release's content (its tar's digest); another machine's
            # compressor packs the same release into other bytes, which is no new release.
            opts=pulumi.ResourceOptions.merge(kept, pulumi.ResourceOptions(ignore_changes=["source"])),
        )
        uri = pulumi.Output.concat("s3://", obj.bucket, "/", obj.key)
        releases = pulumi.Output.concat(bucket.arn, f"/{RELEASES_PREFIX}*")
        return uri, releases, pulumi.Output.from_input(release.sha256)

    @staticmethod
    def _agent_settings(args: BackendServiceArgs, release_sha256: pulumi.Output[str]) -> pulumi.Output:
        """The agent's settings once its inputs are known, or None without an agent."""
        agent = args.agent
        if agent is None:
            return pulumi.Output.from_input(None)
        return pulumi.Output.all(
            agent.api_key_secret_arn, agent.monitor_secret_arn, agent.db_host, agent.db_port, release_sha256
        ).apply(
            lambda values: AgentSettings(
                site=agent.site,
                env=args.stack,
                version=values[4][:12],  # the release's digest, as APM and host tags show it
                api_key_secret_arn=values[0],
                monitor_secret_arn=values[1],
                db_host=values[2],
                db_port=int(values[3]),
                db_name=agent.db_name,
                monitor_login=agent.monitor_login,
            )
        )

    @staticmethod
    def _staged(project_root: Path, release: ReleaseArchive) -> Path:
        """The packed release as a file for the upload, named by its content."""
        path = project_root / BUILD_DIR / f"backend-{release.sha256}.tar.gz"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(release.data)
        return path

    def _load_balancer_security_group(
        self, name: str, args: BackendServiceArgs, tags: dict, child: pulumi.ResourceOptions
    ) -> aws.ec2.SecurityGroup:
        group = aws.ec2.SecurityGroup(
            f"{name}-alb-sg",
            vpc_id=args.vpc_id,
            description="SwipeSavvy API load balancer (internal): HTTP from the CloudFront VPC origin only",
            tags={**tags, "Name": f"{name}-alb-sg"},
            opts=child,
        )
        # No ingress here: the VPC origin's service-managed security group is admitted once the
        # origin exists (components/app/frontend.py). The load balancer has no public address.
        tcp_rule(
            aws.vpc.SecurityGroupEgressRule,
            f"{name}-alb-to-backend",
            group.id,
            API_PORT,
            "To the API instances",
            child,
            referenced_security_group_id=args.security_group_id,
        )
        return group

    def _access_log_bucket(self, name: str, tags: dict, keep_on_destroy: bool) -> LogBucket:
        """A private bucket the load balancer writes its access logs to (AWS FSBP ELB.5),
        kept after `pulumi destroy` like the site's logs (not a review stack's); its
        lifecycle expires them."""
        identity = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self))
        logs = private_bucket(
            f"{name}-alb-logs",
            pulumi.ResourceOptions(parent=self, retain_on_delete=keep_on_destroy),
            {**tags, "purpose": "load balancer access logs"},
            expiration_days=ACCESS_LOG_RETENTION_DAYS,
            force_destroy=not keep_on_destroy,
            region=None,  # ELB writes only to a bucket in its own region
        )
        objects = pulumi.Output.concat(logs.bucket.arn, f"/{ACCESS_LOG_PREFIX}/AWSLogs/", identity.account_id, "/*")
        policy = bucket_policy(
            logs,
            {
                "Sid": "ElbLogDelivery",
                "Effect": "Allow",
                "Principal": {"Service": ELB_LOG_DELIVERY_PRINCIPAL},
                "Action": "s3:PutObject",
                "Resource": objects,
            },
        )
        return LogBucket(logs.bucket, policy)

    def _instance_rules(
        self, name: str, args: BackendServiceArgs, alb_group: aws.ec2.SecurityGroup, child: pulumi.ResourceOptions
    ) -> None:
        tcp_rule(
            aws.vpc.SecurityGroupIngressRule,
            f"{name}-from-alb",
            args.security_group_id,
            API_PORT,
            "API from the load balancer",
            child,
            referenced_security_group_id=alb_group.id,
        )
        tcp_rule(
            aws.vpc.SecurityGroupEgressRule,
            f"{name}-https-out",
            args.security_group_id,
            HTTPS_PORT,
            "HTTPS out through the NAT gateway: AWS APIs, package repositories, Datadog",
            child,
            cidr_ipv4="0.0.0.0/0",
        )

    def _api_tokens(
        self, name: str, args: BackendServiceArgs, tags: dict, child: pulumi.ResourceOptions
    ) -> tuple[pulumi.Output[str], pulumi.Output[str]]:
        """The API's bearer tokens (staging and admin), kept in a secret the instances read at
        boot into the env file (examples/backend-release/README.md): never in user data, and in
        state only as secrets. Its ARN and version.

        Three slots per token (components/data/credential_slots.py ``TOKEN_SLOTS``):
        ``backend.apiTokenRotation`` names the current pair; the secret also holds the next
        pair, generated a rotation ahead, and after a rotation the previous one: the instances
        accept all three, so clients switch to a new pair whenever they like, also while the
        refresh still runs instances that booted before the rotation."""
        rotation, slots = args.api_token_rotation, credential_slots.TOKEN_SLOTS
        tokens = {
            (kind, slot): random.RandomPassword(
                # slot a: the tokens' name before slots existed
                f"{name}-{kind}-token" + credential_slots.slot_name("", slot).replace("_", "-"),
                length=40,
                special=False,
                keepers=slots.keepers(rotation, slot),
                opts=child,
            )
            for kind in ("api", "admin")
            for slot in slots.all
        }

        def pair(prefix: str, slot: int) -> dict[str, pulumi.Output[str]]:
            return {
                f"{prefix}api_token": tokens["api", slot].result,
                f"{prefix}admin_token": tokens["admin", slot].result,
            }

        document = pair("", slots.active(rotation)) | pair("next_", slots.next(rotation))
        if rotation:  # before the first rotation there is no previous pair
            document |= pair("previous_", slots.previous(rotation))
        secret = aws.secretsmanager.Secret(
            f"{name}-api-tokens",
            name_prefix=f"swipesavvy/{args.stack}/api-tokens-",  # as the logins' secrets: a re-created stack gets new ones
            description=f"SwipeSavvy {args.stack}: the API's bearer tokens (api_token, admin_token)",
            recovery_window_in_days=secret_recovery_days(args.keep_on_destroy),
            tags=tags,
            opts=child,
        )
        version = aws.secretsmanager.SecretVersion(
            f"{name}-api-tokens",
            secret_id=secret.id,
            secret_string=pulumi.Output.json_dumps(document),
            opts=child,
        )
        return secret.arn, version.version_id

    def _instance_profile(
        self,
        name: str,
        args: BackendServiceArgs,
        release_objects_arn: pulumi.Output[str],
        tokens_secret_arn: pulumi.Output[str],
        tags: dict,
        child: pulumi.ResourceOptions,
    ) -> aws.iam.InstanceProfile:
        partition = aws.get_partition_output(opts=pulumi.InvokeOutputOptions(parent=self)).partition
        role = aws.iam.Role(
            f"{name}-instance",
            description=f"SwipeSavvy {args.stack} API instances",
            assume_role_policy=service_trust_policy("ec2.amazonaws.com"),
            tags=tags,
            opts=child,
        )
        # Session Manager: shell access without SSH keys or port 22.
        aws.iam.RolePolicyAttachment(
            f"{name}-ssm",
            role=role.name,
            policy_arn=pulumi.Output.concat("arn:", partition, ":iam::aws:", SSM_CORE_POLICY),
            opts=child,
        )
        policy = aws.iam.RolePolicy(
            f"{name}-instance",
            role=role.id,
            policy=pulumi.Output.json_dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "ReadTheReleases",  # content-addressed: each version reads its own
                            "Effect": "Allow",
                            "Action": "s3:GetObject",
                            "Resource": release_objects_arn,
                        },
                        {
                            "Sid": "ReadTheBackendLogin",  # both slots: the previous launch template's too
                            "Effect": "Allow",
                            "Action": "secretsmanager:GetSecretValue",
                            "Resource": list(args.db_slot_secret_arns) or args.db_secret_arn,
                        },
                        {
                            "Sid": "ReadTheApiTokens",
                            "Effect": "Allow",
                            "Action": "secretsmanager:GetSecretValue",
                            "Resource": tokens_secret_arn,
                        },
                        *(
                            [
                                {
                                    "Sid": "ReadTheAgentSecrets",  # its API key and the monitoring login
                                    "Effect": "Allow",
                                    "Action": "secretsmanager:GetSecretValue",
                                    "Resource": [
                                        args.agent.api_key_secret_arn,
                                        *(args.agent.monitor_slot_secret_arns or [args.agent.monitor_secret_arn]),
                                    ],
                                }
                            ]
                            if args.agent
                            else []
                        ),
                    ],
                }
            ),
            opts=child,
        )
        return aws.iam.InstanceProfile(f"{name}-instance", role=role.name, tags=tags, opts=child), policy

    def _image(self, config: BackendConfig) -> pulumi.Output[str]:
        """The AMI id: ``backend.ami`` as set; a release name's image among Amazon's own; or with
        ``latest`` the newest Amazon Linux 2023 for the architecture, announced in every preview
        since a newer one rolls the instances."""
        if config.ami_release is not None:
            # Owner "amazon" only: anyone may publish an image of that name. Deprecated images
            # are hidden by default; a pin must keep working after Amazon deprecates its release.
            return aws.ec2.get_ami_output(
                owners=["amazon"],
                filters=[
                    {"name": "name", "values": [config.ami_release]},
                    {"name": "architecture", "values": [config.architecture]},
                ],
                include_deprecated=True,
                most_recent=True,
                opts=pulumi.InvokeOutputOptions(parent=self),
            ).image_id
        if config.ami != LATEST_AMI:
            return pulumi.Output.from_input(config.ami)
        parameter = ami_parameter(config.architecture)
        # A public AMI id; .value is always marked secret. An id, not "resolve:ssm:": a rollback
        # cannot return to a launch template that names an SSM parameter (EC2 Auto Scaling user
        # guide, "Undo changes with a manual or auto rollback").
        image = aws.ssm.get_parameter_output(
            name=parameter, opts=pulumi.InvokeOutputOptions(parent=self)
        ).insecure_value
        return image.apply(lambda ami: self._announce_latest(ami, parameter))

    def _announce_latest(self, ami: str, parameter: str) -> str:
        pulumi.log.warn(
            f"swipesavvy:backend.ami is latest: the instances run {ami} ({parameter}); when Amazon Linux"
            f" publishes a newer image, the next `pulumi up` rolls every instance"
            f" (to choose when: pulumi config set --path 'swipesavvy:backend.ami' {ami})",
            resource=self,
        )
        return ami

    def _launch_template(
        self,
        name: str,
        args: BackendServiceArgs,
        profile: aws.iam.InstanceProfile,
        boot: pulumi.Output[str],
        image_id: pulumi.Output[str],
        versions: Mapping[str, pulumi.Input[str]],
        tags: dict,
        child: pulumi.ResourceOptions,
    ) -> aws.ec2.LaunchTemplate:
        config = args.config
        return aws.ec2.LaunchTemplate(
            f"{name}-lt",
            description=f"SwipeSavvy {args.stack} API",
            image_id=image_id,
            instance_type=config.instance_type,
            iam_instance_profile={"arn": profile.arn},
            user_data=boot,  # already base64, as EC2 requires
            network_interfaces=[
                {
                    "associate_public_ip_address": "false",
                    "delete_on_termination": "true",
                    "security_groups": [args.security_group_id],
                }
            ],
            metadata_options={
                "http_endpoint": "enabled",
                "http_tokens": "required",  # IMDSv2 only
                "http_put_response_hop_limit": 1,  # no container on the host may reach it
                "instance_metadata_tags": "disabled",
            },
            block_device_mappings=[
                {
                    "device_name": "/dev/xvda",
                    "ebs": {
                        "encrypted": "true",
                        "volume_type": "gp3",
                        "volume_size": config.root_volume_gib,
                        "delete_on_termination": "true",
                    },
                }
            ],
            monitoring={"enabled": True},
            update_default_version=True,
            tag_specifications=[
                {
                    "resource_type": kind,
                    "tags": {
                        **tags,
                        "Name": f"swipesavvy-{args.stack}-backend",
                        **versions,
                    },
                }
                for kind in ("instance", "volume")
            ],
            tags=tags,
            opts=child,
        )
