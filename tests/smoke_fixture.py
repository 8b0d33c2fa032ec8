"""A local HTTP server implementing the API endpoints and the site page ``ops smoke`` checks.

State is in memory: the 10 flags as migration 003 seeds them and an audit log that every
toggle or rollout appends to. ``failures`` switches on one way of being broken at a time
(FAILURES lists them); ``die_after`` stops the server for good after that many requests,
as a backend that crashes mid-run.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from dbops.flags import SEEDED_FLAGS

TOKEN, ADMIN_TOKEN = "staging-token", "admin-token"
PAGE = b"<!doctype html><title>SwipeSavvy</title><h1>Reporting Dashboard</h1>"
FAILURES = {
    "health_body": "health answers 200 with another service's body",
    "flag_count": "the flags list has 9 entries",
    "metrics_error": "campaign metrics answer 500",
    "export_error": "export answers 500",
    "dashboard_text": "the site page lacks the dashboard's title",
    "toggle_ignored": "toggle answers 200 and changes nothing",
    "no_audit": "toggles are not written to the audit log",
    "rollout_refused": "rollout answers 403",
    "restore_refused": "a flag's second change is refused (the restore fails)",
    "slow_api": "every API request takes 350 ms (over the 300 ms target)",
    "hang": "every API request takes longer than the client's timeout",
    "bad_status_line": "every API read (GET) is answered with a garbage status line",
    "truncated_body": "every API read (GET) promises more bytes than it sends",
    "restore_garbage": "a flag's later changes (the restores) get a garbage status line, unapplied",
    "infinite_rollout": "/api/features/all gives the flags at 0% a rollout_percentage of 1e999",
    "string_enabled": '/api/features/all gives tier_progress_bar "enabled": "false" (a string)',
    "html_api": "/api/features/all answers 200 with an HTML page",
    "redirect": "every request is redirected (302) to redirect_to, another server",
}
GARBAGE = object()  # an answer written as a garbage status line


class Redirect(str):
    """An answer that is a 302 to this URL."""


class SmokeFixture:
    def __init__(
        self,
        failure: str | None = None,
        die_after: int | None = None,
        hang_s: float = 3.0,
        garbage_restores: int = 10**6,
        redirect_to: str = "",
    ):
        assert failure is None or failure in FAILURES, failure
        self.failure, self.die_after, self.hang_s = failure, die_after, hang_s
        self.garbage_restores, self.redirect_to = garbage_restores, redirect_to
        self.tokens: list[str | None] = []  # the bearer token of every request, as received
        self.flags = {key: [enabled, pct] for key, (_, enabled, pct) in SEEDED_FLAGS.items()}
        self.audit: list[dict] = []
        self.changes: dict[str, int] = {}  # per flag, for restore_refused
        self.requests = 0
        self.lock = threading.Lock()
        self.stopped = threading.Event()  # ends every hang: a stopped fixture leaves no request waiting
        self.server = _Server(("127.0.0.1", 0), _handler(self))
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> SmokeFixture:
        self.thread.start()
        return self

    def __exit__(self, *_) -> None:
        self.stop()

    def stop(self) -> None:
        self.stopped.set()
        self.server.shutdown()
        self.server.server_close()

    def state(self) -> dict[str, tuple[bool, int]]:
        with self.lock:
            return {key: (enabled, pct) for key, (enabled, pct) in self.flags.items()}

    # --- answers -----------------------------------------------------------------------------

    def answer(self, method: str, path: str, token: str | None, body: dict | None) -> tuple[int, object]:
        if self.failure == "redirect":
            return 302, Redirect(self.redirect_to + path)
        if not path.startswith("/api/"):
            text = PAGE.replace(b"Reporting Dashboard", b"Welcome") if self.failure == "dashboard_text" else PAGE
            return 200, text
        if self.failure == "slow_api":
            time.sleep(0.35)
        if self.failure == "hang":
            self.stopped.wait(self.hang_s)
        if method == "GET" and self.failure in ("bad_status_line", "truncated_body"):
            return 200, GARBAGE
        if path == "/api/health":
            service = "someone-else" if self.failure == "health_body" else "swipesavvy-backend"
            return 200, {"status": "healthy", "service": service}
        admin = token == ADMIN_TOKEN
        if token not in (TOKEN, ADMIN_TOKEN):
            return 401, {"error": "unauthorized"}
        with self.lock:
            return self._api(method, path, admin, body or {})

    def _api(self, method: str, path: str, admin: bool, body: dict) -> tuple[int, object]:
        if (method, path) == ("GET", "/api/features/all"):
            flags = [{"key": k, "enabled": e, "rollout_percentage": p} for k, (e, p) in self.flags.items()]
            if self.failure == "html_api":
                return 200, PAGE
            if self.failure == "infinite_rollout":
                return 200, json.dumps(flags).replace('"rollout_percentage": 0', '"rollout_percentage": 1e999').encode()
            if self.failure == "string_enabled":
                flags[0]["enabled"] = "false"
            return 200, flags[:9] if self.failure == "flag_count" else flags
        if re.fullmatch(r"/api/analytics/campaign/\d+/metrics", path) and method == "GET":
            return (500, {"error": "boom"}) if self.failure == "metrics_error" else (404, {"error": "no data"})
        if (method, path) == ("POST", "/api/export"):
            return (500, {"error": "boom"}) if self.failure == "export_error" else (200, {"format": "json", "rows": []})
        if not admin:
            return 403, {"error": "admin only"}
        if (method, path) == ("GET", "/api/features/audit-log"):
            return 200, self.audit
        match = re.fullmatch(r"/api/features/(\w+)/(toggle|rollout)", path)
        if method == "POST" and match and match[1] in self.flags:
            return self._change(match[1], match[2], body)
        return 404, {"error": "not found"}

    def _change(self, key: str, action: str, body: dict) -> tuple[int, object]:
        self.changes[key] = self.changes.get(key, 0) + 1
        if self.failure == "restore_refused" and self.changes[key] > 1:
            return 503, {"error": "unavailable"}
        if self.failure == "restore_garbage" and self.changes[key] > 1 and self.garbage_restores > 0:
            self.garbage_restores -= 1
            return 200, GARBAGE
        if action == "rollout" and self.failure == "rollout_refused":
            return 403, {"error": "forbidden"}
        old = list(self.flags[key])
        if action == "toggle" and self.failure != "toggle_ignored":
            self.flags[key][0] = bool(body["enabled"])
        if action == "rollout":
            self.flags[key][1] = int(body["percentage"])
        if self.failure != "no_audit":
            self.audit.append(
                {"flag_key": key, "action": action.upper(), "old_value": old, "new_value": self.flags[key]}
            )
        return 200, {"key": key, "enabled": self.flags[key][0], "rollout_percentage": self.flags[key][1]}


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A client that gave up (a timeout) leaves a broken pipe: expected here, not news.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _handler(fixture: SmokeFixture):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_):  # quiet tests
            pass

        def do_GET(self):
            self._serve()

        def do_POST(self):
            self._serve()

        def _serve(self):
            with fixture.lock:
                fixture.requests += 1
                dying = fixture.die_after is not None and fixture.requests > fixture.die_after
            if dying:  # the backend is gone: this request gets no answer, later ones no connection
                threading.Thread(target=fixture.stop, daemon=True).start()
                self.close_connection = True
                return
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            token = (self.headers.get("Authorization") or "").removeprefix("Bearer ") or None
            fixture.tokens.append(token)
            status, payload = fixture.answer(self.command, self.path, token, body)
            if payload is GARBAGE:
                self._garbage()
                return
            if isinstance(payload, Redirect):
                self.send_response(status)
                self.send_header("Location", payload)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/html" if isinstance(payload, bytes) else "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _garbage(self):
            self.close_connection = True
            if fixture.failure == "truncated_body":
                self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n[{")
            else:
                self.wfile.write(b"HTTP/1.1 TWO-HUNDRED OK\r\n\r\n")

    return Handler
