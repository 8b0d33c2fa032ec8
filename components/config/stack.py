"""The whole stack's configuration: the stack file read, every section parsed, and the rules
across sections (a review stack's refusals, the database's access from the network, the
backend's egress)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components.config.backend import BackendConfig, parse_backend
from components.config.cost import CostConfig, parse_cost
from components.config.database import DatabaseConfig, parse_database
from components.config.feature_flags import FeatureFlagSetting, parse_feature_flags
from components.config.frontend import FrontendConfig, parse_frontend
from components.config.monitoring import MonitoringConfig, parse_monitoring
from components.config.network import NetworkConfig, parse_network
from components.config.section import NAMESPACE, ConfigError, _fail
from components.config.seed import SeedConfig, parse_seed

ENVIRONMENTS = ("staging", "production")
PROJECT_ROOT = Path(__file__).resolve().parents[2]
# A review stack (one per pull request, created and destroyed by CI) is named pr-<number>:
# it keeps nothing on destroy and owns nothing the account shares (docs/operations.md "Review stacks").
REVIEW_STACK = re.compile(r"^pr-[1-9][0-9]*$")


@dataclass(frozen=True)
class StackConfig:
    stack: str
    environment: str
    network: NetworkConfig = field(default_factory=NetworkConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    seed: SeedConfig = field(default_factory=SeedConfig)
    feature_flags: Mapping[str, FeatureFlagSetting] = field(default_factory=dict)
    backend: BackendConfig | None = None  # not deployed when the section is absent
    frontend: FrontendConfig | None = None
    monitoring: MonitoringConfig = field(default_factory=MonitoringConfig)
    cost: CostConfig = field(default_factory=CostConfig)

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @property
    def is_review(self) -> bool:
        """A pull request's stack: destroyed on close, keeping nothing (docs/operations.md "Review stacks")."""
        return bool(REVIEW_STACK.match(self.stack))

    @property
    def tags(self) -> dict[str, str]:
        return {"project": "swipesavvy", "environment": self.environment, "stack": self.stack, "managed-by": "pulumi"}


def _require_backend_egress(backend: BackendConfig | None, network: NetworkConfig) -> None:
    """The backend's instances fetch packages and the release and call AWS APIs: in a VPC
    this stack creates, only a NAT gateway gives the private subnets that path."""
    if backend is not None and not network.uses_existing_vpc and not network.nat_gateway:
        raise _fail(
            "network.natGateway",
            False,
            "the backend's instances need a route out of the private subnets (packages, the release,"
            " AWS APIs, Datadog)",
            "true",
        )


def load_yaml(path: Path, shown: str, error: type[Exception]) -> Any:
    """The YAML document in ``path``; a file that is not UTF-8 or not YAML is one line naming
    ``shown`` and the fix, raised as ``error`` (the stack files' and the usage files' reader)."""
    import yaml  # a dependency of the Pulumi SDK; only this function needs it

    try:
        return yaml.safe_load(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as decode_error:
        raise error(f"{shown} is not UTF-8 text (byte {decode_error.start}) (fix: save it as UTF-8)") from None
    except yaml.YAMLError as yaml_error:
        mark = getattr(yaml_error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(yaml_error, "problem", None) or str(yaml_error).splitlines()[0]
        raise error(f"{shown} is not valid YAML: {where}{problem} (fix: correct that line)") from None


def read_stack_file(path: Path) -> dict[str, Any]:
    """The ``config:`` of a stack settings file ``Pulumi.<stack>.yaml``, as Pulumi reads it;
    a ConfigError naming the file when it is missing, not YAML, or has no such section."""
    stack = path.name.removeprefix("Pulumi.").removesuffix(".yaml")
    if not path.is_file():
        raise ConfigError(f"{path} does not exist (fix: pulumi stack init {stack}, then pulumi config set ...)")
    settings = load_yaml(path, str(path), ConfigError)
    config = settings.get("config") if isinstance(settings, dict) else None
    if not isinstance(config, dict):
        raise ConfigError(
            f"{path} has no config: section (fix: pulumi config set --stack {stack} {NAMESPACE}:environment {stack})"
        )
    return config


SECTIONS = ("environment", "network", "database", "seed", "featureFlags", "backend", "frontend", "monitoring", "cost")


def parse_stack_config(
    stack: str, values: Mapping[str, Any], region: str | None = None, project_root: Path = PROJECT_ROOT
) -> StackConfig:
    """Parse the ``swipesavvy:*`` settings (keys without the namespace; values raw strings or
    already-decoded objects) into a validated StackConfig, or raise ConfigError. ``region``
    is ``aws:region``: given, the availability zones must be in it."""
    unknown = sorted(set(values) - set(SECTIONS))
    if unknown:
        raise ConfigError(
            f"{NAMESPACE}:{unknown[0]} is not a setting of this program; known settings: "
            f"{', '.join(SECTIONS)} (fix: pulumi config rm {NAMESPACE}:{unknown[0]})"
        )
    environment = values.get("environment")
    if environment not in ENVIRONMENTS:
        raise _fail("environment", environment, f"must be one of {', '.join(ENVIRONMENTS)}", "staging")
    network = parse_network(values.get("network"), region)
    backend = parse_backend(values.get("backend"), project_root, environment)
    _require_backend_egress(backend, network)
    frontend = parse_frontend(values.get("frontend"), project_root, environment)
    config = StackConfig(
        stack=stack,
        environment=environment,
        network=network,
        database=_resolve_access(parse_database(values.get("database"), environment), network),
        seed=parse_seed(values.get("seed"), environment),
        feature_flags=parse_feature_flags(values.get("featureFlags")),
        backend=backend,
        frontend=frontend,
        monitoring=parse_monitoring(values.get("monitoring"), environment, backend, frontend),
        cost=parse_cost(values.get("cost")),
    )
    if config.is_review:
        _require_review_settings(config)
    return config


# What a review stack may not have, and why: each would outlive the stack, be shared with
# other stacks, or collide with staging's (docs/operations.md "Review stacks").
REVIEW_REFUSALS = (
    (
        "database.deletionProtection",
        lambda c: c.database.deletion_protection,
        "a review stack is destroyed when its pull request closes",
        f"pulumi config set --path '{NAMESPACE}:database.deletionProtection' false",
    ),
    (
        "monitoring.awsIntegration",
        lambda c: c.monitoring.enabled and c.monitoring.aws_integration,
        "Datadog's AWS integration is one per account, owned by one long-lived stack",
        f"pulumi config set --path '{NAMESPACE}:monitoring.awsIntegration' false",
    ),
    (
        "frontend.domain",
        lambda c: c.frontend is not None and c.frontend.domain is not None,
        "a custom domain belongs to one stack; a review stack uses its CloudFront address",
        f"pulumi config rm --path '{NAMESPACE}:frontend.domain' and '{NAMESPACE}:frontend.hostedZoneId'",
    ),
)


def _require_review_settings(config: StackConfig) -> None:
    for key, violated, why, fix in REVIEW_REFUSALS:
        if violated(config):
            raise ConfigError(
                f"{NAMESPACE}:{key} is not allowed in review stack {config.stack}: {why} (fix: {fix}, or generate"
                " the file with python -m ops review-config)"
            )


def _resolve_access(database: DatabaseConfig, network: NetworkConfig) -> DatabaseConfig:
    """``database.access`` with its default, refusing combinations that cannot reach the database."""
    access = database.access or ("direct" if network.uses_existing_vpc else "operator")
    if access == "operator" and (database.connect_host or database.connect_port):
        key = "connectHost" if database.connect_host else "connectPort"
        raise ConfigError(
            f"{NAMESPACE}:database.{key} is only used with database.access direct: the operator connects from"
            f" inside the VPC (fix: pulumi config rm --path '{NAMESPACE}:database.{key}', or pulumi config set"
            f" --path '{NAMESPACE}:database.access' direct)"
        )
    if (
        access == "direct"
        and not network.uses_existing_vpc
        and not (database.deploy_runner_cidrs or database.connect_host)
    ):
        raise _fail(
            "database.access",
            "direct",
            "cannot reach a database in the VPC this stack creates without database.deployRunnerCidrs (a runner"
            " inside it) or database.connectHost (a tunnel); operator needs neither",
            "operator",
        )
    return dataclasses.replace(database, access=access)
