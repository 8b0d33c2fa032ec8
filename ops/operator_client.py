"""Invoking the operator function (ops.operator_handler, deployed in the VPC) with boto3.

Built for what a synchronous Lambda invoke really does (shared/reference/operator-notes.md):
- botocore retries a read timeout, which would run a long seed two or three times, so
  retries are off (one attempt) and the read timeout outlasts the function's own timeout;
  a throttle (nothing ran) is retried here, a bounded number of times;
- a new or idle VPC function is not active yet: wait for it before invoking;
- a function error is HTTP 200 with ``FunctionError``: it is turned into an exception;
- the handler answers ``{"ok": false, "error": one line}`` for a failed operation, the
  same line the CLI prints; that becomes an OperatorError with that line.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ReadTimeoutError, WaiterError

FUNCTION_TIMEOUT_S = 900  # the function's own limit (Lambda's maximum); the program sets it
READ_TIMEOUT_S = FUNCTION_TIMEOUT_S + 60
THROTTLE_RETRIES = 4
THROTTLE_BACKOFF_S = 2.0


class OperatorError(Exception):
    """The operator could not run the operation; the message is one line."""


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


def _wait_until_active(client, function_arn: str) -> None:
    try:
        client.get_waiter("function_active_v2").wait(
            FunctionName=function_arn, WaiterConfig={"Delay": 5, "MaxAttempts": 60}
        )
    except WaiterError as error:
        raise OperatorError(
            f"operator {function_arn} is not active: {error.last_response.get('Configuration', {}).get('StateReason') or error}"
        ) from None


def _invoke_once(client, function_arn: str, payload: bytes) -> dict[str, Any]:
    for attempt in range(THROTTLE_RETRIES + 1):
        try:
            return client.invoke(FunctionName=function_arn, InvocationType="RequestResponse", Payload=payload)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code != "TooManyRequestsException" or attempt == THROTTLE_RETRIES:
                message = error.response.get("Error", {}).get("Message", "")
                raise OperatorError(f"cannot invoke operator {function_arn}: {code} {message}".strip()) from None
            time.sleep(THROTTLE_BACKOFF_S * 2**attempt)  # throttled: nothing ran, safe to retry
    raise AssertionError("unreachable")


def invoke_operator(function_arn: str, request: Mapping[str, Any], client=None) -> dict[str, Any]:
    """Run one operation request in the operator; its result, or OperatorError (one line)."""
    client = client or lambda_client(function_arn)
    try:
        _wait_until_active(client, function_arn)
        response = _invoke_once(client, function_arn, json.dumps(request).encode())
    except ReadTimeoutError:
        raise OperatorError(
            f"operator {function_arn} did not answer within {READ_TIMEOUT_S} s; it may still be running:"
            f" see its log group before retrying"
        ) from None
    except BotoCoreError as error:
        raise OperatorError(f"cannot invoke operator {function_arn}: {error}") from None
    body = response["Payload"].read()
    try:
        answer = json.loads(body or b"null")
    except ValueError:
        answer = None
    if response.get("FunctionError"):  # the function itself failed (crash, timeout, out of memory)
        detail = answer.get("errorMessage") if isinstance(answer, dict) else body[:200].decode(errors="replace")
        raise OperatorError(f"operator {function_arn} failed: {' '.join(str(detail).split())}")
    if not isinstance(answer, dict) or "ok" not in answer:
        raise OperatorError(f"operator {function_arn} gave an answer that is not an operation result")
    if not answer["ok"]:
        raise OperatorError(answer.get("error") or "the operation failed")
    return answer["result"]
