"""Invoking the operator function (dbops.operator_handler, deployed in the VPC) with boto3.

Built for what a synchronous Lambda invoke really does (shared/reference/operator-notes.md):
- botocore retries a read timeout, which would run a long seed two or three times, so
  retries are off (one attempt) and the read timeout outlasts the function's own timeout;
  a throttle (nothing ran) is retried here, for as long as another operation may hold the
  function's one concurrent execution (with ``database.operatorReservedConcurrency`` its
  reserved concurrency is 1: deploy operations run one at a time);
- a new or idle VPC function is not active yet: wait for it before invoking (an idle,
  Inactive one is woken first: it stays Inactive until an invoke, which fails);
- a function error is HTTP 200 with ``FunctionError``: it is turned into an exception;
- an invoke waits silently for up to 15 minutes, longer than a NAT gateway keeps an idle
  connection (350 s): TCP keepalive probes every ``KEEPALIVE_INTERVAL_S`` after
  ``KEEPALIVE_IDLE_S`` keep it open (botocore's ``tcp_keepalive`` alone waits the OS
  default of 7200 s before the first probe). A connection that still drops after the
  request was sent may have run the operation: the error says how to check, not "cannot invoke";
- the handler answers ``{"ok": false, "error": one line}`` for a failed operation, the
  same line the CLI prints; that becomes an OperatorError with that line.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Mapping
from contextlib import suppress
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    ReadTimeoutError,
    WaiterError,
)

from dbops.aws_credentials import credentials_problem

FUNCTION_TIMEOUT_S = 900  # the function's own limit (Lambda's maximum); the program sets it
READ_TIMEOUT_S = FUNCTION_TIMEOUT_S + 60
THROTTLE_BACKOFF_S = 2.0
THROTTLE_BACKOFF_MAX_S = 15.0


def _throttle_delays() -> list[float]:
    """Waits between throttled attempts: doubling from 2 s, at most 15 s, until together they
    outlast one whole operation in the function's single slot (its timeout, and a minute)."""
    delays: list[float] = []
    while sum(delays) < READ_TIMEOUT_S:
        delays.append(min(THROTTLE_BACKOFF_S * 2 ** len(delays), THROTTLE_BACKOFF_MAX_S))
    return delays


THROTTLE_DELAYS_S = _throttle_delays()
THROTTLE_RETRIES = len(THROTTLE_DELAYS_S)
ACTIVE_WAIT_DELAY_S = 5
ACTIVE_WAIT_ATTEMPTS = 60  # 5 minutes: a VPC function's network interfaces take a while
WAKE_UP_REQUEST = b"{}"  # the handler refuses it (no operation) without touching the database
# The first probe after 60 s idle, then every 15 s; 4 unanswered probes end the connection.
KEEPALIVE_IDLE_S = 60
KEEPALIVE_INTERVAL_S = 15
KEEPALIVE_PROBES = 4
VERIFY_HINT = "check with `python -m ops verify --stack NAME`"


class OperatorError(Exception):
    """The operator could not run the operation; the message is one line.

    ``kind`` is the handler's (``invalid``, ``unavailable``, ``locked``, ``failed``), or
    ``unavailable`` when the function could not be invoked, ``failed`` when it crashed.
    """

    def __init__(self, message: str, kind: str = "failed"):
        super().__init__(" ".join(str(message).split()))
        self.kind = kind


def function_region(function_arn: str) -> str | None:
    """``arn:aws:lambda:<region>:<account>:function:<name>`` -> region; None for a bare name."""
    parts = function_arn.split(":")
    return parts[3] if len(parts) > 3 and parts[:3] == ["arn", "aws", "lambda"] else None


def keepalive_socket_options() -> list[tuple[int, int, int]]:
    """TCP_KEEPIDLE/INTVL/CNT as this platform names them (macOS: TCP_KEEPALIVE is the idle time)."""
    idle = getattr(socket, "TCP_KEEPIDLE", None) or getattr(socket, "TCP_KEEPALIVE", None)
    wanted = [
        (idle, KEEPALIVE_IDLE_S),
        (getattr(socket, "TCP_KEEPINTVL", None), KEEPALIVE_INTERVAL_S),
        (getattr(socket, "TCP_KEEPCNT", None), KEEPALIVE_PROBES),
    ]
    return [(socket.IPPROTO_TCP, option, value) for option, value in wanted if option is not None]


def lambda_client(function_arn: str):
    config = Config(
        connect_timeout=10,
        read_timeout=READ_TIMEOUT_S,
        retries={"total_max_attempts": 1},
        tcp_keepalive=True,  # SO_KEEPALIVE; the intervals are added below
    )
    client = boto3.client("lambda", region_name=function_region(function_arn), config=config)
    # botocore has no setting for the intervals. Its HTTP session hands this list, the same
    # object, to every connection pool it creates, and pools and connections are created at
    # the first request: extended in place now, every socket of this client gets them.
    client._endpoint.http_session._socket_options.extend(keepalive_socket_options())
    return client


def _client_error(function_arn: str, error: ClientError) -> OperatorError:
    code = error.response.get("Error", {}).get("Code", "")
    message = error.response.get("Error", {}).get("Message", "")
    reason = credentials_problem(error) or f"{code} {message}".strip()
    return OperatorError(f"cannot invoke operator {function_arn}: {reason}", "unavailable")


def _wait_until_active(client, function_arn: str) -> None:
    """Return when the function is Active. An Inactive (idle) one only starts coming back
    (Pending) when invoked, and that invoke fails: it is woken with a request the handler
    refuses without touching the database, then waited for."""
    try:
        configuration = client.get_function(FunctionName=function_arn).get("Configuration", {})
    except ClientError as error:
        raise _client_error(function_arn, error) from None
    state = configuration.get("State")
    if state == "Active":
        return
    if state == "Inactive":
        with suppress(ClientError):  # ResourceNotReadyException: the expected answer
            client.invoke(FunctionName=function_arn, InvocationType="RequestResponse", Payload=WAKE_UP_REQUEST)
    elif state == "Failed":
        raise OperatorError(
            f"operator {function_arn} is not active (Failed): {configuration.get('StateReason') or 'no reason given'}",
            "unavailable",
        )
    try:
        client.get_waiter("function_active_v2").wait(
            FunctionName=function_arn, WaiterConfig={"Delay": ACTIVE_WAIT_DELAY_S, "MaxAttempts": ACTIVE_WAIT_ATTEMPTS}
        )
    except WaiterError as error:
        last = error.last_response.get("Configuration", {})
        why = f"({last['State']}): {last.get('StateReason') or error}" if last.get("State") else f": {error}"
        raise OperatorError(f"operator {function_arn} is not active {why}", "unavailable") from None


def _invoke_once(client, function_arn: str, payload: bytes) -> dict[str, Any]:
    for delay in [*THROTTLE_DELAYS_S, None]:
        try:
            return client.invoke(FunctionName=function_arn, InvocationType="RequestResponse", Payload=payload)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code != "TooManyRequestsException" or delay is None:
                raise _client_error(function_arn, error) from None
            time.sleep(delay)  # throttled: nothing ran, safe to retry
    raise AssertionError("unreachable")


def invoke_operator(function_arn: str, request: Mapping[str, Any], client=None) -> dict[str, Any]:
    """Run one operation request in the operator; its result, or OperatorError (one line)."""
    try:
        client = client or lambda_client(function_arn)
        _wait_until_active(client, function_arn)
    except BotoCoreError as error:  # nothing was sent to the function yet
        reason = credentials_problem(error) or error
        raise OperatorError(f"cannot invoke operator {function_arn}: {reason}", "unavailable") from None
    try:
        response = _invoke_once(client, function_arn, json.dumps(request).encode())
    except ReadTimeoutError:
        raise OperatorError(
            f"operator {function_arn} did not answer within {READ_TIMEOUT_S:g} s; it may still be running:"
            f" see its log group before retrying"
        ) from None
    except HTTPClientError as error:
        # The request went out and the connection broke before the answer (ConnectionClosedError
        # and the like): the function may have run. Connect failures (botocore's
        # ConnectionError: nothing was sent) are not HTTPClientError and end below.
        raise OperatorError(
            f"operator {function_arn}: the connection dropped after the request was sent ({error});"
            f" the operation may have run: {VERIFY_HINT} before retrying"
        ) from None
    except BotoCoreError as error:
        reason = credentials_problem(error) or error
        raise OperatorError(f"cannot invoke operator {function_arn}: {reason}", "unavailable") from None
    body = response["Payload"].read()
    try:
        answer = json.loads(body or b"null")
    except ValueError:
        answer = None
    if response.get("FunctionError"):  # the function itself failed (crash, timeout, out of memory)
        if isinstance(answer, dict) and answer.get("errorMessage"):
            kind = answer.get("errorType")
            detail = f"{kind}: {answer['errorMessage']}" if kind else answer["errorMessage"]
        else:
            detail = body[:200].decode(errors="replace") or response["FunctionError"]
        raise OperatorError(f"operator {function_arn} failed ({response['FunctionError']}): {str(detail)[:1000]}")
    if not isinstance(answer, dict) or "ok" not in answer or (answer["ok"] and "result" not in answer):
        raise OperatorError(f"operator {function_arn} gave an answer that is not an operation result")
    if not answer["ok"]:
        raise OperatorError(answer.get("error") or "the operation failed", answer.get("kind") or "failed")
    return answer["result"]
