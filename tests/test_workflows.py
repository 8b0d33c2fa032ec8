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


def _review_stack_down() -> dict:
    return _load(ROOT / ".github/workflows/review-stack-down.yml")["jobs"]["down"]


@pytest.mark.parametrize("job", ["review-stack-up", "review-stack-down"])
def test_review_stacks_only_when_switched_on_with_generated_settings(job):
    review = _load(ROOT / ".github/workflows/pull-request.yml")["jobs"][job]
    assert "vars.REVIEW_STACKS == 'true'" in review["if"]
    if job.endswith("down"):  # the destroy shared with the orphan sweep, for this pull request
        assert review["with"] == {"pr": "${{ github.event.pull_request.number }}"}
        review = _review_stack_down()
    (action,) = _commands(review["steps"])
    number = "${{ github.event.pull_request.number }}" if job.endswith("up") else "${{ inputs.pr }}"
    assert action["stack-name"] == f"${{{{ vars.PULUMI_ORG }}}}/pr-{number}"
    assert action["command"] == ("up" if job.endswith("up") else "destroy")
    # The settings come from the tested generator (tests/test_review_config.py), fed staging's outputs.
    (generate,) = [s for s in review["steps"] if "review-config" in s.get("run", "")]
    assert generate["run"].splitlines() == [
        'pulumi stack output --stack "${PULUMI_ORG}/staging" --json >staging-outputs.json',
        '.venv/bin/python -m ops review-config --pr "${PR_NUMBER}" --staging-outputs staging-outputs.json',
    ]
    assert "sed " not in yaml.safe_dump(review)


def test_ci_destroys_only_review_stacks_and_leaves_no_snapshot():
    """Staging and production are never destroyed from CI (docs/operations.md "What `pulumi destroy` keeps")."""
    destroys = [
        (name, job) for _, name, job in _jobs() for a in _commands(job.get("steps", [])) if a["command"] == "destroy"
    ]
    assert [name for name, _ in destroys] == ["down"] and destroys[0][1] == _review_stack_down()
    assert not any(re.search(r"pulumi\s+(destroy|stack\s+rm)", s.get("run", "")) for s in _steps())
    ((_, job),) = destroys
    guard, *rest = job["steps"]
    assert job["env"] == {"STACK": "pr-${{ inputs.pr }}"}
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


# --- review-orphans.yml: review stacks that outlived their pull request -----------------------


def _orphans() -> dict:
    return _load(ROOT / ".github/workflows/review-orphans.yml")


REVIEW_SECRETS = {
    "PULUMI_ACCESS_TOKEN": "${{ secrets.PULUMI_ACCESS_TOKEN }}",
    "REVIEW_DD_API_KEY": "${{ secrets.REVIEW_DD_API_KEY }}",
    "REVIEW_DD_APP_KEY": "${{ secrets.REVIEW_DD_APP_KEY }}",
}


def test_orphans_are_swept_nightly_through_the_same_destroy_as_on_close():
    orphans = _orphans()
    assert set(orphans["on"]) == {"schedule", "workflow_dispatch"} and len(orphans["on"]["schedule"]) == 1
    destroy = orphans["jobs"]["destroy"]
    closed = _load(ROOT / ".github/workflows/pull-request.yml")["jobs"]["review-stack-down"]
    for caller in (destroy, closed):
        assert caller["uses"] == "./.github/workflows/review-stack-down.yml"
        assert caller["secrets"] == REVIEW_SECRETS
        assert caller["permissions"] == {"contents": "read", "id-token": "write"}
    assert (destroy["needs"], destroy["if"]) == ("find", "needs.find.outputs.prs != '[]'")
    assert destroy["strategy"]["matrix"] == {"pr": "${{ fromJSON(needs.find.outputs.prs) }}"}
    assert destroy["with"] == {"pr": "${{ matrix.pr }}"}


def test_finding_orphans_reads_pull_requests_and_stack_names_only():
    find = _orphans()["jobs"]["find"]
    assert find["permissions"] == {"contents": "read", "pull-requests": "read"}
    text = yaml.safe_dump(find)
    assert "aws-actions" not in text and "id-token" not in text
    assert not [s["run"] for s in find["steps"] if "${{" in s.get("run", "")]  # data through env only


FAKE_PULUMI_LS = """#!/bin/sh
echo "pulumi $*" >>"$CALLS"
cat "$STACKS"
"""
FAKE_GH_STATE = """#!/bin/sh
echo "gh $*" >>"$CALLS"
case "$3" in 12) echo OPEN ;; 31) echo MERGED ;; 40) echo CLOSED ;; *) echo "GraphQL: Could not resolve" >&2; exit 1 ;; esac
"""


def test_the_selection_script_outputs_the_ended_pull_requests(tmp_path):
    """The find job's script, with a fake pulumi and gh: staging, production, an open pull
    request and an unknown one are kept; a merged and a closed one's stacks are selected."""
    (step,) = [s for s in _orphans()["jobs"]["find"]["steps"] if s.get("id") == "select"]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, script in (("pulumi", FAKE_PULUMI_LS), ("gh", FAKE_GH_STATE)):
        (bin_dir / name).write_text(script)
        (bin_dir / name).chmod(0o755)
    stacks = ["acme/staging", "acme/production", "acme/pr-12", "acme/pr-31", "acme/pr-40", "acme/pr-77"]
    (tmp_path / "all.json").write_text(json.dumps([{"name": n, "current": False} for n in stacks]))
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "CALLS": str(tmp_path / "calls.log"),
        "STACKS": str(tmp_path / "all.json"),
        "PULUMI_ORG": "acme",
        "GITHUB_OUTPUT": str(tmp_path / "output"),
    }
    done = subprocess.run(
        ["bash", "-e", "-c", step["run"]], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "output").read_text() == "prs=[31, 40]\n"
    assert done.stderr.splitlines() == [
        "pr-12: pull request open: kept",
        "pr-31: pull request merged: destroy",
        "pr-40: pull request closed: destroy",
        "pr-77: pull request state unknown: kept (the next run tries again)",
    ]
    assert (tmp_path / "calls.log").read_text().splitlines() == [
        "pulumi stack ls --json --organization acme",
        *(f"gh pr view {pr} --json state --jq .state" for pr in (12, 31, 40, 77)),
    ]
