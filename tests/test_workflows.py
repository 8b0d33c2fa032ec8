"""The GitHub workflows (.github/workflows): actionlint and zizmor (both from PyPI, in the
virtualenv) pass them, and the change-control promises hold: every action pinned by commit,
no job with more permission than it needs, AWS by OIDC only, the policy pack on every
preview and update, and one update per stack at a time."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from installed_tools import require_tool

from policy.policies import POLICIES

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
PINNED = re.compile(r"^[\w.-]+/[\w.-]+@[0-9a-f]{40}$")


def _load(path: Path) -> dict:
    # YAML 1.1 reads the key `on` as True; GitHub reads it as "on".
    return {("on" if key is True else key): value for key, value in yaml.safe_load(path.read_text()).items()}


def _jobs() -> list[tuple[str, str, dict]]:
    return [(path.name, name, job) for path in WORKFLOWS for name, job in _load(path)["jobs"].items()]


def _steps() -> list[dict]:
    return [step for _, _, job in _jobs() for step in job.get("steps", [])]


def _run(tool: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([require_tool(tool), *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_actionlint_passes():
    done = _run("actionlint", "-color=false")
    assert done.returncode == 0, done.stdout + done.stderr


def test_zizmor_passes():
    done = _run("zizmor", "--offline", "--no-progress", ".github/workflows")
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_action_is_pinned_by_commit():
    external = [s["uses"] for s in _steps() if "uses" in s and not s["uses"].startswith("./")]
    assert external and all(PINNED.match(uses) for uses in external), external


def test_no_default_permissions_and_least_per_job():
    assert all(_load(path)["permissions"] == {} for path in WORKFLOWS)
    for workflow, name, job in _jobs():
        granted = job.get("permissions", {})
        assert granted, f"{workflow}:{name} has no permissions block"
        assert set(granted.values()) <= {"read", "write"}
        if (workflow, name) == ("drift.yml", "report"):  # files the drift issue; reads no code, touches no cloud
            assert granted == {"issues": "write"}
            continue
        assert granted.get("contents") == "read"
        writes = {scope for scope, level in granted.items() if level == "write"}
        assert writes <= {"id-token", "pull-requests"}, f"{workflow}:{name} writes {writes}"


def test_aws_by_oidc_role_only_and_pulumi_by_token_secret():
    text = "\n".join(path.read_text() for path in WORKFLOWS)
    assert "aws-access-key-id" not in text and "AWS_SECRET_ACCESS_KEY" not in text
    aws = [s["with"] for s in _steps() if s.get("uses", "").startswith("aws-actions/configure-aws-credentials@")]
    assert aws and all(w["role-to-assume"].startswith("${{ vars.") for w in aws)
    # pulumi/actions without a command only installs the CLI; the step that runs it gets the token.
    pulumi = [s for s in _steps() if s.get("uses", "").startswith("pulumi/actions@") and "command" in s.get("with", {})]
    assert pulumi
    assert all(s["env"]["PULUMI_ACCESS_TOKEN"] == "${{ secrets.PULUMI_ACCESS_TOKEN }}" for s in pulumi)


def test_pull_requests_test_then_preview_both_stacks_with_the_policy_pack():
    jobs = _load(ROOT / ".github/workflows/pull-request.yml")["jobs"]
    assert "bash .ci/run" in [s.get("run") for s in jobs["test"]["steps"]]
    preview = jobs["preview"]
    assert preview["needs"] == "test" and preview["strategy"]["matrix"]["stack"] == ["staging", "production"]
    (action,) = [s["with"] for s in preview["steps"] if s.get("uses", "").startswith("pulumi/actions@")]
    assert action["command"] == "preview"
    assert (action["refresh"], action["comment-on-pr"], action["policyPacks"]) == (True, True, "policy")
    install = next(s["run"] for s in preview["steps"] if "pip install" in s.get("run", ""))
    assert "requirements.txt" in install and "policy/requirements.txt" in install


def test_pull_request_previews_may_only_read_the_databases():
    """The preview's refresh reads through the read-only database function; with
    SWIPESAVVY_DB_READ_ONLY the program refuses any change before invoking anything. Only
    previews: the deploy workflow changes the databases."""
    jobs = _load(ROOT / ".github/workflows/pull-request.yml")["jobs"]
    (step,) = [s for s in jobs["preview"]["steps"] if s.get("uses", "").startswith("pulumi/actions@")]
    assert step["env"]["SWIPESAVVY_DB_READ_ONLY"] == "true"
    deploys = [_load(ROOT / ".github/workflows" / name) for name in ("deploy.yml", "pulumi-up.yml")]
    assert all("SWIPESAVVY_DB_READ_ONLY" not in json.dumps(workflow) for workflow in deploys)


def _commands(steps: list[dict]) -> list[dict]:
    """The pulumi/actions steps that run a command (without one, the action installs the CLI)."""
    return [s["with"] for s in steps if s.get("uses", "").startswith("pulumi/actions@") and "with" in s]


@pytest.mark.parametrize("job", ["review-stack-up", "review-stack-down"])
def test_review_stacks_only_when_switched_on_with_generated_settings(job):
    review = _load(ROOT / ".github/workflows/pull-request.yml")["jobs"][job]
    assert "vars.REVIEW_STACKS == 'true'" in review["if"]
    (action,) = _commands(review["steps"])
    assert action["stack-name"] == "${{ vars.PULUMI_ORG }}/pr-${{ github.event.pull_request.number }}"
    assert action["command"] == ("up" if job.endswith("up") else "destroy")
    # The settings come from the tested generator (tests/test_review_config.py), fed staging's outputs.
    (generate,) = [s for s in review["steps"] if "review-config" in s.get("run", "")]
    assert generate["run"].splitlines() == [
        'pulumi stack output --stack "${PULUMI_ORG}/staging" --json >staging-outputs.json',
        '.venv/bin/python -m ops review-config --pr "${PR_NUMBER}" --staging-outputs staging-outputs.json',
    ]
    assert "sed " not in yaml.safe_dump(review)


def test_ci_destroys_only_review_stacks_and_leaves_no_snapshot():
    """Staging and production are never destroyed from CI (README "What `pulumi destroy` keeps")."""
    destroys = [
        (name, job) for _, name, job in _jobs() for a in _commands(job.get("steps", [])) if a["command"] == "destroy"
    ]
    assert [name for name, _ in destroys] == ["review-stack-down"]
    assert not any(re.search(r"pulumi\s+(destroy|stack\s+rm)", s.get("run", "")) for s in _steps())
    ((_, job),) = destroys
    guard, *rest = job["steps"]
    assert job["env"] == {"STACK": "pr-${{ github.event.pull_request.number }}"}
    assert 'if [[ ! "${STACK}" =~ ^pr-[1-9][0-9]*$ ]]; then' in guard["run"] and "exit 1" in guard["run"]
    script = subprocess.run(["bash", "-c", guard["run"]], env={"STACK": "staging"}, capture_output=True, text=True)
    assert script.returncode == 1
    assert script.stdout == "::error::refusing to destroy staging: CI destroys only review stacks (pr-<number>)\n"
    assert subprocess.run(["bash", "-c", guard["run"]], env={"STACK": "pr-12"}).returncode == 0
    assert (
        rest[-1]["run"]
        == '.venv/bin/python -m ops snapshots prune --stack "${STACK}" --keep 0 --yes --region us-east-1'
    )


def test_merges_deploy_staging_then_production_in_protected_environments_one_at_a_time():
    deploy = _load(ROOT / ".github/workflows/deploy.yml")
    assert deploy["on"] == {"push": {"branches": ["main"]}}
    jobs = deploy["jobs"]
    assert (jobs["staging"]["needs"], jobs["production"]["needs"]) == ("test", "staging")
    assert [jobs[s]["with"]["stack"] for s in ("staging", "production")] == ["staging", "production"]
    up = _load(ROOT / ".github/workflows/pulumi-up.yml")["jobs"]["up"]
    assert up["environment"] == "${{ inputs.stack }}"
    assert up["concurrency"] == {"group": "pulumi-${{ inputs.stack }}", "cancel-in-progress": False}
    (action,) = [s["with"] for s in up["steps"] if s.get("uses", "").startswith("pulumi/actions@")]
    assert (action["command"], action["policyPacks"]) == ("up", "policy")


def test_every_up_is_preceded_by_a_preflight_of_its_stack_with_the_same_credentials():
    """README "Deploying for real": the account's quotas are checked, read-only, before anything is created."""
    ups = 0
    for _, _, job in _jobs():
        steps = job.get("steps", [])
        for index, step in enumerate(steps):
            if step.get("with", {}).get("command") != "up":
                continue
            ups += 1
            before = steps[:index]
            (credentials,) = [i for i, s in enumerate(before) if "configure-aws-credentials" in s.get("uses", "")]
            (preflight,) = [i for i, s in enumerate(before) if "ops preflight" in s.get("run", "")]
            assert credentials < preflight == index - 1
            assert before[preflight]["run"] == '.venv/bin/python -m ops preflight --stack "${STACK}"'
            stack = {**job.get("env", {}), **before[preflight].get("env", {})}["STACK"]
            assert step["with"]["stack-name"] == "${{ vars.PULUMI_ORG }}/" + stack
    assert ups == 2  # pulumi-up.yml (staging, production) and the review stack


def test_a_review_stack_without_monitors_is_warned_not_refused_by_the_policy_pack():
    """Review stacks run with nothing but the repository's variables: without Datadog keys they
    have no monitors, so `database-has-monitors` (mandatory for staging and production) only
    warns there; every other policy stays mandatory."""
    up = _load(ROOT / ".github/workflows/pull-request.yml")["jobs"]["review-stack-up"]
    (action,) = _commands(up["steps"])
    config = json.loads((ROOT / action["policyPackConfigs"]).read_text())
    assert config == {"database-has-monitors": {"enforcementLevel": "advisory"}}
    assert "database-has-monitors" in {policy.name for policy in POLICIES}
    previews = [a for _, name, job in _jobs() if name != "review-stack-up" for a in _commands(job.get("steps", []))]
    assert previews and not any("policyPackConfigs" in a for a in previews)


# --- drift.yml: nightly drift detection, read-only, one issue per stack -----------------------


def _drift() -> dict:
    return _load(ROOT / ".github/workflows/drift.yml")


def test_drift_runs_nightly_and_on_demand_for_every_committed_stack():
    drift = _drift()
    assert set(drift["on"]) == {"schedule", "workflow_dispatch"} and len(drift["on"]["schedule"]) == 1
    committed = sorted(path.name.split(".")[1] for path in ROOT.glob("Pulumi.*.yaml"))
    for job in ("detect", "report"):
        assert sorted(drift["jobs"][job]["strategy"]["matrix"]["stack"]) == committed


def test_drift_detection_assumes_the_read_only_preview_role_and_runs_ops_drift():
    detect = _drift()["jobs"]["detect"]
    (aws,) = [s["with"] for s in detect["steps"] if s.get("uses", "").startswith("aws-actions/")]
    assert aws["role-to-assume"] == "${{ vars.AWS_PREVIEW_ROLE_ARN }}"
    (run,) = [s for s in detect["steps"] if "ops drift" in s.get("run", "")]
    assert '.venv/bin/python -m ops drift --stack "$STACK" --json >drift.json' in run["run"].splitlines()
    assert run["env"] == {
        "PULUMI_ACCESS_TOKEN": "${{ secrets.PULUMI_ACCESS_TOKEN }}",
        "STACK": "${{ vars.PULUMI_ORG }}/${{ matrix.stack }}",
        "SWIPESAVVY_DB_READ_ONLY": "true",
    }
    assert detect["steps"][-1]["run"] == 'exit "$EXIT_CODE"'  # drift (7) fails the run


def test_the_issue_job_has_no_cloud_access_and_runs_after_a_failed_detection():
    report = _drift()["jobs"]["report"]
    assert (report["needs"], report["if"]) == ("detect", "${{ !cancelled() }}")
    text = yaml.safe_dump(report)
    assert "secrets." not in text and "aws-actions" not in text and "checkout" not in text


def test_no_expression_is_expanded_inside_a_drift_script():
    """Data reaches the scripts through env only (zizmor's template-injection rule)."""
    runs = [s["run"] for job in _drift()["jobs"].values() for s in job["steps"] if "run" in s]
    assert runs and not [run for run in runs if "${{" in run]


FAKE_GH = """#!/bin/sh
echo "$*" >>"$GH_LOG"
case "$1 $2" in "issue list") cat "$GH_ISSUES" ;; esac
"""


def _file_issue(tmp_path, drift: bool, open_issues: list[dict]) -> list[str]:
    """Run the report job's script with a fake `gh`; the gh commands it ran."""
    (step,) = [s for s in _drift()["jobs"]["report"]["steps"] if "run" in s]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "gh").write_text(FAKE_GH)
    (bin_dir / "gh").chmod(0o755)
    (tmp_path / "issues.json").write_text(json.dumps(open_issues))
    document = {"drift": drift, "issue": {"title": "Drift in staging", "body": "| a | b |\n"}}
    (tmp_path / "drift.json").write_text(json.dumps(document))
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "GH_LOG": str(tmp_path / "gh.log"),
        "GH_ISSUES": str(tmp_path / "issues.json"),
        "RUN_URL": "https://github.com/acme/infra/actions/runs/42",
    }
    subprocess.run(["bash", "-e", "-c", step["run"]], cwd=tmp_path, env=env, check=True, timeout=60)
    log = tmp_path / "gh.log"
    return log.read_text().splitlines() if log.exists() else []


OTHER = {"number": 3, "title": "Drift in staging environment docs"}  # found by the search, not ours
SEARCH = 'issue list --state open --search in:title "Drift in staging" --json number,title --limit 100'


@pytest.mark.parametrize(
    ("drift", "open_issues", "commands"),
    [
        (True, [OTHER], [SEARCH, "issue create --title Drift in staging --body-file body.md"]),
        (True, [OTHER, {"number": 9, "title": "Drift in staging"}], [SEARCH, "issue edit 9 --body-file body.md"]),
        (
            False,
            [{"number": 9, "title": "Drift in staging"}],
            [
                SEARCH,
                "issue close 9 --comment No drift found by https://github.com/acme/infra/actions/runs/42: "
                "the stack holds what it declares again.",
            ],
        ),
        (False, [OTHER], [SEARCH]),
    ],
    ids=["opens", "updates", "closes", "clean-and-none-open"],
)
def test_one_issue_per_stack_opened_updated_and_closed(tmp_path, drift, open_issues, commands):
    assert _file_issue(tmp_path, drift, open_issues) == commands
    if drift:
        assert (tmp_path / "body.md").read_text().splitlines() == [
            "| a | b |",
            "",
            "Found by https://github.com/acme/infra/actions/runs/42",
        ]


def test_staging_keeps_a_bounded_number_of_snapshots_after_each_update():
    up = _load(ROOT / ".github/workflows/pulumi-up.yml")["jobs"]["up"]
    prune = up["steps"][-1]
    assert prune["if"] == "inputs.stack == 'staging'"
    assert prune["run"] == ".venv/bin/python -m ops snapshots prune --stack staging --yes --region us-east-1"
    prunes = [s for s in _steps() if "snapshots prune" in s.get("run", "")]
    assert all("--stack staging" in s["run"] or '--stack "${STACK}"' in s["run"] for s in prunes)
