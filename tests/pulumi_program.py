"""Test helpers around ``ops.rehearsal.mock_program`` (which runs ``__main__.py`` under Pulumi's mocks):
its names re-exported for the tests, and ways to look inside the recorded inputs.
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.runtime import rpc

from ops.rehearsal.mock_program import (  # noqa: F401  (re-exported for the tests)
    ACCOUNT,
    ALB_DNS_NAME,
    AMI_ID,
    APP_PASSWORD_PREFIX,
    CERTIFICATE_ARN_PREFIX,
    CLOUDFRONT_DOMAIN,
    CLOUDFRONT_ZONE_ID,
    DATADOG_AGENT_KEY,
    DATADOG_IAM_PERMISSIONS,
    DATADOG_TOKEN_VARIABLE_ID,
    DB_ADDRESS,
    ELB_ACCOUNT,
    MASTER_PASSWORD,
    MASTER_SECRET_ARN,
    OPERATOR_ARN_PREFIX,
    PROJECT_ROOT,
    RELEASE_AMI_ID,
    VPC_ORIGINS_SECURITY_GROUP_ID,
    ProgramRun,
    RecordingMocks,
    RecordingMonitor,
    run_program,
    stack_config,
)


def plain_values(value: Any) -> list[str]:
    """Every string in ``value`` that is not inside a secret."""
    if rpc.is_rpc_secret(value):
        return []
    if isinstance(value, dict):
        return [s for v in value.values() for s in plain_values(v)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in plain_values(v)]
    return [value] if isinstance(value, str) else []


def is_secret(value: Any) -> bool:
    return rpc.is_rpc_secret(value)


def unwrap(value: Any) -> Any:
    return rpc.unwrap_rpc_secret(value) if rpc.is_rpc_secret(value) else value


def unwrap_all(value: Any) -> Any:
    """``value`` with every secret wrapper removed, at any depth; an archive or asset as
    ``(kind, path)``, so two runs declaring the same file compare equal."""
    value = unwrap(value)
    if isinstance(value, (pulumi.Archive, pulumi.Asset)):
        return (type(value).__name__, getattr(value, "path", None))
    if isinstance(value, dict):
        return {k: unwrap_all(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [unwrap_all(v) for v in value]
    return value
