"""Invoking the operator function (dbops.operator_client) as AWS answers: botocore's Stubber on a
real Lambda client, and a local HTTP endpoint slower than the read timeout.

No end-to-end test through moto's Lambda: moto runs functions in Docker, which the test
machine does not have. The handler itself is tested in test_operator_handler.py, and the
CLI's operator path (test_ops_stack_cli.py) sends its requests through it in-process.
"""

from __future__ import annotations

import io
import json
import os
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote

import boto3
import pytest
import urllib3.util.connection as urllib3_connection
from botocore.config import Config
from botocore.exceptions import ReadTimeoutError
from botocore.response import StreamingBody
from botocore.stub import Stubber

from dbops import operator_client
from dbops.operator_client import FUNCTION_TIMEOUT_S, THROTTLE_RETRIES, OperatorError, invoke_operator, lambda_client

ARN = "arn:aws:lambda:us-east-1:123456789012:function:swipesavvy-staging-db-operator"
REQUEST = {
    "operation": "read_schema",
    "connection": {"host": "db", "port": 5432.0, "dbname": "swipesavvy", "user": "master", "sslmode": "require"},
    "args": {},
}


@pytest.fixture(autouse=True)
def fast(monkeypatch):
    monkeypatch.setattr(operator_client, "THROTTLE_DELAYS_S", [0.0] * THROTTLE_RETRIES)
    monkeypatch.setattr(operator_client, "ACTIVE_WAIT_DELAY_S", 0)


@pytest.fixture
def stubbed():
    client = boto3.client(
        "lambda", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def body(document) -> StreamingBody:
    data = document if isinstance(document, bytes) else json.dumps(document).encode()
    return StreamingBody(io.BytesIO(data), len(data))


def state(stubber: Stubber, value: str, reason: str | None = None) -> None:
    configuration = {"FunctionName": "swipesavvy-staging-db-operator", "State": value}
    if reason:
        configuration["StateReason"] = reason
    stubber.add_response("get_function", {"Configuration": configuration}, {"FunctionName": ARN})


def invoked(stubber: Stubber, payload, function_error: str | None = None, request: bytes | None = None) -> None:
    response = {"StatusCode": 200, "Payload": body(payload)}
    if function_error:
        response["FunctionError"] = function_error
    stubber.add_response(
        "invoke",
        response,
        {
            "FunctionName": ARN,
            "InvocationType": "RequestResponse",
            "Payload": request if request is not None else json.dumps(REQUEST).encode(),
        },
    )


def throttled(stubber: Stubber) -> None:
    stubber.add_client_error(
        "invoke", service_error_code="TooManyRequestsException", service_message="Rate exceeded", http_status_code=429
    )


def failure(client, request=REQUEST) -> OperatorError:
    with pytest.raises(OperatorError) as raised:
        invoke_operator(ARN, request, client=client)
    message = str(raised.value)
    assert message and message == " ".join(message.split()), message
    return raised.value


def test_an_active_function_is_invoked_once_and_its_result_returned(stubbed):
    client, stubber = stubbed
    state(stubber, "Active")
    invoked(stubber, {"ok": True, "result": {"migrations": {"001_roles": "ab" * 32}}})
    assert invoke_operator(ARN, REQUEST, client=client) == {"migrations": {"001_roles": "ab" * 32}}


def test_a_failed_operation_is_the_handlers_line(stubbed):
    client, stubber = stubbed
    line = "gave up after 60 s waiting for a lock another session holds on this database"
    state(stubber, "Active")
    invoked(stubber, {"ok": False, "error": line, "kind": "locked"})
    error = failure(client)
    assert str(error) == line and error.kind == "locked"


def test_a_function_error_is_one_line(stubbed):
    client, stubber = stubbed
    state(stubber, "Active")
    invoked(
        stubber,
        {"errorMessage": "2026-01-05T10:00:00Z Task timed out\nafter 900.00 seconds", "errorType": "Sandbox.Timedout"},
        function_error="Unhandled",
    )
    error = failure(client)
    assert str(error) == (
        f"operator {ARN} failed (Unhandled): Sandbox.Timedout: 2026-01-05T10:00:00Z Task timed out after 900.00 seconds"
    )
    assert error.kind == "failed"


def test_a_function_error_without_json_is_one_line(stubbed):
    client, stubber = stubbed
    state(stubber, "Active")
    invoked(stubber, b"out of\nmemory", function_error="Unhandled")
    assert str(failure(client)) == f"operator {ARN} failed (Unhandled): out of memory"


@pytest.mark.parametrize(
    "payload", [None, [], {"result": {}}, {"ok": True}], ids=["null", "list", "no-ok", "no-result"]
)
def test_an_answer_that_is_not_an_operation_result_is_one_line(stubbed, payload):
    client, stubber = stubbed
    state(stubber, "Active")
    invoked(stubber, payload)
    assert str(failure(client)) == f"operator {ARN} gave an answer that is not an operation result"


def test_a_throttled_invoke_is_retried(stubbed):
    client, stubber = stubbed
    state(stubber, "Active")
    throttled(stubber)
    throttled(stubber)
    invoked(stubber, {"ok": True, "result": {"migrations": {}}})
    assert invoke_operator(ARN, REQUEST, client=client) == {"migrations": {}}


def test_throttled_past_the_retries_is_one_line(stubbed):
    client, stubber = stubbed
    state(stubber, "Active")
    for _ in range(THROTTLE_RETRIES + 1):
        throttled(stubber)
    error = failure(client)  # and no further invoke: the stubber would have no answer for it
    assert str(error) == f"cannot invoke operator {ARN}: TooManyRequestsException Rate exceeded"
    assert error.kind == "unavailable"


def test_throttles_are_retried_for_as_long_as_another_operation_may_hold_the_one_slot():
    # The function's reserved concurrency is 1 (components/data/operator.py): a second operation is
    # throttled while the first runs, which may take the function's whole timeout.
    assert sum(operator_client._throttle_delays()) >= FUNCTION_TIMEOUT_S
    assert max(operator_client._throttle_delays()) == operator_client.THROTTLE_BACKOFF_MAX_S
    assert operator_client._throttle_delays()[:3] == [2.0, 4.0, 8.0]


def test_another_invoke_error_is_not_retried(stubbed):
    client, stubber = stubbed
    state(stubber, "Active")
    stubber.add_client_error(
        "invoke", service_error_code="AccessDeniedException", service_message="not\nallowed", http_status_code=403
    )
    assert str(failure(client)) == f"cannot invoke operator {ARN}: AccessDeniedException not allowed"


def test_a_failed_function_is_one_line_with_its_state_reason(stubbed):
    client, stubber = stubbed
    state(
        stubber,
        "Failed",
        "Lambda was unable to configure access to your environment variables because the KMS key is invalid.",
    )
    error = failure(client)
    assert str(error) == (
        f"operator {ARN} is not active (Failed): Lambda was unable to configure access to your environment "
        "variables because the KMS key is invalid."
    )
    assert error.kind == "unavailable"


def test_a_pending_function_is_waited_for(stubbed):
    client, stubber = stubbed
    state(stubber, "Pending", "The function is being created.")
    state(stubber, "Pending", "The function is being created.")
    state(stubber, "Active")
    invoked(stubber, {"ok": True, "result": {}})
    assert invoke_operator(ARN, REQUEST, client=client) == {}


def test_an_inactive_function_is_woken_then_waited_for(stubbed):
    """Inactive stays Inactive until an invoke, which fails: the waiter alone would wait out
    its five minutes. The wake-up request is one the handler refuses without a database."""
    client, stubber = stubbed
    state(stubber, "Inactive", "The function is inactive because it was idle.")
    stubber.add_client_error(
        "invoke",
        service_error_code="ResourceNotReadyException",
        service_message="The function is inactive and its VPC connection is no longer available.",
        http_status_code=502,
        expected_params={"FunctionName": ARN, "InvocationType": "RequestResponse", "Payload": b"{}"},
    )
    state(stubber, "Pending", "The function is being restored.")
    state(stubber, "Active")
    invoked(stubber, {"ok": True, "result": {"migrations": {}}})
    assert invoke_operator(ARN, REQUEST, client=client) == {"migrations": {}}


def test_a_function_that_never_becomes_active_is_one_line_with_its_state_reason(stubbed, monkeypatch):
    monkeypatch.setattr(operator_client, "ACTIVE_WAIT_ATTEMPTS", 3)
    client, stubber = stubbed
    for _ in range(4):  # the first look, then the waiter's 3 attempts
        state(stubber, "Pending", "Creating network interfaces in subnet-0123abcd.")
    error = failure(client)
    assert str(error) == f"operator {ARN} is not active (Pending): Creating network interfaces in subnet-0123abcd."


def test_a_missing_function_is_one_line(stubbed):
    client, stubber = stubbed
    stubber.add_client_error(
        "get_function", service_error_code="ResourceNotFoundException", service_message=f"Function not found: {ARN}"
    )
    assert str(failure(client)) == f"cannot invoke operator {ARN}: ResourceNotFoundException Function not found: {ARN}"


def test_lambda_client_makes_one_attempt_and_outlasts_the_function():
    client = lambda_client("arn:aws:lambda:eu-west-1:123456789012:function:op")
    config = client.meta.config
    assert config.retries["total_max_attempts"] == 1
    assert config.read_timeout > FUNCTION_TIMEOUT_S
    assert config.connect_timeout == 10 and config.tcp_keepalive is True
    assert client.meta.region_name == "eu-west-1"


def test_keepalive_socket_options_are_short():
    """The first probe long before a NAT gateway's 350 s idle limit, and a dead peer noticed in
    about two minutes, not after Linux's default 7200 s of silence."""
    assert operator_client.keepalive_socket_options() == [
        (socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 60),
        (socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 15),
        (socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 4),
    ]
    assert operator_client.KEEPALIVE_IDLE_S + operator_client.KEEPALIVE_INTERVAL_S * 4 < 350


# --- a read timeout on a real HTTP exchange -----------------------------------------------


class SlowLambda(BaseHTTPRequestHandler):
    """GetFunction answers Active at once; Invoke answers after ``delay_s``, or, with ``drop``,
    reads the request and closes the connection without an answer (as a NAT gateway that
    forgot an idle connection does)."""

    posts: list[str]
    delay_s: float = 300.0  # never reached: the client's read timeout (0.5 s) ends first, however busy the machine
    release: threading.Event
    drop: bool = False

    def do_GET(self):
        self._answer({"Configuration": {"FunctionName": "op", "State": "Active"}})

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.posts.append(self.path)
        if self.drop:
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        self.release.wait(self.delay_s)
        self._answer({"ok": True, "result": {}})

    def _answer(self, document):
        data = json.dumps(document).encode()
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # the client gave up
            pass

    def log_message(self, *_args):
        pass


@pytest.fixture
def slow_lambda(monkeypatch):
    posts: list[str] = []
    release = threading.Event()
    handler = type("Handler", (SlowLambda,), {"posts": posts, "release": release})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, port = server.server_address
    for key, value in {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
    }.items():
        monkeypatch.setenv(key, value)
    try:
        yield posts
    finally:
        release.set()
        server.shutdown()
        server.server_close()


def test_a_read_timeout_is_one_attempt_and_one_line(slow_lambda, monkeypatch):
    """A sync invoke that outlasts the read timeout may still be running: it is never sent again."""
    monkeypatch.setattr(operator_client, "READ_TIMEOUT_S", 0.5)
    error = failure(None)  # invoke_operator builds its own client: lambda_client()
    assert str(error) == (
        f"operator {ARN} did not answer within 0.5 s; it may still be running: see its log group before retrying"
    )
    assert len(slow_lambda) == 1


def test_the_slow_endpoint_does_see_botocores_own_retries(slow_lambda):
    """The control: with botocore's standard retries the same timeout sends the invoke 3 times."""
    client = boto3.client(
        "lambda", region_name="us-east-1", config=Config(read_timeout=0.5, retries={"mode": "standard"})
    )
    with pytest.raises(ReadTimeoutError):
        client.invoke(FunctionName=ARN, InvocationType="RequestResponse", Payload=b"{}")
    assert len(slow_lambda) == 3


def test_a_connection_dropped_after_the_request_says_it_may_have_run(slow_lambda, monkeypatch):
    """The request reached the function and the answer never came back: retrying blindly could
    run a seed twice, so the line says how to check instead of "cannot invoke"."""
    monkeypatch.setattr(SlowLambda, "drop", True)
    error = failure(None)
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    assert str(error) == (
        f"operator {ARN}: the connection dropped after the request was sent (Connection was closed before we"
        f' received a valid response from endpoint URL: "{endpoint}/2015-03-31/functions/{quote(ARN, safe="")}'
        f'/invocations".); the operation may have run: check with `python -m ops verify --stack NAME` before retrying'
    )
    assert len(slow_lambda) == 1  # sent once, never again


def test_an_endpoint_that_refuses_the_connection_cannot_invoke(monkeypatch):
    """Nothing listening: nothing was sent, so the line says the operator could not be invoked."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    error = failure(None)
    assert str(error).startswith(f"cannot invoke operator {ARN}: Could not connect to the endpoint URL")
    assert error.kind == "unavailable"


def test_the_clients_sockets_carry_the_keepalive_options(slow_lambda, monkeypatch):
    """Read back from each socket the client opened, once urllib3 has set its options."""
    monkeypatch.setattr(SlowLambda, "delay_s", 0)
    seen = []
    set_options = urllib3_connection._set_socket_options

    def read_back(sock, options):
        set_options(sock, options)
        seen.append(
            (
                sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
                sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
                sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
                sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
            )
        )

    monkeypatch.setattr(urllib3_connection, "_set_socket_options", read_back)
    assert invoke_operator(ARN, REQUEST) == {}  # GetFunction, then Invoke
    assert seen and set(seen) == {(1, 60, 15, 4)}
