"""A local stand-in for the AWS Lambda API, running ``dbops.operator_handler.handler``.

moto cannot run a Python function without Docker, so this serves the two calls the
operator client makes, with Lambda's wire behaviour: ``GetFunction`` (the
``function_active_v2`` waiter) and a synchronous ``Invoke`` that answers HTTP 200 with the
handler's JSON, or HTTP 200 with ``X-Amz-Function-Error`` when the handler raised. A
provider process reaches it through ``AWS_ENDPOINT_URL_LAMBDA``. Each invocation runs the
handler in a fresh process from ``code_root`` (the function's code: the project, or an
older copy of it), with the AWS settings of the test (moto's Secrets Manager) and the
function's own environment (``configure``: its authority, as the program sets it).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from pulumi_program import PROJECT_ROOT

_RUN_HANDLER = (
    "import json, sys\n"
    "from dbops.operator_handler import handler\n"
    "print(json.dumps(handler(json.load(sys.stdin), None)))\n"
)

_FUNCTION = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)(?P<invoke>/invocations)?")


class _LambdaApi(BaseHTTPRequestHandler):
    invocations: list[dict] = []
    calls: list[tuple[str, str, bool]] = []  # (function name, operation, answered ok)
    environments: dict[str, dict[str, str]] = {}
    code_root: Path = PROJECT_ROOT

    def log_message(self, *_args) -> None:  # keep test output quiet
        pass

    def _answer(self, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        match = _FUNCTION.match(self.path)
        if not match:
            return self._answer(404, {"Message": "not found"})
        self._answer(200, {"Configuration": {"FunctionName": match["name"], "State": "Active"}})

    def do_POST(self) -> None:
        match = _FUNCTION.match(self.path)
        if not match or not match["invoke"]:
            return self._answer(404, {"Message": "not found"})
        event = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"null")
        self.invocations.append(event)
        name = urllib.parse.unquote(match["name"]).rsplit(":", 1)[-1]  # an ARN or a name
        run = subprocess.run(
            [sys.executable, "-c", _RUN_HANDLER],
            cwd=type(self).code_root,
            env={**os.environ, "PYTHONPATH": str(type(self).code_root), **self.environments.get(name, {})},
            input=json.dumps(event),
            capture_output=True,
            text=True,
            timeout=300,
        )
        if run.returncode:  # what Lambda reports for an unhandled exception
            last = (run.stderr.strip().splitlines() or ["crashed"])[-1]
            return self._answer(
                200, {"errorMessage": last, "errorType": "Unhandled"}, {"X-Amz-Function-Error": "Unhandled"}
            )
        answer = json.loads(run.stdout.strip().splitlines()[-1])
        self.calls.append((name, event.get("operation") if isinstance(event, dict) else None, answer.get("ok")))
        self._answer(200, answer)


class FakeLambda:
    """``with FakeLambda() as lam: lam.url`` -> endpoint; ``lam.invocations`` -> events seen,
    ``lam.calls`` -> (function, operation, ok) each; ``lam.deploy(path)`` -> the functions'
    code is now that project copy; ``lam.configure(name, env)`` -> a function's environment."""

    def __enter__(self) -> FakeLambda:
        self.api = type(
            "LambdaApi", (_LambdaApi,), {"invocations": [], "calls": [], "environments": {}, "code_root": PROJECT_ROOT}
        )
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self.api)
        self.invocations, self.calls = self.api.invocations, self.api.calls
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def deploy(self, code_root: Path) -> None:
        self.api.code_root = code_root

    def configure(self, function_name: str, environment: dict[str, str]) -> None:
        self.api.environments[function_name] = environment

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __exit__(self, *_exc) -> None:
        self.server.shutdown()
        self.server.server_close()
