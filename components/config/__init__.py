"""The stack configuration, parsed once into frozen dataclasses and validated.

Pure Python (no Pulumi import): ``__main__.py`` hands over the raw ``swipesavvy:*`` values
and gets a ``StackConfig`` back, or a ``ConfigError`` whose message is one line naming
the key, the bad value, what is allowed and the command that fixes it. Every setting has a
secure default; a stack file only says where it differs.

Layout of ``Pulumi.<stack>.yaml`` (keys in the ``swipesavvy`` namespace):

    swipesavvy:environment: staging          # staging | production
    swipesavvy:network:   {...}              # NetworkConfig
    swipesavvy:database:  {...}              # DatabaseConfig
    swipesavvy:seed:      {...}              # SeedConfig
    swipesavvy:featureFlags: {key: {enabled, rolloutPercentage}}
    swipesavvy:monitoring: {...}             # MonitoringConfig (Datadog)
    swipesavvy:cost:      {...}              # CostConfig (usage for python -m ops cost)

Secrets are never read here; they stay ``pulumi.Output`` secrets end to end.

One module per section (``network``, ``database``, ``seed``, ``feature_flags``, ``backend``,
``frontend``, ``monitoring``, ``cost``), each with its dataclass and validator; the machinery
they share in ``section.py`` (``_Section``, ``ConfigError``), the shipped project folders'
checks in ``project_files.py``, and the whole stack with the rules across sections in
``stack.py``. Every public name is importable from here, as it was from ``config.py``.
"""

from __future__ import annotations

from components.config.backend import AL2023_RELEASE_EXAMPLE, LATEST_AMI, LOG_LEVELS, BackendConfig, parse_backend
from components.config.cost import COST_INTEGERS, COST_NUMBERS, CostConfig, parse_cost
from components.config.database import (
    ACCESS_MODES,
    AUTOSCALING_OFF,
    MAX_STORAGE_GIB,
    MIN_PUBLIC_RUNNER_PREFIX,
    MIN_STORAGE_GIB,
    MONITORING_INTERVALS,
    POSTGRES_MAJOR_VERSIONS,
    PRIVATE_RANGES,
    PRODUCTION_DATABASE,
    RESERVED_DATABASE_NAMES,
    DatabaseConfig,
    parse_database,
)
from components.config.feature_flags import SEEDED_FLAG_KEYS, FeatureFlagSetting, parse_feature_flags
from components.config.frontend import PRICE_CLASSES, FrontendConfig, parse_frontend
from components.config.monitoring import THRESHOLDS, MonitoringConfig, Threshold, ThresholdRule, parse_monitoring
from components.config.network import NetworkConfig, parse_network
from components.config.project_files import DEPENDENCY_FOLDER
from components.config.section import MAX_EXACT_INTEGER, MAX_ROTATION, NAMESPACE, ConfigError
from components.config.seed import SeedConfig, parse_seed
from components.config.stack import (
    ENVIRONMENTS,
    PROJECT_ROOT,
    REVIEW_REFUSALS,
    REVIEW_STACK,
    SECTIONS,
    StackConfig,
    load_yaml,
    parse_stack_config,
    read_stack_file,
)

__all__ = [
    "ACCESS_MODES",
    "AL2023_RELEASE_EXAMPLE",
    "AUTOSCALING_OFF",
    "BackendConfig",
    "COST_INTEGERS",
    "COST_NUMBERS",
    "ConfigError",
    "CostConfig",
    "DEPENDENCY_FOLDER",
    "DatabaseConfig",
    "ENVIRONMENTS",
    "FeatureFlagSetting",
    "FrontendConfig",
    "LATEST_AMI",
    "LOG_LEVELS",
    "MAX_EXACT_INTEGER",
    "MAX_ROTATION",
    "MAX_STORAGE_GIB",
    "MIN_PUBLIC_RUNNER_PREFIX",
    "MIN_STORAGE_GIB",
    "MONITORING_INTERVALS",
    "MonitoringConfig",
    "NAMESPACE",
    "NetworkConfig",
    "POSTGRES_MAJOR_VERSIONS",
    "PRICE_CLASSES",
    "PRIVATE_RANGES",
    "PRODUCTION_DATABASE",
    "PROJECT_ROOT",
    "RESERVED_DATABASE_NAMES",
    "REVIEW_REFUSALS",
    "REVIEW_STACK",
    "SECTIONS",
    "SEEDED_FLAG_KEYS",
    "SeedConfig",
    "StackConfig",
    "THRESHOLDS",
    "Threshold",
    "ThresholdRule",
    "parse_backend",
    "parse_cost",
    "parse_database",
    "parse_feature_flags",
    "parse_frontend",
    "parse_monitoring",
    "parse_network",
    "parse_seed",
    "parse_stack_config",
    "load_yaml",
    "read_stack_file",
]
