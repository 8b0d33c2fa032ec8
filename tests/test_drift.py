"""ops/live/drift.py: from ``pulumi preview --refresh --json`` (Pulumi's PreviewDigest, pulumi/pulumi
sdk/pkg/display/json.go) to the drifted resources and properties, the lines and the GitHub issue;
and ``python -m ops drift`` end to end against a fake ``pulumi`` first on PATH (tests/fake_pulumi.py
replays a recorded preview and the stack's outputs, and exits as the real CLI does)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fake_pulumi import put_on_path

from ops import cli, stack_target
from ops.live.drift import (
    DriftReport,
    changed_paths,
    drift_lines,
    drifted_resources,
    issue_body,
    issue_title,
    masked,
    path_segments,
    preview_failed,
    report_document,
    shown,
    unchanged_count,
)

STACK = "staging"
PROJECT = "swipesavvy"
PROVIDER_PICKLE = "gASVOAAAAAAAAACMGmNvbXBvbmVudHMuZmVhdHVyZV9mbGFncw=="  # stands in for the pickled provider
CONNECTION = {"host": "db.internal", "port": 5432, "dbname": "swipesavvy_staging", "user": "swipesavvy_admin"}
FLAGS_TYPE = "pulumi-python:dynamic/db:FeatureFlagSettings"
MONITOR_TYPE = "datadog:index/monitor:Monitor"
RULE_TYPE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
DATABASE, MONITORING = "swipesavvy:database:Database", "swipesavvy:monitoring:Monitoring"


def urn(parent: str, typ: str, name: str) -> str:
    return f"urn:pulumi:{STACK}::{PROJECT}::pulumi:pulumi:Stack${parent}${typ}::{name}"


def state(typ: str, name: str, parent: str, inputs: dict, outputs: dict | None = None) -> dict:
    """A resource as ``apitype.ResourceV3`` serializes it in the preview's old/new state."""
    return {
        "urn": urn(parent, typ, name),
        "custom": True,
        "type": typ,
        "inputs": inputs,
        "outputs": outputs if outputs is not None else inputs,
        "parent": f"urn:pulumi:{STACK}::{PROJECT}::pulumi:pulumi:Stack${parent}::swipesavvy-db",
    }


def step(op: str, old: dict | None, new: dict | None, detailed=None, reasons=None) -> dict:
    """One PreviewStep: ``diffReasons`` and ``detailedDiff`` as the provider gave them (none: null)."""
    one = old or new
    out = {"op": op, "urn": one["urn"], "provider": "", "detailedDiff": detailed}
    out |= {"oldState": old} if old else {}
    out |= {"newState": new} if new else {}
    out |= {"diffReasons": reasons} if reasons else {}
    return out


def digest(*steps: dict, same: int = 57) -> dict:
    summary = {"same": same}
    for s in steps:
        summary[s["op"]] = summary.get(s["op"], 0) + 1
    return {"config": {"aws:region": "us-east-1"}, "steps": list(steps), "duration": 41_000_000_000} | {
        "changeSummary": summary
    }


def flag_inputs(enabled: bool, rollout: int) -> dict:
    return {
        "__provider": PROVIDER_PICKLE,
        "actor": f"pulumi:{STACK}",
        "connection": CONNECTION,
        "database_id": "swipesavvy-staging-db",
        "flags": {
            "community_feed": {"enabled": enabled, "rollout_percentage": rollout},
            "dark_mode": {"enabled": True, "rollout_percentage": 100},
        },
        "operator": "arn:aws:lambda:us-east-1:111122223333:function:swipesavvy-staging-db-operator",
    }


# Someone switched community_feed off in the database. The dynamic provider's read returns the
# flags as the database holds them (as inputs too) and its diff names no keys: the engine's
# PreviewStep then carries neither diffReasons nor a detailedDiff.
FLAG_STEP = step(
    "update",
    state(FLAGS_TYPE, "swipesavvy-db-feature-flags", DATABASE, flag_inputs(False, 25)),
    state(FLAGS_TYPE, "swipesavvy-db-feature-flags", DATABASE, flag_inputs(True, 25)),
)


def monitor(critical: str, message: str = "CPU above {{threshold}}% for 10 minutes") -> dict:
    inputs = {
        "name": "[swipesavvy staging] Database CPU high",
        "type": "query alert",
        "query": "avg(last_10m):avg:aws.rds.cpuutilization{dbinstanceidentifier:swipesavvy-staging} > 90",
        "message": message,
        "monitorThresholds": {"critical": critical, "warning": "75"},
        "priority": "2",
    }
    return inputs


# Someone raised the CPU monitor's critical threshold in Datadog's UI: the bridged provider
# gives a detailed diff against the refreshed outputs (inputDiff false).
MONITOR_STEP = step(
    "update",
    state(MONITOR_TYPE, "swipesavvy-monitoring-db-cpu", MONITORING, monitor("95"), monitor("95") | {"id": "1234"}),
    state(MONITOR_TYPE, "swipesavvy-monitoring-db-cpu", MONITORING, monitor("90")),
    detailed={"monitorThresholds.critical": {"kind": "update", "inputDiff": False}},
    reasons=["monitorThresholds"],
)


def rule(cidr: str) -> dict:
    return {
        "securityGroupId": "sg-0db",
        "ipProtocol": "tcp",
        "fromPort": 5432,
        "toPort": 5432,
        "cidrIpv4": cidr,
        "description": "PostgreSQL from the Pulumi deploy runner",
    }


# Someone opened the deploy runner's PostgreSQL rule to the world, and deleted the backend's rule.
RULE_STEP = step(
    "update",
    state(RULE_TYPE, "swipesavvy-db-from-deploy-runner-0", DATABASE, rule("0.0.0.0/0")),
    state(RULE_TYPE, "swipesavvy-db-from-deploy-runner-0", DATABASE, rule("10.40.0.0/16")),
    detailed={"cidrIpv4": {"kind": "update", "inputDiff": False}},
    reasons=["cidrIpv4"],
)
DELETED_RULE_STEP = step(
    "create",
    None,
    state(RULE_TYPE, "swipesavvy-db-from-backend", DATABASE, rule("10.40.0.0/16")),
)

FLAG_LINE = f"~ swipesavvy-db-feature-flags [{FLAGS_TYPE}] flags.community_feed.enabled: false (declared true)"
MONITOR_LINE = f'~ swipesavvy-monitoring-db-cpu [{MONITOR_TYPE}] monitorThresholds.critical: "95" (declared "90")'
RULE_LINES = [
    f'~ swipesavvy-db-from-deploy-runner-0 [{RULE_TYPE}] cidrIpv4: "0.0.0.0/0" (declared "10.40.0.0/16")',
    f"+ swipesavvy-db-from-backend [{RULE_TYPE}] is missing: deleted outside the stack (pulumi up creates it again)",
]


def report(*steps: dict, **extra) -> DriftReport:
    recorded = digest(*steps)
    return DriftReport(STACK, tuple(drifted_resources(recorded)), unchanged_count(recorded), **extra)


# --- reading the preview ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("steps", "lines"),
    [
        ([FLAG_STEP], [FLAG_LINE]),
        ([MONITOR_STEP], [MONITOR_LINE]),
        ([RULE_STEP, DELETED_RULE_STEP], RULE_LINES),
    ],
    ids=["flag", "monitor-threshold", "security-group-rule"],
)
def test_each_drifted_property_is_one_line(steps, lines):
    assert drift_lines(report(*steps)) == lines


def test_steps_that_change_nothing_are_not_drift():
    stack = {"op": "same", "urn": f"urn:pulumi:{STACK}::{PROJECT}::pulumi:pulumi:Stack::{PROJECT}-{STACK}"}
    refreshed = FLAG_STEP | {"op": "refresh"}
    reads = [MONITOR_STEP | {"op": op} for op in ("same", "read", "read-discard", "read-replacement")]
    clean = report(stack, refreshed, *reads)
    assert (clean.resources, clean.drifted) == ((), False)


def test_a_replacement_is_one_resource_with_its_properties():
    changed = RULE_STEP | {"detailedDiff": {"fromPort": {"kind": "update-replace", "inputDiff": False}}}
    old, new = changed["oldState"], changed["newState"]
    new = new | {"inputs": new["inputs"] | {"fromPort": 5433}}
    steps = [step(op, old, new, changed["detailedDiff"]) for op in ("create-replacement", "replace", "delete-replaced")]
    (resource,) = drifted_resources(digest(*steps))
    assert resource.op == "replace"
    assert drift_lines(report(*steps)) == [
        f"+- swipesavvy-db-from-deploy-runner-0 [{RULE_TYPE}] fromPort: 5432 (declared 5433)"
    ]


def test_secrets_are_masked_in_every_form():
    envelope = {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", "plaintext": '"hunter2"'}
    assert masked({"a": [envelope], "b": "[secret]"}) == {"a": ["[secret]"], "b": "[secret]"}
    old = state(MONITOR_TYPE, "swipesavvy-monitoring-db-cpu", MONITORING, monitor("90") | {"apiKey": envelope})
    new = state(MONITOR_TYPE, "swipesavvy-monitoring-db-cpu", MONITORING, monitor("90") | {"apiKey": "[secret]"})
    secret_step = step("update", old, new, {"apiKey": {"kind": "update", "inputDiff": True}})
    (line,) = drift_lines(report(secret_step))
    assert line == f'~ swipesavvy-monitoring-db-cpu [{MONITOR_TYPE}] apiKey: "[secret]" (declared "[secret]")'
    assert "hunter2" not in json.dumps(report_document(report(secret_step)))


def test_long_values_are_cut_and_stay_on_one_line():
    text = shown("line one\n" + "x" * 300)
    assert len(text) == 120 and text.endswith("…") and "\n" not in text


@pytest.mark.parametrize(
    ("path", "segments"),
    [
        ("flags.community_feed.enabled", ["flags", "community_feed", "enabled"]),
        ('tags["kubernetes.io/role"]', ["tags", "kubernetes.io/role"]),
        ("ingress[0].cidrBlocks[1]", ["ingress", 0, "cidrBlocks", 1]),
    ],
)
def test_property_paths_as_pulumi_writes_them(path, segments):
    assert path_segments(path) == segments


def test_changed_leaves_are_found_under_objects_and_lists():
    old = {"a": {"b": 1, "c": [1, 2]}, "d": 1, "__provider": "x"}
    new = {"a": {"b": 2, "c": [1, 3]}, "e": 1, "__provider": "y", "tags": {"k.v": 1}}
    assert list(changed_paths(old, new)) == ["a.b", "a.c[1]", "d", "e", "tags"]
    assert list(changed_paths({"tags": {"k.v": 1}}, {"tags": {"k.v": 2}})) == ['tags["k.v"]']


def test_a_failed_preview_names_its_own_error():
    diagnostics = [
        {"message": "warning: a deprecated argument\n", "severity": "warning"},
        {
            "urn": FLAG_STEP["urn"],
            "message": "error: AccessDeniedException: lambda:InvokeFunction\n  at ...",
            "severity": "error",
        },
    ]
    assert preview_failed({"diagnostics": diagnostics}) == ["AccessDeniedException: lambda:InvokeFunction"]
    assert preview_failed(None) == []


# --- the issue --------------------------------------------------------------------------------


def test_the_issue_lists_every_difference_then_how_to_restore_or_adopt():
    drift = report(
        FLAG_STEP,
        MONITOR_STEP,
        DELETED_RULE_STEP,
        failed_checks=(("flags_match", "community_feed: enabled false, recorded true"),),
        notes=("the database checks (verify): no reader",),
    )
    assert issue_title("acme/staging") == issue_title(STACK) == "Drift in staging"
    assert issue_body(drift).splitlines() == [
        "`python -m ops drift --stack staging` found that stack `staging` no longer matches what it declares.",
        "",
        "| resource | type | property | found | declared |",
        "| --- | --- | --- | --- | --- |",
        f"| `swipesavvy-db-feature-flags` | `{FLAGS_TYPE}` | `flags.community_feed.enabled` | `false` | `true` |",
        f'| `swipesavvy-monitoring-db-cpu` | `{MONITOR_TYPE}` | `monitorThresholds.critical` | `"95"` | `"90"` |',
        f"| `swipesavvy-db-from-backend` | `{RULE_TYPE}` | | is missing: deleted outside the stack "
        "(pulumi up creates it again) | |",
        "",
        "Database checks that failed (`python -m ops verify --stack staging`):",
        "",
        "- `flags_match`: `community_feed: enabled false, recorded true`",
        "",
        "Not checked: the database checks (verify): no reader",
        "",
        "**Restore** what the stack declares (a merge to main deploys the same):",
        "",
        "```",
        "pulumi up --stack staging",
        "```",
        "",
        "**Or adopt** the change: make `Pulumi.staging.yaml` (or the program) declare what was found, in a pull "
        "request; its preview then shows no change for these resources.",
        "",
        "```",
        "pulumi config set --path 'swipesavvy:featureFlags.community_feed.enabled' false --stack staging",
        "```",
        "",
        "This issue is updated by every drift run that finds drift and closed by the first clean one.",
    ]


def test_table_cells_cannot_break_the_table():
    edited = monitor("90", message="a | b `c`")
    old = state(MONITOR_TYPE, "swipesavvy-monitoring-db-cpu", MONITORING, edited)
    new = state(MONITOR_TYPE, "swipesavvy-monitoring-db-cpu", MONITORING, monitor("90"))
    body = issue_body(report(step("update", old, new, {"message": {"kind": "update", "inputDiff": False}})))
    assert f"| `swipesavvy-monitoring-db-cpu` | `{MONITOR_TYPE}` | `message` | `\"a \\| b 'c'\"` |" in body


# --- python -m ops drift, end to end against a fake `pulumi` -----------------------------------

READER = "arn:aws:lambda:us-east-1:111122223333:function:swipesavvy-staging-db-reader"
OPERATOR = "arn:aws:lambda:us-east-1:111122223333:function:swipesavvy-staging-db-operator"
SECRETS = "arn:aws:secretsmanager:us-east-1:111122223333:secret:"


def outputs(**extra) -> dict:
    connection = CONNECTION | {"sslmode": "verify-full", "password_secret_arn": f"{SECRETS}master"}
    apps = {login: f"{SECRETS}{login}" for login in ("swipesavvy_backend", "swipesavvy_analytics")}
    return {"db_connection": connection, "db_app_secret_arns": apps} | extra


class Fake:
    def __init__(self, directory, monkeypatch):
        self.preview, self.outputs = directory / "preview.json", directory / "outputs.json"
        self.log = directory / "pulumi-calls.jsonl"
        monkeypatch.setenv("FAKE_PULUMI_PREVIEW", str(self.preview))
        monkeypatch.setenv("FAKE_PULUMI_OUTPUTS", str(self.outputs))
        monkeypatch.setenv("FAKE_PULUMI_LOG", str(self.log))
        self.record(outputs=outputs())

    def record(self, *steps: dict, outputs: dict | None = None) -> None:
        self.preview.write_text(json.dumps(digest(*steps), indent=4))
        if outputs is not None:
            self.outputs.write_text(json.dumps(outputs))

    def calls(self) -> list[list[str]]:
        return [json.loads(line)["args"] for line in self.log.read_text().splitlines()]


@pytest.fixture
def pulumi(tmp_path, monkeypatch):
    put_on_path(tmp_path / "bin", monkeypatch)
    return Fake(tmp_path, monkeypatch)


@pytest.fixture
def operations(monkeypatch):
    """The database operations ``verify`` runs, recorded instead of run: (function ARN, operation, user)."""
    calls: list[tuple] = []

    def run_through(connection, operator_arn, operation, args, **_):
        calls.append((operator_arn, operation, connection["user"]))
        return {"results": [{"name": "flags_match", "passed": False, "detail": "community_feed differs"}]}

    monkeypatch.setattr(stack_target, "run_through", run_through)
    return calls


def drift(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(["drift", "--stack", STACK, *argv])
    out, err = capsys.readouterr()
    return code, out, err


def error_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


DRIFT_ERROR = (
    "error: stack staging: drift: {} (fix: `pulumi up --stack staging` restores what it declares; "
    "or adopt the change in Pulumi.staging.yaml or the program)"
)
NOT_VERIFIED = (
    "not checked: the database checks (verify): stack 'staging' has no db_reader_arn output, and drift detection "
    "does not use the operator that can change the database (fix: `pulumi up` with a program that exports "
    "db_reader_arn; the refresh above still read the flags, seed, logins and schema)"
)
LOGINS_NOT_CHECKED = (
    "not checked: the application logins' access checks (they probe writes; `python -m ops verify --stack staging` "
    "with deploy credentials runs them)"
)


@pytest.mark.parametrize(
    ("steps", "lines", "what"),
    [
        ([FLAG_STEP], [FLAG_LINE], "1 resource(s) differ from the program"),
        ([MONITOR_STEP], [MONITOR_LINE], "1 resource(s) differ from the program"),
        ([RULE_STEP, DELETED_RULE_STEP], RULE_LINES, "2 resource(s) differ from the program"),
    ],
    ids=["flag", "monitor-threshold", "security-group-rule"],
)
def test_drift_is_one_line_per_property_and_exit_7(pulumi, capsys, operations, steps, lines, what):
    pulumi.record(*steps, outputs=outputs(db_operator_arn=OPERATOR))
    code, out, err = drift(capsys)
    assert code == cli.EXIT_DRIFT == 7
    assert out.splitlines() == [*lines, NOT_VERIFIED, LOGINS_NOT_CHECKED, f"stack staging: drift: {what}"]
    assert error_line(err) == DRIFT_ERROR.format(what)
    preview, output = pulumi.calls()
    assert preview == ["preview", "--refresh", "--expect-no-changes", "--json", "--non-interactive", "--stack", STACK]
    assert output[:2] == ["stack", "output"] and "--show-secrets=false" in output
    assert operations == []  # never through the operator that can change the database


def test_a_clean_run_exits_0(pulumi, capsys, monkeypatch):
    pulumi.record(outputs=outputs())  # a direct-access stack: verify connects itself
    passed = {"results": [{"name": "flags_match", "passed": True, "detail": "ok"}]}
    monkeypatch.setattr(stack_target, "run_through", lambda connection, operator_arn, *_, **__: operator_arn or passed)
    code, out, err = drift(capsys)
    assert (code, out.splitlines(), err.strip().splitlines()[-1]) == (
        0,
        [LOGINS_NOT_CHECKED, "stack staging: no drift (57 resources as declared)"],
        "reading stack staging back: pulumi preview --refresh --expect-no-changes --json --non-interactive "
        "--stack staging",
    )


def test_verify_runs_through_the_read_only_function_and_its_failures_are_drift(pulumi, capsys, operations):
    pulumi.record(outputs=outputs(db_operator_arn=OPERATOR, db_reader_arn=READER))
    code, out, err = drift(capsys)
    assert code == 7
    assert out.splitlines() == [
        "✗ database check flags_match: community_feed differs",
        LOGINS_NOT_CHECKED,
        "stack staging: drift: 1 database check(s) failed",
    ]
    assert operations == [(READER, "verify", "swipesavvy_admin")]  # only the read, only through the reader


def test_json_carries_the_report_and_the_issue(pulumi, capsys, operations):
    pulumi.record(FLAG_STEP, outputs=outputs(db_operator_arn=OPERATOR))
    code, out, _ = drift(capsys, "--json")
    document = json.loads(out)
    assert code == 7 and document["drift"] is True and document["lines"] == [FLAG_LINE]
    assert document["resources"] == [
        {
            "urn": FLAG_STEP["urn"],
            "type": FLAGS_TYPE,
            "name": "swipesavvy-db-feature-flags",
            "op": "update",
            "properties": [{"path": "flags.community_feed.enabled", "found": "false", "declared": "true"}],
        }
    ]
    assert document["issue"]["title"] == "Drift in staging"
    assert document["issue"]["body"] == issue_body(report(FLAG_STEP, notes=tuple(document["notes"])))


def test_the_readme_example_is_what_the_command_prints(pulumi, capsys, monkeypatch):
    readme = (Path(__file__).resolve().parent.parent / "docs" / "drift.md").read_text()
    example = re.search(r"<!-- drift-example -->\n```\n(.*?)```", readme, re.DOTALL).group(1)
    pulumi.record(FLAG_STEP, MONITOR_STEP, RULE_STEP, DELETED_RULE_STEP, outputs=outputs(db_reader_arn=READER))
    passed = {"results": [{"name": "flags_match", "passed": True, "detail": "ok"}]}
    monkeypatch.setattr(stack_target, "run_through", lambda *_, **__: passed)
    code, out, _ = drift(capsys)
    assert (code, out) == (7, example)


def test_a_failed_preview_is_not_a_verdict(pulumi, capsys, monkeypatch, operations):
    monkeypatch.setenv("FAKE_PULUMI_FAIL", "preview")
    monkeypatch.setenv("FAKE_PULUMI_FAIL_REASON", "AccessDenied: not authorized to perform: rds:DescribeDBInstances")
    code, out, err = drift(capsys)
    assert (code, out) == (1, "")
    assert error_line(err) == (
        "error: `pulumi preview --refresh --stack staging` failed, so drift is unknown: "
        "AccessDenied: not authorized to perform: rds:DescribeDBInstances"
    )


def test_without_pulumi_on_path_it_says_so(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    code, _, err = drift(capsys)
    assert code == 2
    assert error_line(err) == (
        "error: this command runs the Pulumi CLI, which is not on PATH "
        "(fix: install it, https://www.pulumi.com/docs/install/)"
    )
