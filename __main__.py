"""SwipeSavvy: the staging runbook (7 phases, ~4h45m by hand) as one `pulumi up`.

Config is read once, here, and validated before any resource is declared: a bad value
stops `pulumi preview` with one line naming the setting and the fix.
"""

import pulumi

from components.app.backend import AgentArgs, BackendService, BackendServiceArgs
from components.app.frontend import ApiOrigin, StaticSite, StaticSiteArgs
from components.app.release_archive import ReleaseArchiveError, load_release
from components.config import NAMESPACE, SECTIONS, ConfigError, parse_stack_config
from components.data.database import BACKEND_LOGIN, MONITOR_LOGIN, Database, DatabaseArgs
from components.data.operator import build_operator_code
from components.data.operator_package import PROJECT_ROOT, OperatorPackageError
from components.network import Network, NetworkArgs
from components.observability.agent_config import datadog_site
from components.observability.monitoring import (
    AgentApiKey,
    AgentApiKeyArgs,
    Monitoring,
    MonitoringArgs,
    refuse_second_integration_owner,
)
from components.stack_shape import StackShape, StackShapeArgs, after_shape, destroy_guard


def read_settings() -> dict:
    """The ``swipesavvy:*`` settings of this stack, raw, through Pulumi's public config API.

    The CLI hands a program its whole config bag (``get_config_env``), so a key this program
    does not know is refused by the parser rather than silently ignored. None of these
    settings is a secret: one stored as a secret is refused, since its value would be
    copied into plain resource inputs.
    """
    config = pulumi.Config(NAMESPACE)
    keys = {key.partition(":")[2] for key in pulumi.runtime.get_config_env() if key.startswith(f"{NAMESPACE}:")}
    secret_keys = set(pulumi.runtime.get_config_secret_keys_env())
    settings = {}
    for key in sorted(keys | set(SECTIONS)):
        full_key = config.full_key(key)
        secret = pulumi.runtime.is_config_secret(full_key) or full_key in secret_keys
        if key in SECTIONS and secret:  # an unknown key is refused by the parser as "not a setting"
            raise ConfigError(
                f"{full_key} is stored as a secret but holds no secret; the program would copy it into plain"
                f" resource inputs (fix: pulumi config set --path '{full_key}' <value>, without --secret)"
            )
        value = config.get(key)
        if value is not None:
            settings[key] = value
    return settings


try:
    config = parse_stack_config(pulumi.get_stack(), read_settings(), region=pulumi.Config("aws").get("region"))
    operator_code = build_operator_code() if config.database.access == "operator" else None
    backend_release = (
        load_release(PROJECT_ROOT, config.backend.artifact)
        if config.backend and not config.backend.artifact_is_s3
        else None
    )
    # The Datadog provider reads the same setting; the site also goes to the agent.
    dd_site = datadog_site(pulumi.Config("datadog").get("apiUrl"))
    if config.monitoring.enabled and config.monitoring.aws_integration:
        refuse_second_integration_owner(config.stack)  # before any resource: a refused preview creates nothing
except (ConfigError, OperatorPackageError, ReleaseArchiveError) as error:
    raise pulumi.RunError(str(error)) from None

# First: it refuses a network or engine change a live stack cannot make, before any step.
shape = StackShape(
    "swipesavvy-shape",
    StackShapeArgs(
        stack=config.stack,
        network=config.network,
        engine_version=config.database.engine_version,
        allow_major_version_upgrade=config.database.allow_major_version_upgrade,
        credential_rotation=config.database.credential_rotation,
        api_token_rotation=config.backend.api_token_rotation if config.backend else 0,
    ),
)
declared = after_shape(shape)  # every later resource waits for it, and is recorded for the destroy guard
network = Network("swipesavvy", NetworkArgs(config=config.network, tags=config.tags, zones=shape.zones))

database = Database(
    "swipesavvy-db",
    DatabaseArgs(
        config=config.database,
        seed=config.seed,
        feature_flags=config.feature_flags,
        vpc_id=network.vpc_id,
        subnet_ids=network.private_subnet_ids,
        backend_security_group_id=network.backend_security_group_id,
        stack=config.stack,
        tags=config.tags,
        # Production waits for the maintenance window, except for a major upgrade: its new parameter
        # group replaces the old one, whose delete RDS refuses while the instance still uses it.
        apply_immediately=not config.is_production or config.database.allow_major_version_upgrade,
        operator_code=operator_code,
        keep_on_destroy=not config.is_review,
        existing_secrets_endpoint_security_group_id=config.network.existing_secrets_endpoint_security_group_id,
    ),
)

pulumi.export("vpc_id", network.vpc_id)
# A review stack's network is staging's (python -m ops review-config reads these).
pulumi.export("private_subnet_ids", network.private_subnet_ids)
pulumi.export("public_subnet_ids", network.public_subnet_ids)
pulumi.export("db_instance_identifier", database.instance_identifier)
pulumi.export("db_address", database.address)
pulumi.export("db_port", database.port)
pulumi.export("db_name", database.database_name)
pulumi.export("db_master_secret_arn", database.master_secret_arn)
pulumi.export("db_app_secret_arns", database.app_secret_arns)
pulumi.export("db_applied_migrations", database.applied_migrations)
# How `python -m ops --stack` reaches the database: the connection (no password: it names
# the master secret) and, in operator mode, the function that runs the operations, its
# read-only twin, and the managed policies that allow invoking each (docs/operations.md "Reaching a
# private database": the preview role attaches the read one, the deploy role both).
pulumi.export("db_connection", database.connection)
if database.operator is not None:
    pulumi.export("db_operator_arn", database.operator.function_arn)
    pulumi.export("db_reader_arn", database.operator.reader_arn)
    pulumi.export("db_read_invoke_policy_arn", database.operator.read_invoke_policy_arn)
    pulumi.export("db_operate_invoke_policy_arn", database.operator.operate_invoke_policy_arn)
if database.secrets_endpoint_security_group_id is not None:  # a review stack in this VPC admits itself on it
    pulumi.export("secrets_endpoint_security_group_id", database.secrets_endpoint_security_group_id)

monitored = config.monitoring.enabled
agent_key = (
    AgentApiKey("swipesavvy-datadog-agent", AgentApiKeyArgs(config.stack, config.tags, not config.is_review))
    if monitored
    else None
)
# The slots of the logins the instances hold that are in use (database.credentialRotation).
backend_login, monitor_login = database.active_logins[BACKEND_LOGIN], database.active_logins[MONITOR_LOGIN]
backend = (
    BackendService(
        "swipesavvy-api",
        BackendServiceArgs(
            config=config.backend,
            stack=config.stack,
            environment=config.environment,
            project_root=PROJECT_ROOT,
            vpc_id=network.vpc_id,
            private_subnet_ids=network.private_subnet_ids,
            security_group_id=network.backend_security_group_id,
            db_secret_arn=backend_login.secret_arn,
            db_login=backend_login.name,
            db_secret_version=backend_login.secret_version,
            db_slot_secret_arns=backend_login.slot_secret_arns,
            api_token_rotation=config.backend.api_token_rotation,
            tags=config.tags,
            release=backend_release,
            keep_on_destroy=not config.is_review,
            boot_after=list(database.login_roles.values()),  # an instance reads its login's secret at boot
            agent=AgentArgs(
                site=dd_site,
                api_key_secret_arn=agent_key.secret_arn,
                monitor_secret_arn=monitor_login.secret_arn,
                monitor_login=monitor_login.name,
                monitor_secret_version=monitor_login.secret_version,
                monitor_slot_secret_arns=monitor_login.slot_secret_arns,
                db_host=database.address,
                db_port=database.port,
                db_name=database.database_name,
                api_key_version=agent_key.version,
            )
            if agent_key
            else None,
        ),
    )
    if config.backend
    else None
)
if backend is not None:
    pulumi.export("backend_group_name", backend.group_name)
    pulumi.export("backend_release_uri", backend.release_uri)
    pulumi.export("backend_ami", backend.image_id)

site_url = None
if config.frontend is not None:
    site = StaticSite(
        "swipesavvy-frontend",
        StaticSiteArgs(
            config=config.frontend,
            project_root=PROJECT_ROOT,
            stack=config.stack,
            tags=config.tags,
            keep_on_destroy=not config.is_review,
            # The API is served through the same distribution, under /api/*.
            api=ApiOrigin(
                domain_name=backend.load_balancer_dns_name,
                load_balancer_arn=backend.load_balancer_arn,
                security_group_id=backend.load_balancer_security_group_id,
                vpc_id=backend.vpc_id,
            )
            if backend
            else None,
            # A release that fails its rollout leaves the cache (and the previous release) as they were.
            invalidate_after=[backend.rollout] if backend else (),
        ),
    )
    pulumi.export("site_url", site.url)
    site_url = site.url if backend is not None else None  # the synthetic tests call the site and its /api
    pulumi.export("site_bucket", site.bucket_name)
    pulumi.export("site_distribution_id", site.distribution_id)
    # Review stacks' sites use it (ops/live/review.py): response-headers policies are an account quota.
    pulumi.export("site_response_headers_policy_id", site.response_headers_policy_id)
    if backend is not None:
        pulumi.export("api_url", pulumi.Output.concat(site.url, "/api"))

if monitored:
    monitoring = Monitoring(
        "swipesavvy-monitoring",
        MonitoringArgs(
            config=config.monitoring,
            stack=config.stack,
            site=dd_site,
            db_instance_identifier=database.instance_identifier,
            tags=config.tags,
            site_url=site_url,
        ),
    )
    pulumi.export("dashboard_url", monitoring.dashboard_url)

# Last: protected while the database is, and depending on everything, so any destroy (also
# with --skip-preview) fails at its first delete, before anything else is deleted.
destroy_guard("swipesavvy-destroy-guard", declared, protect=config.database.deletion_protection)
