"""The operator function's entry point (AWS Lambda handler ``dbops.operator_handler.handler``).

It runs inside the VPC, next to the database, the same ``dbops.operations`` the CLI and the
dynamic providers run over a direct connection. An event is a request
``{"operation": name, "connection": {...}, "args": {...}}`` (optionally ``"lock_timeout_s"``);
the answer is ``{"ok": true, "result": {...}}`` or ``{"ok": false, "error": one line,
"kind": ...}``. What it may do is its own configuration (dbops.authority, from the function's
environment), never the event's: the event's connection must name this database and its
deploying login, and the function connects with the login and secret it was configured
with. Errors are the one-line messages the CLI prints: never a traceback, never a password
(there is none in the event: the function reads the secrets itself). ``kind`` says what
failed, for exit codes: ``invalid`` (the request, or one this function refuses),
``unavailable`` (database or secret), ``locked`` (gave up waiting for a lock), ``failed``
(anything else).

Every invocation leaves one JSON line in the function's log (``RECORD``): the operation,
a digest of its arguments, the outcome, the duration and the request id; no secret (the
arguments hold none, and only their digest is logged).

Nothing waits without a bound: the session gets ``lock_timeout`` (LOCK_TIMEOUT_S, or the
request's ``lock_timeout_s``) and a ``statement_timeout`` that ends a statement before the
function's own time limit, so the answer is this one line rather than a killed function
(and a killed function's backend left holding locks). Both are passed as libpq's
``PGOPTIONS``, which ``dbops.operations`` connections pick up unchanged.

A login refused right after a rotation (the secret read may return the previous version)
is retried once, reading the secret again.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import time
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import psycopg

from dbops.authority import AUTHORITY_ENV, Authority, AuthorityMissing, authorize
from dbops.connection import (
    DEFAULT_LOCK_TIMEOUT_S,
    DatabaseUnavailable,
    InvalidConnectionString,
    LockTimeout,
    raised_during,
)
from dbops.db_credentials import CredentialsUnavailable
from dbops.flags import UnknownFlag
from dbops.migrations import MigrationError
from dbops.operations import INVOKER_ARG, InvalidRequest, run_operation
from dbops.operator_client import FUNCTION_TIMEOUT_S
from seed.loader import SeedError

LOCK_TIMEOUT_S = float(DEFAULT_LOCK_TIMEOUT_S)
# PostgreSQL's lock_timeout is an int of milliseconds: INT_MAX ms, in whole seconds.
MAX_LOCK_TIMEOUT_S = (2**31 - 1) // 1000
ANSWER_MARGIN_S = 30.0  # left, after the statement timeout, to answer before the function is killed
ROTATION_RETRY_DELAY_S = 2.0
PASSWORD_REFUSED = "password authentication failed"

KIND_INVALID, KIND_UNAVAILABLE, KIND_LOCKED, KIND_FAILED = "invalid", "unavailable", "locked", "failed"

# Failures whose message is already the one line an operator should read, and their kind.
EXPECTED_ERRORS: dict[type[Exception], str] = {
    InvalidRequest: KIND_INVALID,
    AuthorityMissing: KIND_FAILED,
    InvalidConnectionString: KIND_INVALID,
    CredentialsUnavailable: KIND_UNAVAILABLE,
    DatabaseUnavailable: KIND_UNAVAILABLE,
    MigrationError: KIND_FAILED,
    SeedError: KIND_FAILED,
    UnknownFlag: KIND_FAILED,
}
# What a malformed argument raises inside an operation (a port "abc", flags that are not a map...).
BAD_ARGUMENT_ERRORS = (ValueError, TypeError, KeyError, AttributeError)

EVENT_KEYS = ("operation", "connection", "args", "lock_timeout_s")
RECORD = "operator-call"  # the "record" field of the one log line per invocation

_sleep = time.sleep  # tests replace it


def _request(event: Any) -> tuple[Mapping[str, Any], str, Mapping[str, Any], float]:
    shape = "the event must be a JSON object with operation, connection and args"
    if not isinstance(event, Mapping):
        raise InvalidRequest(shape)
    extra = sorted(str(key) for key in event if key not in EVENT_KEYS)
    if extra:
        raise InvalidRequest(f"the event has fields this operator does not take: {', '.join(extra)}; {shape}")
    connection, operation, args = event.get("connection"), event.get("operation"), event.get("args", {})
    if not isinstance(operation, str) or not isinstance(connection, Mapping) or not isinstance(args, Mapping):
        raise InvalidRequest(shape)
    if INVOKER_ARG in args:
        raise InvalidRequest(f"args.{INVOKER_ARG} is not the caller's to set: the operator records who invoked it")
    lock_timeout_s = event.get("lock_timeout_s", LOCK_TIMEOUT_S)
    if (
        isinstance(lock_timeout_s, bool)
        or not isinstance(lock_timeout_s, (int, float))
        or not math.isfinite(lock_timeout_s)
        or not 0 <= lock_timeout_s <= MAX_LOCK_TIMEOUT_S
    ):
        raise InvalidRequest(
            f"lock_timeout_s must be a number of seconds from 0 to {MAX_LOCK_TIMEOUT_S} (PostgreSQL's largest "
            f"lock_timeout), got {lock_timeout_s!r}"
        )
    return connection, operation, args, float(lock_timeout_s)


def invoker(context: Any) -> str | None:
    """Who invoked this function, as Lambda (not the event) says: the ARN invoked and the
    request id, which CloudTrail's Invoke record pairs with the caller's IAM identity, and a
    Cognito identity when Lambda authorized one. ``client_context`` is the caller's own
    claim, so it is not used. None outside Lambda."""
    arn, request_id = getattr(context, "invoked_function_arn", None), getattr(context, "aws_request_id", None)
    if not (arn and request_id):
        return None
    cognito = getattr(getattr(context, "identity", None), "cognito_identity_id", None)
    return f"lambda {arn} request {request_id}" + (f" cognito {cognito}" if cognito else "")


def _ms(seconds: float) -> str:
    # 0 means "no limit" to PostgreSQL: the smallest wait stands for "do not wait".
    return f"{max(1, round(seconds * 1000))}ms"


@contextmanager
def session_limits(*, lock_timeout_s: float, statement_timeout_s: float | None = None) -> Iterator[None]:
    """Connections opened inside get these ``lock_timeout`` and ``statement_timeout`` (via
    ``PGOPTIONS``; one operation at a time per process, as in Lambda and the CLI)."""
    options = [f"-c lock_timeout={_ms(lock_timeout_s)}"]
    if statement_timeout_s is not None:
        options.append(f"-c statement_timeout={_ms(statement_timeout_s)}")
    saved = os.environ.get("PGOPTIONS")
    os.environ["PGOPTIONS"] = " ".join([saved, *options] if saved else options)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("PGOPTIONS", None)
        else:
            os.environ["PGOPTIONS"] = saved


def statement_timeout_for(context: Any) -> float:
    """Seconds a statement may run: what the invocation has left, less the answer's margin."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    budget_s = remaining() / 1000 if callable(remaining) else FUNCTION_TIMEOUT_S
    return max(1.0, budget_s - ANSWER_MARGIN_S)


def _run(connection: Mapping[str, Any], operation: str, args: Mapping[str, Any]) -> dict[str, Any]:
    try:
        return run_operation(connection, operation, args)
    except DatabaseUnavailable as error:
        if PASSWORD_REFUSED not in str(error):
            raise
    # Refused: a rotation may have just changed the password; read the secret again, once.
    _sleep(ROTATION_RETRY_DELAY_S)
    return run_operation(connection, operation, args)


def lock_timed_out(error: BaseException) -> bool:
    """True when ``error``, or what it was raised from (SeedError and MigrationError wrap
    the database's error), is a lock wait that gave up."""
    return raised_during(error, LockTimeout, psycopg.errors.LockNotAvailable)


def one_line(text: str) -> str:
    return " ".join(text.split())


def _failure(error: Exception, operation: str | None, lock_timeout_s: float) -> dict[str, Any]:
    if lock_timed_out(error):
        return _answer_error(
            KIND_LOCKED,
            f"gave up after {lock_timeout_s:g} s waiting for a lock another session holds on this database "
            "(another deploy, migrate or seed run, or a long transaction); the transaction in progress was "
            "rolled back: retry when it has finished",
        )
    for error_type, kind in EXPECTED_ERRORS.items():
        if isinstance(error, error_type):
            return _answer_error(kind, str(error))
    if isinstance(error, psycopg.Error):  # unanticipated, still one line, without connection details
        primary = error.diag.message_primary or type(error).__name__
        return _answer_error(KIND_FAILED, f"database error: {primary}")
    if isinstance(error, BAD_ARGUMENT_ERRORS):
        return _answer_error(KIND_INVALID, f"invalid arguments for {operation}: {type(error).__name__}: {error}")
    # A bug: the traceback goes to the function's log, the answer stays one line.
    traceback.print_exc(file=sys.stderr)
    return _answer_error(KIND_FAILED, f"operator error in {operation}: {type(error).__name__}: {error}")


def _answer_error(kind: str, message: str) -> dict[str, Any]:
    return {"ok": False, "error": one_line(message)[:1000], "kind": kind}


def _answer(event: Any, context: Any) -> dict[str, Any]:
    operation, lock_timeout_s = None, LOCK_TIMEOUT_S
    try:
        connection, operation, args, lock_timeout_s = _request(event)
        authority = Authority.from_json(os.environ.get(AUTHORITY_ENV))
        allowed = authorize(authority, operation, connection, args)
        if (who := invoker(context)) is not None:
            args = {**args, INVOKER_ARG: who}
        with session_limits(lock_timeout_s=lock_timeout_s, statement_timeout_s=statement_timeout_for(context)):
            result = _run(allowed, operation, args)
    except Exception as error:
        return _failure(error, operation, lock_timeout_s)
    try:
        json.dumps(result)  # Lambda returns JSON: a result that is not would be a function error
    except (TypeError, ValueError) as error:
        return _answer_error(KIND_FAILED, f"operator error in {operation}: its result is not JSON: {error}")
    return {"ok": True, "result": result}


def arguments_digest(event: Any) -> str:
    """sha256 of the event's arguments as canonical JSON: which call it was, not what it said."""
    args = event.get("args") if isinstance(event, Mapping) else None
    return hashlib.sha256(json.dumps(args, sort_keys=True, default=repr).encode()).hexdigest()


def record(event: Any, context: Any, answer: Mapping[str, Any], seconds: float) -> str:
    """The invocation's log line: JSON, one line, no secret (the error lines hold none)."""
    operation = event.get("operation") if isinstance(event, Mapping) else None
    line = {
        "record": RECORD,
        "operation": operation[:100] if isinstance(operation, str) else None,
        "arguments_sha256": arguments_digest(event),
        "outcome": "ok" if answer["ok"] else answer["kind"],
        "duration_ms": round(seconds * 1000, 1),
        "request_id": getattr(context, "aws_request_id", None),
    }
    if not answer["ok"]:
        line["error"] = answer["error"]
    return json.dumps(line)


def handler(event: Any, context: Any = None) -> dict[str, Any]:
    started = time.monotonic()
    answer = _answer(event, context)
    print(record(event, context, answer, time.monotonic() - started), flush=True)
    return answer
