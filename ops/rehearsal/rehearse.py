"""``python -m ops rehearse``: the runbook's seven phases on this machine, no cloud account.

For real where it can be: a local PostgreSQL over TLS (``ops/rehearsal/local_postgres.py``) gets the
migrations, the two login roles, the stack's mock data (none where the stack seeds none) and
its flag settings, and the verify checks as the deploying login and as each application
login (phases 1-2). The backend release the stack uploads runs as its systemd unit would:
the same command, and the env file rendered by the same function as on the instance
(``components.app.backend_boot.render_environment``) from the settings in the plan's user data
(phase 3). The site's build is served with the CloudFront function's own JavaScript routing
it and ``/api/*`` forwarded to the backend (phase 4); the backend's database connection is
checked to be TLS-verified as its login (phase 5); the stack's synthetic tests' own
assertions, the DogStatsD metrics the monitors query and the span names they read run
against it (phase 6); and ``ops smoke`` runs all its checks (phase 7). Under mocks where it
cannot be real: the whole Pulumi program runs with the stack's config, and its plan is
listed by component (and drawn, with ``--graph``). Each step is a ``Step`` whose ``Outcome``
becomes one success criterion with a mark and a timing, under its phase.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import shlex
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import yaml
from psycopg import sql
from psycopg.conninfo import make_conninfo

from components import datadog_queries
from components.app.backend_boot import ENTRYPOINT, INSTALL_SCRIPT_PATH, UNIT_PATH, render_environment
from components.app.release_archive import release_digest
from components.config import StackConfig
from dbops.connection import connect
from dbops.flags import apply_flag_settings
from dbops.login_checks import MAY_WRITE, login_checks
from dbops.logins import LoginSpec, ensure_login
from dbops.migrations import apply_migrations
from dbops.verify import SCHEMA_CHECKS, run_checks, seed_checks
from ops.live.smoke import Answer, Http, Limits, Undo, run_smoke
from ops.rehearsal.local_postgres import LocalPostgres, Scratch, start_postgres
from ops.rehearsal.mock_program import ProgramRun
from ops.rehearsal.plan import database_work, plan_groups
from seed.generator import SeedParameters
from seed.loader import load_mock_data

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DATABASE = "swipesavvy_rehearsal"
LOGIN_GROUPS = {"swipesavvy_backend": "swipesavvy_readwrite", "swipesavvy_analytics": "swipesavvy_readonly"}
LOGIN_CONNECTION_LIMIT = 5
BACKEND_LOGIN = "swipesavvy_backend"
PHASES = {
    0: "plan",
    1: "database",
    2: "mock data",
    3: "backend",
    4: "frontend",
    5: "integration",
    6: "monitoring",
    7: "smoke",
}
START_TIMEOUT_S = 20.0
METRIC_WAIT_S = 5.0  # the backend samples ingestion every second here
# What the rehearsal's backend gets that the instance's differs in: its port (8080 may be
# taken here), the CA file (the local server's, where the instance has RDS's bundle), and,
# outside the env file, where DogStatsD and the trace agent are (the agent's defaults on
# the instance) and how often ingestion is sampled.
LOCAL_ENVIRONMENT = ("API_PORT", "DB_SSLROOTCERT")


@dataclass(frozen=True)
class Outcome:
    passed: bool
    detail: str


@dataclass
class Criterion:
    phase: int
    name: str
    passed: bool
    seconds: float
    detail: str


@dataclass
class Rehearsal:
    """What the steps hand each other."""

    config: StackConfig
    scratch: Scratch
    server: LocalPostgres | None = None
    dsn: str = ""
    login_passwords: dict[str, str] = field(default_factory=dict)
    program: ProgramRun | None = None
    tokens: dict[str, str] = field(default_factory=dict)  # api_token, admin_token: generated per run
    backend_url: str = ""
    edge_url: str = ""
    statsd: DogStatsDListener | None = None

    @property
    def login_dsns(self) -> dict[str, str]:
        return {login: make_conninfo(self.dsn, user=login, password=pw) for login, pw in self.login_passwords.items()}


Step = tuple[int, str, str, Callable[[Rehearsal], Outcome]]  # (phase, criterion, progress text, action)


def timed(step: Callable[[Rehearsal], Outcome], state: Rehearsal) -> tuple[Outcome, float]:
    started = time.perf_counter()
    outcome = step(state)
    return outcome, time.perf_counter() - started


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- phase 1 and 2: the database (real PostgreSQL) ---------------------------------------------


def start_database(state: Rehearsal) -> str:
    """The local server and the rehearsal's database on it (ServerUnavailable when it cannot start)."""
    state.server = start_postgres(state.scratch)
    with psycopg.connect(state.server.dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
        version = conn.info.parameter_status("server_version")
    state.dsn = state.server.dsn(DATABASE)
    return f"PostgreSQL {version}, TLS only, certificate verified (sslmode verify-full)"


def migrate(state: Rehearsal) -> Outcome:
    with connect(state.dsn) as conn:
        report = apply_migrations(conn)
        checks = run_checks(conn, SCHEMA_CHECKS)
    failed = [c.name for c in checks if not c.passed]
    details = {c.name: c.detail for c in checks}
    summary = f"{len(report.applied)} migrations; {details['tables']}; {details['indexes']}; {details['feature_flags']}"
    return Outcome(not failed, summary + (f"; failed: {', '.join(failed)}" if failed else ""))


def create_logins(state: Rehearsal) -> Outcome:
    """The logins as LoginRole creates them, with fresh passwords (a stack keeps them in Secrets Manager)."""
    with connect(state.dsn) as conn:
        for login, group in LOGIN_GROUPS.items():
            password = secrets.token_urlsafe(30)
            ensure_login(conn, LoginSpec(login, group, LOGIN_CONNECTION_LIMIT), password)
            state.login_passwords[login] = password
    return Outcome(True, ", ".join(f"{login} in {group}" for login, group in LOGIN_GROUPS.items()))


def seed_step(params: SeedParameters) -> Callable[[Rehearsal], Outcome]:
    def seed(state: Rehearsal) -> Outcome:
        if not state.config.seed.enabled:
            return Outcome(True, f"none: swipesavvy:seed.enabled is false on stack {state.config.stack}, as deployed")
        with connect(state.dsn) as conn:
            report = load_mock_data(conn, params)
        return Outcome(True, f"{sum(report.counts.values()):,} rows at scale {params.scale:g}")

    return seed


def flag_settings(state: Rehearsal) -> Outcome:
    """The stack's featureFlags, applied as FeatureFlagSettings applies them."""
    settings = {key: (f.enabled, f.rollout_percentage) for key, f in state.config.feature_flags.items()}
    if not settings:
        return Outcome(True, "none set by the stack: the ten flags as the migrations seed them")
    with connect(state.dsn) as conn:
        changed = apply_flag_settings(conn, settings, actor=f"pulumi:{state.config.stack}", reason="ops rehearse")
    return Outcome(True, f"{len(settings)} set, {len(changed)} changed: {', '.join(sorted(settings))}")


def verify_master(state: Rehearsal) -> Outcome:
    with connect(state.dsn) as conn:
        results = run_checks(conn, SCHEMA_CHECKS + seed_checks(require_seed=state.config.seed.enabled))
    return _checklist_outcome(results, "as the deploying login")


def verify_logins(state: Rehearsal) -> Outcome:
    results = []
    for login, dsn in state.login_dsns.items():
        with connect(dsn) as conn:
            results += [(login, r) for r in login_checks(conn, MAY_WRITE[login], state.config.seed.enabled)]
    failed = [f"{login} {r.name}" for login, r in results if not r.passed]
    if failed:
        return Outcome(False, f"failed: {', '.join(failed)}")
    refused = next(r.detail for login, r in results if r.name == "login_read_only")
    return Outcome(True, f"{len(results)} checks; backend writes, analytics {refused}")


def _checklist_outcome(results: list[Any], who: str) -> Outcome:
    failed = [r.name for r in results if not r.passed]
    if failed:
        return Outcome(False, f"failed {who}: {', '.join(failed)}")
    return Outcome(True, f"{len(results)} checks pass {who}")


# --- the program under mocks ---------------------------------------------------------------------


class BackgroundProgram:
    """The program under mocks, run in a thread from the start: it takes longest and needs
    nothing from the database phases, which run meanwhile."""

    def __init__(self, run: Callable[[], ProgramRun]):
        self._run = run
        self._result: ProgramRun | None = None
        self._error: BaseException | None = None
        self.seconds = 0.0
        self._thread = threading.Thread(target=self._target, daemon=True)  # Ctrl-C does not wait for it
        self._thread.start()

    def _target(self) -> None:
        asyncio.set_event_loop(asyncio.new_event_loop())  # Pulumi's runtime needs one in this thread
        started = time.perf_counter()
        try:
            self._result = self._run()
        except BaseException as error:  # handed to the step that waits for it
            self._error = error
        finally:
            self.seconds = time.perf_counter() - started

    def finish(self) -> None:
        """Wait for the thread when no step did (a step before the plan failed): nothing keeps
        running in this process."""
        self._thread.join()

    def wait(self) -> ProgramRun:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._result


def program_step(program: BackgroundProgram) -> Callable[[Rehearsal], Outcome]:
    def plan(state: Rehearsal) -> Outcome:
        state.program = program.wait()
        custom = [r for r in state.program.resources if r.custom]
        return Outcome(
            True,
            f"{len(custom)} resources in {len(plan_groups(state.program))} groups, no error"
            f" ({program.seconds:.1f} s, alongside phases 1-2)",
        )

    return plan


def backups_planned(state: Rehearsal) -> Outcome:
    work = [name for typ, name in database_work(state.program) if typ == "aws:rds/snapshot:Snapshot"]
    database = state.config.database
    wanted = [
        s
        for s, on in (("-after-schema", database.snapshot_after_schema), ("-after-seed", database.snapshot_after_seed))
        if on
    ]
    missing = [suffix for suffix in wanted if not any(name.endswith(suffix) for name in work)]
    if missing:
        return Outcome(False, f"no snapshot {' or '.join(missing)} planned")
    return Outcome(True, ", ".join(work) or "none: the stack takes no snapshots")


def application_planned(state: Rehearsal) -> Outcome:
    outputs = state.program.outputs
    present = [name for name in ("api_url", "site_url") if name in outputs]
    if len(present) < 2:
        return Outcome(False, "no api_url/site_url output: swipesavvy:backend and swipesavvy:frontend must be set")
    return Outcome(True, f"backend and site planned; api_url {outputs['api_url'][0]}")


# --- phase 3: the backend, as its systemd unit runs it ---------------------------------------------


def boot_files(run: ProgramRun) -> dict[str, str]:
    """The files the launch template's user data writes: {path: content}."""
    template = run.one("aws:ec2/launchTemplate:LaunchTemplate")
    cloud_config = yaml.safe_load(base64.b64decode(template.inputs["userData"]))
    return {entry["path"]: entry["content"] for entry in cloud_config["write_files"]}


def script_settings(script: str) -> dict[str, str]:
    """The install script's ``NAME='value'`` assignments (before its body)."""
    settings = {}
    for line in script.split("\n# Tests install under", 1)[0].splitlines():
        name, sep, value = line.partition("=")
        if sep and name.isidentifier() and name.isupper():
            settings[name] = shlex.split(value)[0] if value else ""
    return settings


def unit_settings(unit: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in unit.splitlines() if "=" in line)


def read_environment_file(text: str) -> dict[str, str]:
    """An EnvironmentFile= as systemd reads the boot's lines: NAME="value", backslash escapes."""
    values = {}
    for line in text.splitlines():
        name, _, quoted = line.partition("=")
        body = quoted[1:-1]
        value, index = [], 0
        while index < len(body):
            if body[index] == "\\" and index + 1 < len(body):
                index += 1
            value.append(body[index])
            index += 1
        values[name] = "".join(value)
    return values


def _wait_for(url: str, process, scratch: Scratch, log: str) -> None:
    http = Http(url, url, "", "", 2.0)
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"exited at start (code {process.returncode}): {scratch.log_tail(log)[:300]}")
        if http.fetch("GET", url, None, None).status is not None:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"no answer on {url} within {START_TIMEOUT_S:g} s: {scratch.log_tail(log)[:300]}")
        time.sleep(0.1)


def run_backend(scratch: Scratch, release_dir: Path, exec_start: str, env_file: Path, statsd_port: int) -> str:
    """The release started as the unit's ExecStart, with the env file's values as systemd reads
    them (plus where DogStatsD and the trace agent are); its URL once it answers."""
    node, *arguments = shlex.split(exec_start)
    values = read_environment_file(env_file.read_text())
    process = scratch.start(
        [shutil.which("node") or "node", *arguments],
        "backend.log",
        cwd=release_dir,
        env={
            **values,
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "API_HOST": "127.0.0.1",
            "DD_DOGSTATSD_PORT": str(statsd_port),
            "DD_TRACE_AGENT_URL": f"http://127.0.0.1:{free_port()}",  # no agent here: traces are dropped
            "DD_INSTRUMENTATION_TELEMETRY_ENABLED": "false",
            "INGESTION_SAMPLE_S": "1",
        },
    )
    url = f"http://127.0.0.1:{values['API_PORT']}"
    _wait_for(f"{url}/api/health", process, scratch, "backend.log")
    return url


def serve_site(scratch: Scratch, function_code: str, site_dir: Path, api_origin: str) -> str:
    """``ops/rehearsal/edge.js``: the site's build behind the viewer-request function, /api/* to ``api_origin``; its URL."""
    code_file = scratch.write_private("viewer-request.js", function_code)
    port = free_port()
    process = scratch.start(
        ["node", str(Path(__file__).resolve().parent / "edge.js")],
        "edge.log",
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "EDGE_PORT": str(port),
            "SITE_DIR": str(site_dir),
            "FUNCTION_FILE": str(code_file),
            "API_ORIGIN": api_origin,
        },
    )
    url = f"http://127.0.0.1:{port}"
    _wait_for(url + "/", process, scratch, "edge.log")
    return url


def start_backend(state: Rehearsal) -> Outcome:
    files = boot_files(state.program)
    settings, unit = script_settings(files[INSTALL_SCRIPT_PATH]), unit_settings(files[UNIT_PATH])
    release = next(
        r.inputs["source"]
        for r in state.program.of_type("aws:s3/bucketObjectv2:BucketObjectv2")
        if r.inputs["key"] == f"releases/{settings['RELEASE_SHA256']}.tar.gz"
    )
    digest = release_digest(Path(release.path).read_bytes())
    if digest != settings["RELEASE_SHA256"]:
        return Outcome(
            False,
            f"the release uploaded has sha256 {digest[:12]}, the user data installs {settings['RELEASE_SHA256'][:12]}",
        )
    directory = state.scratch.path / "release"
    directory.mkdir(mode=0o700)
    # As the install script unpacks it.
    subprocess.run(["tar", "-xzf", release.path, "-C", str(directory), "--no-same-owner"], check=True)
    state.tokens = {"api_token": secrets.token_urlsafe(24), "admin_token": secrets.token_urlsafe(24)}
    secret = {
        "engine": "postgres",
        "host": state.server.host,
        "port": state.server.port,
        "dbname": DATABASE,
        "username": BACKEND_LOGIN,
        "password": state.login_passwords[BACKEND_LOGIN],
    }
    fixed = json.loads(settings["FIXED_ENVIRONMENT"])
    fixed |= {"API_PORT": str(free_port()), "DB_SSLMODE": fixed.get("DB_SSLMODE", "verify-full")}
    fixed["DB_SSLROOTCERT"] = str(state.server.ca_file)
    env_file = state.scratch.write_private(
        "backend.env", render_environment(json.dumps(secret), BACKEND_LOGIN, fixed, "", json.dumps(state.tokens))
    )
    state.statsd = DogStatsDListener()
    state.backend_url = run_backend(state.scratch, directory, unit["ExecStart"], env_file, state.statsd.port)
    node = shlex.split(unit["ExecStart"])[0]
    return Outcome(
        True,
        f"{node.rsplit('/', 1)[-1]} {ENTRYPOINT} of release {digest[:12]}, env file from the user data"
        f" ({len(read_environment_file(env_file.read_text()))} settings; here: {', '.join(LOCAL_ENVIRONMENT)})",
    )


# --- phase 4: the site behind the CloudFront function -----------------------------------------------


def start_edge(state: Rehearsal) -> Outcome:
    site_dir = PROJECT_ROOT / state.config.frontend.dist_dir
    code = state.program.one("aws:cloudfront/function:Function").inputs["code"]
    state.edge_url = serve_site(state.scratch, code, site_dir, state.backend_url)
    http = Http(state.edge_url, state.edge_url, "", "", 5.0)
    index = (site_dir / "index.html").read_bytes()
    asset = next(path for path in sorted(site_dir.rglob("*")) if path.is_file() and path.name != "index.html")
    asset_uri = "/" + asset.relative_to(site_dir).as_posix()
    expected = {"/": index, "/reports/q3": index, asset_uri: asset.read_bytes()}
    wrong = [
        uri
        for uri, body in expected.items()
        if (a := http.fetch("GET", state.edge_url + uri, None, None)).status != 200 or a.body != body
    ]
    if wrong:
        return Outcome(False, f"not served as the function routes them: {', '.join(wrong)}")
    return Outcome(
        True,
        f"{state.config.frontend.dist_dir}: / and /reports/q3 -> index.html, {asset_uri} as is; /api/* -> backend",
    )


# --- phase 5: the backend and the database together ----------------------------------------------------


def backend_connection(state: Rehearsal) -> Outcome:
    """The backend's own connection, seen from the server: its login, over verified TLS."""
    answer = Http(state.edge_url, state.edge_url, "", "", 5.0).fetch("GET", state.edge_url + "/api/health", None, None)
    if answer.status != 200:
        return Outcome(False, f"/api/health through the edge: {answer.status or answer.error}")
    with connect(state.dsn) as conn:
        rows = conn.execute(
            "SELECT a.usename, s.ssl, s.version FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)"
            " WHERE a.application_name = 'swipesavvy-backend'"
        ).fetchall()
    if not rows:
        return Outcome(False, "no connection from the backend (application_name swipesavvy-backend)")
    wrong = [f"{user} ssl={ssl}" for user, ssl, _ in rows if user != BACKEND_LOGIN or not ssl]
    if wrong:
        return Outcome(False, f"backend connections not as {BACKEND_LOGIN} over TLS: {', '.join(wrong)}")
    return Outcome(
        True, f"{len(rows)} connection(s) as {BACKEND_LOGIN} over {rows[0][2]}; /api/health through the edge"
    )


# --- phase 6: what the monitors watch -------------------------------------------------------------------


class DogStatsDListener:
    """A UDP socket where the agent's DogStatsD would be, keeping every line it receives."""

    def __init__(self) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.lines: list[str] = []
        threading.Thread(target=self._receive, daemon=True).start()

    def _receive(self) -> None:
        while True:
            try:
                data = self.socket.recv(65535)
            except OSError:
                return
            self.lines += data.decode(errors="replace").splitlines()

    def close(self) -> None:
        self.socket.close()


@dataclass(frozen=True)
class Metric:
    name: str
    kind: str  # d distribution, c count, g gauge, h histogram...
    tags: frozenset[str]


def parse_dogstatsd(line: str) -> Metric | None:
    """``name:value|type|@rate|#tag:v,tag2:v`` (DogStatsD's datagram format)."""
    head, *fields = line.split("|")
    name, sep, _ = head.partition(":")
    if not sep or not fields:
        return None
    tags = next((f[1:].split(",") for f in fields[1:] if f.startswith("#")), [])
    return Metric(name, fields[0], frozenset(tags))


# The custom metrics the monitors and the dashboard query, and the DogStatsD type each must have.
CUSTOM_METRICS = {
    datadog_queries.FLAG_CHECK_LATENCY_P95.metric: "d",  # a distribution: the monitor takes p95
    datadog_queries.RECORDS_INGESTED.metric: "c",
}


def metrics_missing(lines: list[str], stack: str) -> list[str]:
    """Each custom metric not received as its type with the env and service tags the monitors filter on."""
    wanted_tags = {f"env:{stack}", f"service:{datadog_queries.SERVICE}"}
    received = [m for m in map(parse_dogstatsd, lines) if m]
    return [
        f"{name} ({kind}, {', '.join(sorted(wanted_tags))})"
        for name, kind in CUSTOM_METRICS.items()
        if not any(m.name == name and m.kind == kind and wanted_tags <= m.tags for m in received)
    ]


def metrics_emitted(state: Rehearsal) -> Outcome:
    deadline = time.monotonic() + METRIC_WAIT_S
    while (missing := metrics_missing(state.statsd.lines, state.config.stack)) and time.monotonic() < deadline:
        time.sleep(0.1)
    if missing:
        return Outcome(False, f"not received over DogStatsD: {'; '.join(missing)}")
    return Outcome(
        True, f"{', '.join(CUSTOM_METRICS)} with env:{state.config.stack}, service:{datadog_queries.SERVICE}"
    )


def span_names(state: Rehearsal) -> Outcome:
    """The backend's request spans, from its JSON logs: the monitors' trace.<span> metrics."""
    wanted = datadog_queries.APM_SPAN.removeprefix("trace.")
    names = set()
    for line in (state.scratch.path / "backend.log").read_text().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("message") == "request":
            names.add(entry.get("span"))
    if names != {wanted}:
        return Outcome(False, f"request spans {sorted(map(str, names))}, the monitors query {datadog_queries.APM_SPAN}")
    return Outcome(True, f"every request makes an {wanted} span ({datadog_queries.APM_SPAN}.* in the monitors)")


def failed_assertions(assertions: list[dict], answer: Answer) -> list[str]:
    """A synthetic API test's assertions (Datadog's statusCode, body, responseTime kinds) against one answer."""
    import jsonschema  # test dependencies (requirements-dev.txt): only rehearse evaluates assertions
    from jsonpath_ng import parse as jsonpath

    failures = []
    text = answer.body.decode(errors="replace")
    for a in assertions:
        kind, operator = a["type"], a["operator"]
        if kind == "statusCode" and operator == "is":
            ok = str(answer.status) == str(a["target"])
            shown = f"status {answer.status}, expected {a['target']}"
        elif kind == "responseTime" and operator == "lessThan":
            ok = answer.ms < float(a["target"])
            shown = f"{answer.ms:.0f} ms, expected < {a['target']} ms"
        elif kind == "body" and operator == "contains":
            ok = str(a["target"]) in text
            shown = f"body lacks {a['target']!r}"
        elif kind == "body" and operator == "validatesJSONPath":
            target = a["targetjsonpath"]
            found = (
                [m.value for m in jsonpath(target["jsonpath"]).find(answer.json())] if answer.json() is not None else []
            )
            ok = target["operator"] == "is" and any(str(v) == str(target["targetvalue"]) for v in found)
            shown = f"{target['jsonpath']} is {found[0] if found else 'missing'!r}, expected {target['targetvalue']!r}"
        elif kind == "body" and operator == "validatesJSONSchema":
            schema = json.loads(a["targetjsonschema"]["jsonschema"])
            errors = list(jsonschema.Draft7Validator(schema).iter_errors(answer.json()))
            ok = answer.json() is not None and not errors
            shown = f"body does not match the schema: {errors[0].message if errors else 'not JSON'}"
        else:
            ok, shown = False, f"assertion {kind} {operator} is not evaluated here"
        if not ok:
            failures.append(shown)
    return failures


def synthetics_pass(state: Rehearsal) -> Outcome:
    tests = state.program.of_type("datadog:index/syntheticsTest:SyntheticsTest")
    if not tests:
        return Outcome(True, "none: the stack defines no synthetic tests")
    site_url = state.program.outputs["site_url"][0].rstrip("/")
    http = Http(state.edge_url, state.edge_url, "", "", 10.0)
    failures, counted = [], 0
    for test in tests:
        url = test.inputs["requestDefinition"]["url"].replace(site_url, state.edge_url, 1)
        headers = test.inputs.get("requestHeaders") or {}
        token = state.tokens["api_token"] if "Authorization" in headers else None
        answer = http.fetch(test.inputs["requestDefinition"].get("method", "GET"), url, None, token)
        counted += len(test.inputs["assertions"])
        failures += [f"{test.inputs['name']}: {f}" for f in failed_assertions(test.inputs["assertions"], answer)]
    if failures:
        return Outcome(False, "; ".join(failures))
    return Outcome(True, f"{len(tests)} tests, {counted} assertions hold (status, JSON path, JSON schema, body, time)")


# --- phase 7: ops smoke ------------------------------------------------------------------------------------


def smoke_passes(state: Rehearsal) -> Outcome:
    http = Http(
        f"{state.edge_url}/api", f"{state.edge_url}/", state.tokens["api_token"], state.tokens["admin_token"], 10.0
    )
    undo = Undo(http)
    results = run_smoke(http, Limits(), undo)
    failed = [f"{r.name} ({r.detail})" for r in results if not r.passed]
    if failed or (left := undo.left_in_place()):
        return Outcome(False, "; ".join(failed + [f"NOT restored: {n}" for n in left]))
    latency = next(r.figure.strip() for r in results if r.name == "api_latency")
    return Outcome(True, f"all {len(results) - 1} checks pass through the edge, every flag as found; API p99 {latency}")


# --- running the steps ---------------------------------------------------------------------------------------


def run_steps(steps: list[Step], state: Rehearsal, progress: Callable[[int, int, str], None]) -> list[Criterion]:
    """Every step in order; a failed one does not stop those that do not depend on it, but an
    exception (the database went away, the backend did not start) fails the rest, each named."""
    criteria = []
    broken: str | None = None
    for index, (phase, name, text, step) in enumerate(steps, start=1):
        progress(index, len(steps), f"{PHASES[phase]}: {text}")
        if broken:
            criteria.append(Criterion(phase, name, False, 0.0, f"not run: {broken}"))
            continue
        try:
            outcome, seconds = timed(step, state)
        except Exception as error:  # a step's own one-line failure (ServerUnavailable, MigrationError...)
            broken = f"{name} failed"
            criteria.append(Criterion(phase, name, False, 0.0, " ".join(str(error).split())))
            continue
        criteria.append(Criterion(phase, name, outcome.passed, seconds, outcome.detail))
    return criteria


def phase_lines(criteria: list[Criterion]) -> list[tuple[str, bool, str]]:
    """One row per phase (its mark and time), its criteria below it."""
    rows = []
    for phase, title in PHASES.items():
        mine = [c for c in criteria if c.phase == phase]
        if not mine:
            continue
        label = f"phase {phase} {title}" if phase else title
        rows.append((label, all(c.passed for c in mine), f"{sum(c.seconds for c in mine):6.2f} s"))
        rows += [(f"  {c.name}", c.passed, f"{c.seconds:6.2f} s  {c.detail}") for c in mine]
    return rows


def rehearsal_steps(params: SeedParameters, program: BackgroundProgram) -> list[Step]:
    """The runbook's success criteria, phase by phase, in the order they run: the database
    phases while the program runs under mocks, then the plan, which the backend runs."""
    return [
        (1, "schema", "applying the migrations", migrate),
        (1, "login_roles", "creating the login roles", create_logins),
        (2, "mock_data", "loading the mock data", seed_step(params)),
        (2, "flag_settings", "applying the stack's flag settings", flag_settings),
        (2, "data_integrity", "verifying as the deploying login", verify_master),
        (2, "app_logins", "verifying as each application login", verify_logins),
        (0, "program", "waiting for the Pulumi program under mocks", program_step(program)),
        (0, "backups_planned", "reading the snapshots in the plan", backups_planned),
        (0, "application_planned", "reading the backend and site in the plan", application_planned),
        (3, "backend", "starting the release as its systemd unit does", start_backend),
        (4, "site", "serving the site through the CloudFront function", start_edge),
        (5, "backend_database", "checking the backend's database connection", backend_connection),
        (6, "synthetics", "evaluating the synthetic tests' assertions", synthetics_pass),
        (6, "custom_metrics", "listening for the DogStatsD metrics", metrics_emitted),
        (6, "trace_spans", "reading the request spans", span_names),
        (7, "smoke", "running ops smoke through the edge", smoke_passes),
    ]
