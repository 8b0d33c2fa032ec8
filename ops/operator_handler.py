"""The operator function's entry point (AWS Lambda handler ``ops.operator_handler.handler``).

It runs inside the VPC, next to the database, the same ``ops.operations`` the CLI and the
dynamic providers run over a direct connection. An event is a request
``{"operation": name, "connection": {...}, "args": {...}}``; the answer is
``{"ok": true, "result": {...}}`` or ``{"ok": false, "error": one line}``. Errors are the
one-line messages the CLI prints: never a traceback, never a password (there is none in
the event: the connection names the master secret, which the function reads itself).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import psycopg

from ops.connection import DatabaseUnavailable, InvalidConnectionString, LockTimeout
from ops.db_credentials import CredentialsUnavailable
from ops.flags import UnknownFlag
from ops.migrations import MigrationError
from ops.operations import InvalidRequest, run_operation
from seed.loader import SeedError

# Failures whose message is already the one line an operator should read.
EXPECTED_ERRORS = (
    CredentialsUnavailable,
    DatabaseUnavailable,
    InvalidConnectionString,
    InvalidRequest,
    MigrationError,
    SeedError,
    UnknownFlag,
)


def _request(event: Any) -> tuple[Mapping[str, Any], str, Mapping[str, Any]]:
    if not isinstance(event, Mapping):
        raise InvalidRequest("the event must be a JSON object with operation, connection and args")
    connection, operation, args = event.get("connection"), event.get("operation"), event.get("args", {})
    if not isinstance(operation, str) or not isinstance(connection, Mapping) or not isinstance(args, Mapping):
        raise InvalidRequest("the event must be a JSON object with operation, connection and args")
    return connection, operation, args


def handler(event: Any, _context: Any = None) -> dict[str, Any]:
    try:
        connection, operation, args = _request(event)
        return {"ok": True, "result": run_operation(connection, operation, args)}
    except EXPECTED_ERRORS as error:
        return {"ok": False, "error": " ".join(str(error).split())}
    except LockTimeout:
        return {"ok": False, "error": "another run holds the lock on this database; retry when it has finished"}
    except psycopg.Error as error:  # unanticipated, still one line, without connection details
        primary = error.diag.message_primary or type(error).__name__
        return {"ok": False, "error": f"database error: {' '.join(primary.split())}"}
