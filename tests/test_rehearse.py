"""``python -m ops rehearse`` end to end on this machine, and its plan (grouping, DOT) on its own."""

from __future__ import annotations

import glob
import json
import os
import pwd
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import psycopg
import pytest
from test_ops_stack_cli import one_line_error, run

from components.app.backend_boot import render_environment
from ops import rehearse_cli
from ops.cli import EXIT_INTERRUPTED, EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE
from ops.live.smoke import Answer
from ops.rehearsal import local_postgres, rehearse
from ops.rehearsal.local_postgres import OWNER_FILE, Scratch, ServerUnavailable, reap_leftovers
from ops.rehearsal.plan import (
    architecture_dot,
    component_edges,
    database_work,
    dependency_edges,
    plan_dot,
    plan_groups,
    plan_lines,
)
from ops.rehearsal.rehearse import Metric, failed_assertions, metrics_missing, parse_dogstatsd, read_environment_file

ROOT = Path(__file__).resolve().parent.parent
COMPONENTS = [
    ("swipesavvy:network:Network", "swipesavvy"),
    ("swipesavvy:database:Database", "swipesavvy-db"),
    ("swipesavvy:backend:BackendService", "swipesavvy-api"),
    ("swipesavvy:frontend:StaticSite", "swipesavvy-frontend"),
    ("swipesavvy:monitoring:AgentApiKey", "swipesavvy-datadog-agent"),
    ("swipesavvy:monitoring:Monitoring", "swipesavvy-monitoring"),
    ("pulumi:pulumi:Stack", "(stack)"),  # StackShape, which everything else waits for
]


def test_the_plan_groups_every_resource_under_its_top_level_component(staging):
    groups = plan_groups(staging)
    # In the order the mocked engine finished registering them, which need not be the program's.
    assert sorted(g.component for g in groups) == sorted(COMPONENTS)
    listed = [key for g in groups for key in g.resources]
    assert sorted(listed) == sorted((r.typ, r.name) for r in staging.resources if r.custom)  # each exactly once
    database = next(g for g in groups if g.component[0] == "swipesavvy:database:Database")
    assert ("aws:lambda/function:Function", "swipesavvy-db-operator-function") in database.resources  # nested
    lines = plan_lines(groups)
    assert "+ swipesavvy:network:Network  swipesavvy  (15 resources)" in lines
    assert any(line.startswith("    + aws:rds/instance:Instance") for line in lines)


def test_the_database_work_is_in_the_runbooks_order(staging):
    assert [name for _, name in database_work(staging)] == [
        "swipesavvy-db-schema", "swipesavvy-db-after-schema", "swipesavvy-db-mock-data",
        "swipesavvy-db-after-seed", "swipesavvy-db-backend", "swipesavvy-db-backend_b", "swipesavvy-db-analytics",
        "swipesavvy-db-monitor", "swipesavvy-db-monitor_b",
    ]  # fmt: skip


def test_the_dot_source_has_clusters_resources_dependencies_and_the_numbered_chain(staging, tmp_path):
    dot = plan_dot(staging, 'staging "plan"')
    assert dot.startswith("digraph plan {") and dot.count("subgraph cluster_") == len(COMPONENTS)
    assert 'label="staging \\"plan\\""' in dot
    assert '"aws:rds/instance:Instance::swipesavvy-db-postgres" [label="swipesavvy-db-postgres\\naws:rds' in dot
    edge = '"aws:rds/instance:Instance::swipesavvy-db-postgres" -> "pulumi-python:dynamic/db:DatabaseSchema::swipesavvy-db-schema";'
    assert edge in dot
    assert all(dep != key for dep, key in dependency_edges(staging))
    chain = [line for line in dot.splitlines() if "penwidth" in line]
    assert [line.rsplit('label="', 1)[1][:1] for line in chain] == ["1", "2", "3", "4", "5", "6", "7", "8"]
    assert chain[0].startswith('  "pulumi-python:dynamic/db:DatabaseSchema::swipesavvy-db-schema" -> "aws:rds/snapshot')
    svg = subprocess.run(["dot", "-Tsvg"], input=dot, capture_output=True, text=True, check=True).stdout
    assert "<svg" in svg and "MockDataSeed" in svg  # graphviz writes "-" as &#45;


PHASE_LINES = ["plan", "phase 1 database", "phase 2 mock data", "phase 3 backend", "phase 4 frontend",
               "phase 5 integration", "phase 6 monitoring", "phase 7 smoke"]  # fmt: skip
CRITERIA = [
    "program", "backups_planned", "application_planned", "database", "schema", "login_roles", "mock_data",
    "flag_settings", "data_integrity", "app_logins", "backend", "site", "backend_database", "synthetics",
    "custom_metrics", "trace_spans", "smoke",
]  # fmt: skip


def rehearsed(out: str) -> tuple[list[str], dict[str, str]]:
    """The phases marked ✓ and each criterion's line, from the output's checklist."""
    rows = out.split("runbook phases and success criteria:\n", 1)[1].splitlines()
    phases = [line[2:].rsplit(None, 2)[0].strip() for line in rows if line.startswith("✓ ") and "s  " not in line]
    criteria = {line.split()[1]: line for line in rows if line.startswith(("✓   ", "✗   "))}
    return phases, criteria


@pytest.mark.parametrize("stack", ["staging", "production"])
def test_rehearse_runs_all_seven_phases(capsys, tmp_path, stack):
    graph = tmp_path / "architecture.svg"
    code, out, err = run(capsys, "rehearse", "--stack", stack, "--scale", "0.05", "--graph", str(graph))
    assert code == EXIT_OK, out + err
    phases, criteria = rehearsed(out)
    assert phases == PHASE_LINES
    assert list(criteria) == CRITERIA and all(line.startswith("✓") for line in criteria.values())
    groups = [line for line in out.splitlines() if line.startswith("+ ")]  # components, and the stack's own
    assert groups[0].startswith("+ pulumi:pulumi:Stack  (stack)  (2 resources)")  # the shape and destroy guards
    assert f"resources in {len(groups)} groups, no error" in criteria["program"]
    preflight = out.split("preflight against a mocked new account (Lambda concurrency 10;", 1)[1].split("\n\n")[0]
    assert (
        preflight.splitlines()[-1]
        == {
            "staging": "account takes stack staging: all 12 items pass",
            "production": "the first pulumi up of stack production would fail: lambda reserved concurrency",
        }[stack]
    )
    assert "all 9 checks pass through the edge, every flag as found" in criteria["smoke"]
    assert "3 tests, 8 assertions hold" in criteria["synthetics"]
    assert f"with env:{stack}, service:swipesavvy-backend" in criteria["custom_metrics"]
    assert "as swipesavvy_backend over TLSv1." in criteria["backend_database"]
    if stack == "production":  # no mock data where the stack has none; its canary flag applied
        assert "none: swipesavvy:seed.enabled is false on stack production, as deployed" in criteria["mock_data"]
        assert "1 set, 1 changed: advanced_analytics" in criteria["flag_settings"]
    else:
        assert "rows at scale 0.05" in criteria["mock_data"]
    svg = graph.read_text()
    assert "<svg" in svg and "architecture" in svg and svg.count('class="cluster"') == len(groups)
    progress = [line for line in err.splitlines() if line.startswith("[")]
    texts = [line.split("] ", 1)[1] for line in progress]
    assert len(set(texts)) == len(texts) == len(CRITERIA) - 1  # every step named once (database runs first)
    assert "RuntimeDirWarning" not in err
    assert out.rstrip().endswith(f"all 17 checks passed on stack {stack}, all seven phases rehearsed on this machine")
    assert not _leftovers()


def _leftovers() -> list[str]:
    return [p for p in glob.glob(os.path.join(tempfile.gettempdir(), "swipesavvy-rehearse-*"))
            if Path(p, "owner.pid").is_file() and Path(p, "owner.pid").read_text() == str(os.getpid())]  # fmt: skip


def test_no_postgresql_is_one_line_and_exit_3(capsys, monkeypatch):
    def no_server(_scratch):
        raise ServerUnavailable("Debian's PostgreSQL server is not installed (fix: ./install.sh)")

    monkeypatch.setattr(rehearse, "start_postgres", no_server)
    monkeypatch.setattr(rehearse_cli, "BackgroundProgram", lambda _run: rehearse.BackgroundProgram(lambda: None))
    code, _, err = run(capsys, "rehearse")
    assert code == EXIT_UNAVAILABLE
    assert err.strip().splitlines()[-1] == (
        "error: cannot start the local PostgreSQL: Debian's PostgreSQL server is not installed (fix: ./install.sh)"
    )
    assert not _leftovers()


def test_an_interrupt_names_the_step_it_stopped_and_what_was_removed(capsys, monkeypatch):
    """Ctrl-C while the release is being unpacked: no transaction was in progress, and the
    message says what was interrupted instead of one."""

    def interrupted_unpacking(_state):
        raise KeyboardInterrupt  # as the tar the step runs is interrupted

    def steps_to_the_backend(params, program):
        steps = rehearse.rehearsal_steps(params, program)
        phase, name, text, _ = next(step for step in steps if step[1] == "backend")
        return [*[step for step in steps if step[1] == "schema"], (phase, name, text, interrupted_unpacking)]

    monkeypatch.setattr(rehearse_cli, "BackgroundProgram", lambda _run: rehearse.BackgroundProgram(lambda: None))
    monkeypatch.setattr(rehearse_cli, "rehearsal_steps", steps_to_the_backend)
    code, _, err = run(capsys, "rehearse", "--scale", "0.02")
    assert code == EXIT_INTERRUPTED
    assert err.strip().splitlines()[-1] == (
        'error: interrupted during "backend: starting the release as its systemd unit does": this run\'s local '
        "PostgreSQL, processes and scratch directory were removed; nothing outside this machine was touched"
    )
    assert not _leftovers()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["rehearse", "--stack", "nosuch"], "no stack config Pulumi.nosuch.yaml"),
        (["rehearse", "--scale", "0"], "--scale must be"),
        (["rehearse", "--graph", "x.bmp"], "--graph x.bmp: the file must end in .svg, .png, .pdf"),
        (["rehearse", "--graph-detail", "all"], "argument --graph-detail: invalid choice: 'all'"),
    ],
)
def test_bad_arguments_are_usage_errors(capsys, argv, message):
    """Refused before anything starts: one line, exit 2, nothing in /tmp."""
    code, out, err = run(capsys, *argv)
    assert code == EXIT_USAGE and message in one_line_error(err) and out == ""
    assert not _leftovers()


def test_graph_without_graphviz_is_a_usage_error(capsys, monkeypatch):
    monkeypatch.setattr(rehearse_cli.shutil, "which", lambda _: None)
    code, _, err = run(capsys, "rehearse", "--graph", "plan.svg")
    assert code == EXIT_USAGE and "Graphviz's dot, which is not on PATH" in one_line_error(err)


# --- nothing left running, nothing left in /tmp -------------------------------------------------


def _scratch_of(pid: int, purpose: str) -> Path | None:
    for path in glob.glob(os.path.join(tempfile.gettempdir(), f"swipesavvy-{purpose}-*")):
        owner = Path(path, OWNER_FILE)
        if owner.is_file() and owner.read_text() == str(pid):
            return Path(path)
    return None


# Only so that a marker never printed, or a process never gone, fails the test instead of
# hanging CI: each wait ends as soon as its condition holds, however busy the machine.
HANG_GUARD_S = 600.0


def _start_until(command: list[str], marker: str) -> tuple[subprocess.Popen, list[str]]:
    """Start ``python -m ops COMMAND`` and read its stderr until a line contains ``marker``."""
    process = subprocess.Popen(
        [sys.executable, "-m", "ops", *command], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    watchdog = threading.Timer(HANG_GUARD_S, process.kill)  # a marker never printed ends the test, not CI
    watchdog.daemon = True
    watchdog.start()
    seen = []
    for line in process.stderr:
        seen.append(line)
        if marker in line:
            watchdog.cancel()
            return process, seen
    process.kill()
    raise AssertionError(f"{marker!r} never printed: {''.join(seen)[-2000:]}")


def _gone(pids: list[int], path: Path) -> bool:
    deadline = time.monotonic() + HANG_GUARD_S
    while time.monotonic() < deadline:
        if not path.exists() and not any(psutil.pid_exists(p) and psutil.Process(p).status() != "zombie" for p in pids):
            return True
        time.sleep(0.2)
    return False


def test_sigterm_stops_the_rehearsal_its_servers_and_removes_its_directory():
    # Once the site is being served, PostgreSQL, the backend and the edge are all running.
    process, _ = _start_until(["rehearse", "--scale", "0.02"], "] monitoring: ")
    try:
        children = [c.pid for c in psutil.Process(process.pid).children(recursive=True)]
        scratch = _scratch_of(process.pid, "rehearse")
        assert scratch is not None and len(children) >= 3  # postgres, node (backend), node (edge), guardian
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=HANG_GUARD_S)
    finally:
        process.kill()
    assert process.returncode == EXIT_INTERRUPTED
    assert err.strip().splitlines()[-1].startswith("error: interrupted")
    assert _gone(children, scratch)


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM])
def test_a_killed_or_terminated_sandbox_leaves_nothing_running(how):
    process, _ = _start_until(["sandbox", "--scale", "0.02"], "starting a throwaway PostgreSQL")
    try:
        for line in process.stdout:
            if line.startswith("sandbox ready"):
                break
        children = [c.pid for c in psutil.Process(process.pid).children(recursive=True)]
        scratch = _scratch_of(process.pid, "sandbox")
        assert scratch is not None and children
        process.send_signal(how)
        out, _ = process.communicate(timeout=HANG_GUARD_S)
    finally:
        process.kill()
    if how == signal.SIGTERM:  # as Ctrl-C: the sandbox's normal end
        assert process.returncode == EXIT_OK and out.strip().splitlines()[-1] == "sandbox stopped, its data deleted"
    assert _gone(children, scratch)  # after SIGKILL, the guardian stops the server and removes it


def test_a_leftover_of_a_run_that_is_gone_is_removed_and_named(capsys):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    leftover = Path(tempfile.mkdtemp(prefix="swipesavvy-rehearse-"))
    (leftover / OWNER_FILE).write_text(str(dead.pid))
    (leftover / "data").mkdir()
    mine = Path(tempfile.mkdtemp(prefix="swipesavvy-rehearse-"))
    (mine / OWNER_FILE).write_text(str(os.getpid()))  # a run that is still going: kept
    try:
        assert reap_leftovers("rehearse") == [f"{leftover} (run {dead.pid})"]
        assert not leftover.exists() and mine.exists()
    finally:
        for path in (leftover, mine):
            subprocess.run(["rm", "-rf", str(path)], check=True)


def test_scratch_close_stops_its_processes_and_removes_the_directory():
    scratch = Scratch("rehearse")
    sleeper = scratch.start(["sleep", "60"], "sleep.log")
    scratch.close()
    assert sleeper.poll() is not None and not scratch.path.exists()


def test_the_superuser_password_is_a_file_only_during_initdb_and_only_for_the_servers_user(monkeypatch):
    """Other local users can read the CA certificate and nothing else of the scratch directory;
    the password file is the server user's alone, and gone once initdb has read it."""
    seen = {}
    real_run = local_postgres._run

    def run_and_look(command, what):
        if what == "initdb":
            pwfile = Path(command[command.index("--pwfile") + 1])
            seen["pwfile"] = (stat.S_IMODE(pwfile.stat().st_mode), pwfile.stat().st_uid)
            seen["root"] = stat.S_IMODE(pwfile.parent.stat().st_mode)
        real_run(command, what)

    monkeypatch.setattr(local_postgres, "_run", run_and_look)
    scratch = Scratch("rehearse")
    try:
        server = local_postgres.start_postgres(scratch)
        scratch.start(["true"], "another.log").wait()
        server_uid = pwd.getpwnam(local_postgres.SERVER_USER).pw_uid if os.geteuid() == 0 else os.geteuid()
        assert seen == {"pwfile": (0o600, server_uid), "root": 0o711}
        modes = {p.name: stat.S_IMODE(p.lstat().st_mode) for p in scratch.path.iterdir()}
        assert "pwfile" not in modes
        assert modes.pop("server.crt") == 0o644  # what clients verify the server against
        assert {name: mode for name, mode in modes.items() if mode & 0o077} == {}
        assert {"owner.pid", "server.key", "data", "postgres.log", "another.log"} <= set(modes)
        with psycopg.connect(server.dsn()) as conn:  # the password still logs in
            assert conn.execute("SELECT current_user").fetchone() == ("postgres",)
    finally:
        scratch.close()


# --- the architecture picture ---------------------------------------------------------------------


def test_the_architecture_is_the_components_their_main_resources_and_the_edges_between_them(staging):
    dot = architecture_dot(staging, "staging")
    groups = plan_groups(staging)
    assert dot.count("subgraph cluster_") == len(groups)
    nodes = [line for line in dot.splitlines() if line.startswith('    "') and "[label=" in line]
    assert len(nodes) <= 30  # readable on one screen (the full plan has over 120)
    assert '[label="datadog Monitor x10"]' in dot and '[label="rds Instance"]' in dot
    names = {g.component: i for i, g in enumerate(groups)}
    edges = {(names[a], names[b]) for a, b in component_edges(staging)}
    network, database, backend, site, monitoring = (
        names[next(g.component for g in groups if g.component[0] == f"swipesavvy:{kind}")]
        for kind in ("network:Network", "database:Database", "backend:BackendService", "frontend:StaticSite",
                     "monitoring:Monitoring")
    )  # fmt: skip
    assert {(network, database), (database, backend), (backend, site), (site, monitoring)} <= edges
    svg = subprocess.run(["dot", "-Tsvg"], input=dot, capture_output=True, text=True, check=True).stdout
    width = int(float(svg.split('width="', 1)[1].split("pt", 1)[0]))
    assert width < 1600  # one screen wide, where the full plan was 10,000 points
    # The stack's own guards are named in their box, and draw no edges: they touch every component.
    stack = names[next(g.component for g in groups if g.component[0] == "pulumi:pulumi:Stack")]
    assert f'"{stack}:0" [label="stack StackShape swipesavvy-shape"];' in dot
    assert f'"{stack}:1" [label="random RandomId swipesavvy-destroy-guard"];' in dot
    touching = (f"ltail=cluster_{stack},", f"lhead=cluster_{stack}]")
    assert not [line for line in dot.splitlines() if any(end in line for end in touching)]


# --- the pieces rehearse evaluates with ----------------------------------------------------------------


def test_synthetic_assertions_are_evaluated_as_datadog_states_them(staging):
    tests = {r.inputs["name"].split("] ", 1)[1]: r.inputs["assertions"] for r in staging.of_type(
        "datadog:index/syntheticsTest:SyntheticsTest")}  # fmt: skip
    health, features, site = tests["API health"], tests["Feature flags served (10)"], tests["Reporting dashboard loads"]
    good = Answer(200, b'{"status": "healthy"}', 12.0)
    assert failed_assertions(health, good) == []
    assert failed_assertions(health, Answer(200, b'{"status": "degraded"}', 350.0)) == [
        "$.status is 'degraded', expected 'healthy'",
        "350 ms, expected < 300 ms",
    ]
    assert failed_assertions(health, Answer(503, b"<html>", 5.0)) == [
        "status 503, expected 200",
        "$.status is 'missing', expected 'healthy'",
    ]
    assert failed_assertions(features, Answer(200, json.dumps([{}] * 10).encode(), 5.0)) == []
    assert failed_assertions(features, Answer(200, json.dumps({"flags": [{}] * 10}).encode(), 5.0)) == []
    assert failed_assertions(features, Answer(200, json.dumps([{}] * 9).encode(), 5.0)) == [
        "body does not match the schema: [{}, {}, {}, {}, {}, {}, {}, {}, {}] is not valid under any of the given schemas"
    ]
    assert failed_assertions(site, Answer(200, b"<h1>Other</h1>", 5.0)) == ["body lacks 'Reporting Dashboard'"]
    assert failed_assertions([{"type": "header", "operator": "is", "target": "x"}], good) == [
        "assertion header is is not evaluated here"
    ]


def test_dogstatsd_lines_are_parsed_with_their_tags():
    assert parse_dogstatsd("swipesavvy.ingestion.records:3|c|@0.5|#env:staging,service:swipesavvy-backend") == Metric(
        "swipesavvy.ingestion.records", "c", frozenset({"env:staging", "service:swipesavvy-backend"})
    )
    assert parse_dogstatsd("garbage") is None
    lines = ["swipesavvy.feature_flags.check_latency:1.5|d|#env:staging,service:swipesavvy-backend"]
    assert metrics_missing(lines, "staging") == [
        "swipesavvy.ingestion.records (c, env:staging, service:swipesavvy-backend)"
    ]
    wrong_type = ["swipesavvy.feature_flags.check_latency:1.5|h|#env:staging,service:swipesavvy-backend"]
    assert len(metrics_missing(wrong_type, "staging")) == 2  # a histogram is not the distribution p95 reads


def test_the_env_file_is_read_as_systemd_and_bash_read_it(tmp_path):
    values = {"A": 'p4ss "w" $(x) `id` \\n \\ #c =x', "B": ""}
    text = render_environment(
        json.dumps({"host": "h", "port": 1, "dbname": "d", "username": "u", "password": values["A"]}), "u", {}, "", ""
    )
    parsed = read_environment_file(text)
    assert parsed["DB_PASSWORD"] == values["A"] and parsed["SENTRY_DSN"] == ""
    env_file = tmp_path / "env"
    env_file.write_text(text)
    dumped = subprocess.run(
        ["bash", "-c", 'set -a; . "$1"; printf "%s" "$DB_PASSWORD"', "_", str(env_file)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert dumped == values["A"]
