"""Invoking the operator function (ops.operator_handler, deployed in the VPC) with boto3.

Built for what a synchronous Lambda invoke really does (shared/reference/operator-notes.md):
- botocore retries a read timeout, which would run a long seed two or three times, so
  retries are off (one attempt) and the read timeout outlasts the function's own timeout;
  a throttle (nothing ran) is retried here, a bounded number of times;
- a new or idle VPC function is not active yet: wait for it before invoking (an idle,
  Inactive one is woken first: it stays Inactive until an invoke, which fails);
- a function error is HTTP 200 with ``FunctionError``: it is turned into an exception;
- the handler answers ``{"ok": false, "error": one line}`` for a failed operation, the
  same line the CLI prints; that becomes an OperatorError with that line.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from contextlib import suppress
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ReadTimeoutError, WaiterError

from ops.aws_credentials import credentials_problem

FUNCTION_TIMEOUT_S = 900  # the function's own limit (Lambda's maximum); the program sets it
READ_TIMEOUT_S = FUNCTION_TIMEOUT_S + 60
THROTTLE_RETRIES = 4
THROTTLE_BACKOFF_S = 2.0
ACTIVE_WAIT_DELAY_S = 5
ACTIVE_WAIT_ATTEMPTS = 60  # 5 minutes: a VPC function's network interfaces take a while
WAKE_UP_REQUEST = b"{}"  # the handler refuses it (no operation) without touching the database


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


def lambda_client(function_arn: str):
    config = Config(
        connect_timeout=10,
        read_timeout=READ_TIMEOUT_S,
        retries={"total_max_attempts": 1},
        tcp_keepalive=True,
    )
    return boto3.client("lambda", region_name=function_region(function_arn), config=config)


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
    for attempt in range(THROTTLE_RETRIES + 1):
        try:
            return client.invoke(FunctionName=function_arn, InvocationType="RequestResponse", Payload=payload)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code != "TooManyRequestsException" or attempt == THROTTLE_RETRIES:
                raise _client_error(function_arn, error) from None
            time.sleep(THROTTLE_BACKOFF_S * 2**attempt)  # throttled: nothing ran, safe to retry
    raise AssertionError("unreachable")


def invoke_operator(function_arn: str, request: Mapping[str, Any], client=None) -> dict[str, Any]:
    """Run one operation request in the operator; its result, or OperatorError (one line)."""
    try:
        client = client or lambda_client(function_arn)
        _wait_until_active(client, function_arn)
        response = _invoke_once(client, function_arn, json.dumps(request).encode())
    except ReadTimeoutError:
        raise OperatorError(
            f"operator {function_arn} did not answer within {READ_TIMEOUT_S:g} s; it may still be running:"
            f" see its log group before retrying"
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
