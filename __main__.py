"""SwipeSavvy: the staging runbook (7 phases, ~4h45m by hand) as one `pulumi up`.

Config is read once, here, and validated before any resource is declared: a bad value
stops `pulumi preview` with one line naming the setting and the fix.
"""

import pulumi

from components.config import NAMESPACE, ConfigError, parse_stack_config
from components.database import Database, DatabaseArgs
from components.network import Network, NetworkArgs


def read_settings() -> dict:
    """Every ``swipesavvy:*`` value of this stack, raw (strings or decoded objects)."""
    from pulumi.runtime import config as runtime_config

    everything = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    prefix = f"{NAMESPACE}:"
    return {key[len(prefix) :]: value for key, value in everything.items() if key.startswith(prefix)}


try:
    config = parse_stack_config(pulumi.get_stack(), read_settings())
except ConfigError as error:
    raise pulumi.RunError(str(error)) from None

network = Network("swipesavvy", NetworkArgs(config=config.network, tags=config.tags))

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
        apply_immediately=not config.is_production,
    ),
)

pulumi.export("vpc_id", network.vpc_id)
pulumi.export("db_instance_identifier", database.instance_identifier)
pulumi.export("db_address", database.address)
pulumi.export("db_port", database.port)
pulumi.export("db_name", database.database_name)
pulumi.export("db_master_secret_arn", database.master_secret_arn)
pulumi.export("db_app_secret_arns", database.app_secret_arns)
pulumi.export("db_applied_migrations", database.applied_migrations)
