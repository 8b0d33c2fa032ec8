"""The reference backend (examples/backend-release) against a real PostgreSQL over TLS, run as
``ops rehearse`` runs it: the env file rendered by the boot's own function, the unit's command,
the site behind the CloudFront function. ``ops smoke`` passes against it and names what breaks;
the DogStatsD metrics and span names are the ones the monitors query.
"""

from __future__ import annotations

import http.client
import json
import re
import secrets
import subprocess
import time
from pathlib import Path

import psycopg
import pytest
from installed_tools import require_tool
from test_ops_stack_cli import run

from components import datadog_queries
from components.app.backend_boot import BootSettings, fixed_environment, render_environment, render_unit
from components.app.frontend import SPA_ROUTES_CODE
from dbops.connection import connect
from dbops.logins import LoginSpec, ensure_login
from dbops.migrations import apply_migrations
from ops.cli import EXIT_FAILED, EXIT_OK
from ops.live.smoke import Http
from ops.rehearsal.local_postgres import Scratch, start_postgres
from ops.rehearsal.rehearse import (
    CUSTOM_METRICS,
    DogStatsDListener,
    free_port,
    metrics_missing,
    run_backend,
    serve_site,
    unit_settings,
)

ROOT = Path(__file__).resolve().parent.parent
RELEASE = ROOT / "examples" / "backend-release"
SITE = ROOT / "examples" / "frontend-dist"
LOGIN = "swipesavvy_backend"
DATABASE = "swipesavvy_backend_test"
SETTINGS = BootSettings(
    region="us-east-1",
    release_uri=f"s3://bucket/releases/{'a' * 64}.tar.gz",
    release_sha256="a" * 64,
    db_secret_arn="arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf",
    node_env="staging",
)
TOKENS = {"api_token": "staging-" + secrets.token_hex(8), "admin_token": "admin-" + secrets.token_hex(8)}


@pytest.fixture(scope="module", autouse=True)
def node() -> str:
    return require_tool("node", "runs the reference backend; install.sh installs it")


@pytest.fixture(scope="module")
def database():
    """A TLS-only local PostgreSQL (the one rehearse runs), migrated, with the backend's login."""
    scratch = Scratch("backend-test")
    try:
        server = start_postgres(scratch)
        with psycopg.connect(server.dsn(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {DATABASE}")
        password = secrets.token_urlsafe(20)
        with connect(server.dsn(DATABASE)) as conn:
            apply_migrations(conn)
            ensure_login(conn, LoginSpec(LOGIN, "swipesavvy_readwrite", 20), password)
        yield scratch, server, password
    finally:
        scratch.close()


class Backend:
    def __init__(self, scratch: Scratch, url: str, statsd: DogStatsDListener):
        self.scratch, self.url, self.statsd = scratch, url, statsd

    def get(self, path: str, token: str | None = None):
        return Http(self.url, self.url, "", "", 10.0).fetch("GET", self.url + path, None, token)

    def post(self, path: str, body, token: str | None):
        return Http(self.url, self.url, "", "", 10.0).fetch("POST", self.url + path, body, token)

    def log(self) -> list[dict]:
        lines = (self.scratch.path / "backend.log").read_text().splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]


@pytest.fixture(scope="module")
def start(database):
    """Start the release with an env file rendered by the boot's function; ``overrides`` change it."""
    scratch, server, password = database
    started: list[Scratch] = []

    def backend(tokens: dict[str, str] | None = TOKENS, **overrides: str) -> Backend:
        own = Scratch("backend-test")
        started.append(own)
        secret = {"host": server.host, "port": server.port, "dbname": DATABASE, "username": LOGIN, "password": password}
        fixed = fixed_environment(SETTINGS) | {
            "API_PORT": str(free_port()),
            "DB_SSLMODE": "verify-full",
            "DB_SSLROOTCERT": str(server.ca_file),
            **overrides,
        }
        env_file = own.path / "backend.env"
        env_file.write_text(
            render_environment(json.dumps(secret), LOGIN, fixed, "", json.dumps(tokens) if tokens else "")
        )
        statsd = DogStatsDListener()
        exec_start = unit_settings(render_unit())["ExecStart"]
        return Backend(own, run_backend(own, RELEASE, exec_start, env_file, statsd.port), statsd)

    yield backend
    for own in started:
        own.close()


@pytest.fixture(scope="module")
def shared(start) -> Backend:
    """One backend for the tests that change nothing."""
    return start()


def smoke(capsys, monkeypatch, backend: Backend, scratch: Scratch) -> tuple[int, str, str]:
    edge = serve_site(scratch, SPA_ROUTES_CODE, SITE, backend.url)
    monkeypatch.setenv("SWIPESAVVY_API_TOKEN", TOKENS["api_token"])
    monkeypatch.setenv("SWIPESAVVY_ADMIN_TOKEN", TOKENS["admin_token"])
    return run(capsys, "smoke", "--api-url", f"{edge}/api", "--site-url", f"{edge}/", "--requests", "20")


def test_smoke_passes_every_check_against_the_reference_backend(start, capsys, monkeypatch):
    backend = start()
    code, out, err = smoke(capsys, monkeypatch, backend, backend.scratch)
    assert code == EXIT_OK, out + err
    marks = [line.split()[:2] for line in out.splitlines() if line[:1] in "✓✗"]
    assert marks == [["✓", name] for name in (
        "health", "feature_flags", "campaign_metrics", "export", "dashboard", "admin_toggle", "admin_rollout",
        "api_latency", "site_latency", "flags_unchanged",
    )]  # fmt: skip


def test_smoke_names_the_check_a_broken_backend_fails(start, capsys, monkeypatch):
    backend = start(FEATURE_FLAGS_ENABLED="false")  # the flags endpoint answers 503
    code, out, err = smoke(capsys, monkeypatch, backend, backend.scratch)
    assert code == EXIT_FAILED
    assert "✗ feature_flags" in out and "HTTP 503, expected 200" in out
    assert "✓ health" in out and "✓ export" in out
    assert err.strip().splitlines()[-1].startswith("error: smoke failed: feature_flags, ")


def test_the_audit_log_names_the_tokens_identity_and_the_login(start, database):
    backend = start()
    answer = backend.post("/api/features/dark_mode/toggle", {"enabled": False}, TOKENS["admin_token"])
    assert answer.status == 200 and answer.json()["enabled"] is False
    entries = backend.get("/api/features/audit-log", TOKENS["admin_token"]).json()
    latest = next(e for e in entries if e["flag_key"] == "dark_mode")
    assert (latest["changed_by"], latest["session_login"]) == ("admin-token", LOGIN)
    assert latest["reason"] == "POST /api/features/dark_mode/toggle"
    assert backend.post("/api/features/dark_mode/toggle", {"enabled": True}, TOKENS["admin_token"]).status == 200


@pytest.mark.parametrize(
    ("call", "token", "status"),
    [
        (("POST", "/api/features/dark_mode/toggle", {"enabled": True}), "api_token", 403),  # staging is not admin
        (("POST", "/api/features/dark_mode/toggle", {"enabled": True}), None, 401),
        (("POST", "/api/export", {"format": "json"}), None, 401),
        (("POST", "/api/export", {"format": "json"}), "wrong", 401),
        (("GET", "/api/features/all", None), "wrong", 401),  # public, but a wrong token is refused
        (("GET", "/api/features/all", None), None, 200),
        (("POST", "/api/features/dark_mode/toggle", {"enabled": "false"}), "admin_token", 400),  # not a boolean
        (("POST", "/api/features/community_feed/rollout", {"percentage": 101}), "admin_token", 400),
        (("POST", "/api/features/no_such_flag/rollout", {"percentage": 5}), "admin_token", 404),
        (("GET", "/api/analytics/campaign/999999/metrics", None), "api_token", 404),
    ],
)
def test_tokens_and_bodies_are_checked(shared, call, token, status):
    method, path, body = call
    answer = Http(shared.url, shared.url, "", "", 10.0).fetch(method, shared.url + path, body, TOKENS.get(token, token))
    assert answer.status == status, answer.body


def raw(backend: Backend, method: str, path: str, body: bytes = b"", headers: dict | None = None):
    """(status, headers, JSON body) of a request written as given: any header, any bytes."""
    host, port = backend.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        answer = conn.getresponse()
        return answer.status, answer.headers, json.loads(answer.read())
    finally:
        conn.close()


BIG_BODY = json.dumps({"enabled": True, "padding": "x" * 20_000}).encode()  # over the 16 KB limit
BROTLI = b"\x1b\x0f\x00\xf8\x25\x00\x00\x00"  # any bytes: the encoding is refused before they are read


@pytest.mark.parametrize(
    ("body", "headers", "token", "status", "error"),
    [
        (BIG_BODY, {}, None, 401, "a valid bearer token is required"),  # the token first: no body read
        (BIG_BODY, {}, "admin_token", 413, "the body is over 16kb"),
        (BROTLI, {"Content-Encoding": "br"}, None, 401, "a valid bearer token is required"),
        (
            BROTLI,
            {"Content-Encoding": "br"},
            "admin_token",
            415,
            "the body's Content-Encoding is not accepted (send it uncompressed)",
        ),
        (b'{"enabled": tru', {}, "admin_token", 400, "the body is not JSON"),
    ],
    ids=["too-large-no-token", "too-large", "brotli-no-token", "brotli", "not-json"],
)
def test_a_body_refused_is_the_callers_4xx_after_the_token_check_and_no_error_logged(
    shared, body, headers, token, status, error
):
    headers = {"Content-Type": "application/json", **headers}
    if token:
        headers["Authorization"] = f"Bearer {TOKENS[token]}"
    answer = raw(shared, "POST", "/api/features/dark_mode/toggle", body, headers)
    assert (answer[0], answer[2]) == (status, {"error": error})
    assert [e for e in shared.log() if e["level"] == "error"] == []  # no 5xx monitor trips


@pytest.mark.parametrize(
    ("method", "path", "token", "status"),
    [
        ("GET", "/api/health", None, 200),
        ("GET", "/api/features/all", None, 200),
        ("GET", "/api/features/audit-log", "admin_token", 200),
        ("GET", "/api/features/audit-log", None, 401),
        ("GET", "/api/analytics/campaign/x/metrics", "api_token", 400),
        ("GET", "/api/no-such-call", None, 404),
        ("GET", "/no-such-page", None, 404),
        ("DELETE", "/api/features/all", None, 404),
    ],
)
def test_every_answer_is_json_never_sniffed_nor_cached(shared, method, path, token, status):
    headers = {"Authorization": f"Bearer {TOKENS[token]}"} if token else {}
    code, answered, body = raw(shared, method, path, b"", headers)  # JSON or json.loads raises
    assert code == status
    assert answered["Content-Type"] == "application/json; charset=utf-8"
    assert (answered["X-Content-Type-Options"], answered["Cache-Control"]) == ("nosniff", "no-store")
    if status == 404:
        assert body == {"error": "not found"}


def test_the_server_sets_its_own_header_and_request_timeouts(shared):
    listening = next(e for e in shared.log() if e["message"] == "listening")
    assert (listening["headers_timeout_ms"], listening["request_timeout_ms"]) == (10000, 30000)


def test_without_the_tokens_secret_token_calls_answer_503_and_the_rest_works(start):
    backend = start(tokens=None)
    assert backend.get("/api/health").status == 200
    assert backend.get("/api/features/all").status == 200  # what the synthetic tests read
    export = backend.post("/api/export", {"format": "json"}, "anything")
    assert (export.status, export.json()) == (503, {"error": "no API tokens configured (API_TOKEN, ADMIN_TOKEN)"})
    assert next(e for e in backend.log() if e["message"] == "listening")["level"] == "warn"


def test_every_metric_a_monitor_or_the_dashboard_queries_is_sent_with_their_tags(start, staging):
    queried = set()
    for typ in ("datadog:index/monitor:Monitor", "datadog:index/dashboard:Dashboard"):
        for resource in staging.of_type(typ):
            queried |= set(re.findall(r"swipesavvy\.[a-z_.]+[a-z]", json.dumps(resource.inputs)))
    assert queried == set(CUSTOM_METRICS)
    backend = start()
    assert backend.get("/api/features/all").status == 200
    deadline = time.monotonic() + 300  # a guard: the loop ends when every metric has arrived
    while metrics_missing(backend.statsd.lines, "staging") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert metrics_missing(backend.statsd.lines, "staging") == []
    assert metrics_missing(backend.statsd.lines, "production") == [
        f"{name} ({kind}, env:production, service:swipesavvy-backend)" for name, kind in CUSTOM_METRICS.items()
    ]


def test_request_spans_are_the_ones_the_apm_monitors_query(shared):
    backend = shared
    assert backend.get("/api/health").status == 200
    requests = [entry for entry in backend.log() if entry["message"] == "request"]
    assert requests and {f"trace.{entry['span']}" for entry in requests} == {datadog_queries.APM_SPAN}
    assert all(entry["dd"]["trace_id"] for entry in requests)  # logs correlate with traces


def test_logs_are_json_lines_without_secrets(shared, database):
    backend = shared
    backend.get("/api/features/all", TOKENS["api_token"])
    text = (backend.scratch.path / "backend.log").read_text()
    assert all(json.loads(line)["service"] == "swipesavvy-backend" for line in text.splitlines())
    assert database[2] not in text and TOKENS["api_token"] not in text


@pytest.mark.parametrize(
    ("overrides", "healthy"),
    [
        ({}, True),  # verify-full against the server's CA, DB_HOST localhost as in its certificate
        ({"DB_SSLMODE": "require"}, True),
        ({"DB_SSLMODE": "verify-ca", "DB_HOST": "127.0.0.1"}, True),  # the name is not checked
        ({"DB_HOST": "127.0.0.1"}, False),  # verify-full: the name does not match the certificate
        ({"DB_SSLMODE": "disable"}, False),  # the server takes TLS only, as RDS with rds.force_ssl
    ],
)
def test_db_sslmode_is_libpqs(start, overrides, healthy):
    assert (start(**overrides).get("/api/health").status == 200) is healthy


def test_verify_full_refuses_a_server_signed_by_another_ca(start, tmp_path):
    other = tmp_path / "other-ca.crt"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-days", "1", "-subj", "/CN=localhost", "-keyout", str(tmp_path / "k"), "-out", str(other)],
        check=True, capture_output=True,
    )  # fmt: skip
    backend = start(DB_SSLROOTCERT=str(other))
    assert backend.get("/api/health").status == 500
    assert any(e["message"] == "request failed" for e in backend.log())
