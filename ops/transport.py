"""How a database operation reaches the database: one code path for every caller.

A stack that has an operator function (``database.access: operator``) runs operations
inside its VPC by invoking it; otherwise they run here over a direct connection. The
dynamic providers and ``python -m ops ... --stack`` both call ``run_through``.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import nullcontext
from typing import Any

from ops.operations import run_operation
from ops.operator_client import invoke_operator
from ops.operator_handler import session_limits


def run_through(
    connection: Mapping[str, Any],
    operator_arn: str | None,
    operation: str,
    args: Mapping[str, Any],
    *,
    lock_timeout_s: float | None = None,
) -> dict[str, Any]:
    """Run ``operation`` through the operator when there is one, else directly.
    ``lock_timeout_s`` bounds lock waits (None: the operator's default, unbounded here)."""
    if operator_arn:
        request: dict[str, Any] = {"operation": operation, "connection": dict(connection), "args": dict(args)}
        if lock_timeout_s is not None:
            request["lock_timeout_s"] = lock_timeout_s
        return invoke_operator(operator_arn, request)
    limits = nullcontext() if lock_timeout_s is None else session_limits(lock_timeout_s=lock_timeout_s)
    with limits:
        return run_operation(connection, operation, args)
