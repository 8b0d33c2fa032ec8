"""How a database operation reaches the database: one code path for every caller.

A stack that has operator functions (``database.access: operator``) runs operations inside
its VPC by invoking them: the reads (``READ_OPERATIONS``) go to its read-only function when
the caller names one, everything else to the operator that may change the database. When
the reader cannot reach the database as its login (not created yet), a read falls back to
the operator, except in a read-only run.
Otherwise they run here over a direct connection. The dynamic providers and
``python -m ops ... --stack`` both call ``run_through``.

``SWIPESAVVY_DB_READ_ONLY=true`` (pull-request previews, drift checks) refuses, before
anything is invoked, every operation that is not a read: such a run can only read.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextlib import nullcontext
from typing import Any

from dbops.operations import READ_OPERATIONS, run_operation
from dbops.operator_client import OperatorError, invoke_operator
from dbops.operator_handler import KIND_INVALID, KIND_UNAVAILABLE, session_limits

READ_ONLY_ENV = "SWIPESAVVY_DB_READ_ONLY"


def read_only() -> bool:
    return os.environ.get(READ_ONLY_ENV, "").strip().lower() in ("1", "true", "yes")


def run_through(
    connection: Mapping[str, Any],
    operator_arn: str | None,
    operation: str,
    args: Mapping[str, Any],
    *,
    reader_arn: str | None = None,
    lock_timeout_s: float | None = None,
) -> dict[str, Any]:
    """Run ``operation`` through the operator (the reader for a read, when given) when there
    is one, else directly. ``lock_timeout_s`` bounds lock waits (None: the operator's default,
    unbounded here)."""
    if operation not in READ_OPERATIONS and read_only():
        raise OperatorError(
            f"{operation} needs the function that may change the database, and {READ_ONLY_ENV} is set: this run may only read "
            f"({', '.join(sorted(READ_OPERATIONS))}); nothing was invoked",
            KIND_INVALID,
        )
    if operator_arn:
        request: dict[str, Any] = {"operation": operation, "connection": dict(connection), "args": dict(args)}
        if lock_timeout_s is not None:
            request["lock_timeout_s"] = lock_timeout_s
        if reader_arn and operation in READ_OPERATIONS:
            try:
                return invoke_operator(reader_arn, request)
            except OperatorError as error:
                # The reader cannot answer (its login is not created yet on a half-deployed
                # stack, or was changed by hand): a caller that may change the database
                # reads through the operator instead; a read-only run fails here.
                if error.kind != KIND_UNAVAILABLE or read_only():
                    raise
        return invoke_operator(operator_arn, request)
    limits = nullcontext() if lock_timeout_s is None else session_limits(lock_timeout_s=lock_timeout_s)
    with limits:
        return run_operation(connection, operation, args)
