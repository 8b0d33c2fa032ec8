"""The GitHub workflows (.github/workflows): actionlint and zizmor (both from PyPI, in the
virtualenv) pass them, and the change-control promises hold: every action pinned by commit,
no job with more permission than it needs, AWS by OIDC only, the policy pack on every
preview and update, and one update per stack at a time."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from policy.policies import POLICIES

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
BIN = Path(sys.executable).parent
PINNED = re.compile(r"^[\w.-]+/[\w.-]+@[0-9a-f]{40}$")


def _load(path: Path) -> dict:
    # YAML 1.1 reads the key `on` as True; GitHub reads it as "on".
    return {("on" if key is True else key): value for key, value in yaml.safe_load(path.read_text()).items()}


def _jobs() -> list[tuple[str, str, dict]]:
    return [(path.name, name, job) for path in WORKFLOWS for name, job in _load(path)["jobs"].items()]


def _steps() -> list[dict]:
    return [step for _, _, job in _jobs() for step in job.get("steps", [])]


def _run(tool: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / tool), *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


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
        assert set(granted.values()) <= {"read", "write"} and granted.get("contents") == "read"
        writes = {scope for scope, level in granted.items() if level == "write"}
        assert writes <= {"id-token", "pull-requests"}, f"{workflow}:{name} writes {writes}"


def test_aws_by_oidc_role_only_and_pulumi_by_token_secret():
    text = "\n".join(path.read_text() for path in WORKFLOWS)
    assert "aws-access-key-id" not in text and "AWS_SECRET_ACCESS_KEY" not in text
    aws = [s["with"] for s in _steps() if s.get("uses", "").startswith("aws-actions/configure-aws-credentials@")]
    assert aws and all(w["role-to-assume"].startswith("${{ vars.") for w in aws)
    # Those that run a command (without one, the action only installs the CLI).
    pulumi = [s for s in _steps() if s.get("uses", "").startswith("pulumi/actions@") and "with" in s]
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
