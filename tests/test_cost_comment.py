"""The pull request's cost comment (issue 30 items 5 and 7): the per-resource difference from
main (added, removed and changed resources with their monthly delta, largest first) and the
budget verdict, tested by running the workflow's own cost steps with the estimates given and
``gh`` recorded: a stack over its budget gets its comment, then fails the job naming what
crossed it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import yaml

from ops.cost.report import budget_verdict, comment_details, resource_diff
from ops.rehearsal.mock_program import PROJECT_ROOT

DB = "aws:rds/instance:Instance swipesavvy-db-postgres"
NAT = "aws:ec2/natGateway:NatGateway swipesavvy-nat"
IP = "aws:ec2/eip:Eip swipesavvy-ip"
BUCKET = "aws:s3/bucketV2:BucketV2 swipesavvy-extra"
PREVIEW = "#### :tropical_drink: `preview` on swipesavvy/acme/staging\n\n<details>plan</details>"


def estimate_json(stack: str, resources: dict[str, float], budget: float | None = None) -> dict:
    lines = [{"resource": r, "what": "x", "monthly": m, "status": "priced"} for r, m in resources.items()]
    lines.append({"resource": DB, "what": "CPU credits at 100%", "monthly": 500.0, "status": "risk"})  # never counted
    total = round(sum(resources.values()), 2)
    return {
        "stack": stack,
        "total": total,
        "budget": budget,
        "usage_file": f"usage/{stack}.yml",
        "no_price": [],
        "lines": lines,
    }


HEAD = estimate_json("staging", {DB: 94.90, NAT: 38.75, BUCKET: 1.00}, budget=100)
BASE = estimate_json("staging", {DB: 47.45, NAT: 38.75, IP: 3.65}, budget=100)
TABLE = (
    "| change | resource | $/month | difference |\n"
    "| --- | --- | --- | --- |\n"
    "| changed | `swipesavvy-db-postgres` (aws:rds/instance:Instance) | $94.90 | +$47.45 |\n"
    "| removed | `swipesavvy-ip` (aws:ec2/eip:Eip) | $0.00 | -$3.65 |\n"
    "| added | `swipesavvy-extra` (aws:s3/bucketV2:BucketV2) | $1.00 | +$1.00 |"
)
OVER = (
    "staging: over budget: $134.65/month is $34.65 above $100.00 (usage/staging.yml monthlyBudgetUsd);"
    " what crossed it: `swipesavvy-db-postgres` (aws:rds/instance:Instance) +$47.45,"
    " `swipesavvy-extra` (aws:s3/bucketV2:BucketV2) +$1.00"
)


def test_the_diff_lists_added_removed_and_changed_resources_largest_first():
    assert resource_diff(HEAD, BASE) == [
        ("changed", DB, 94.90, 47.45),
        ("removed", IP, 0.0, -3.65),
        ("added", BUCKET, 1.00, 1.00),
    ]  # the NAT gateway did not change: not listed; the risk line is beside the total, never in it
    assert comment_details(HEAD, BASE) == (True, f"{TABLE}\n\n**{OVER}**")


def test_the_budget_verdict_within_over_and_without_mains_estimate():
    within = {**HEAD, "budget": 200}
    assert budget_verdict(within, BASE) == (
        False,
        "staging: budget: $134.65 of $200.00/month (usage/staging.yml monthlyBudgetUsd), $65.35 to spare",
    )
    assert budget_verdict(HEAD, None) == (
        True,
        "staging: over budget: $134.65/month is $34.65 above $100.00 (usage/staging.yml monthlyBudgetUsd);"
        " the largest: `swipesavvy-db-postgres` (aws:rds/instance:Instance) $94.90,"
        " `swipesavvy-nat` (aws:ec2/natGateway:NatGateway) $38.75, `swipesavvy-extra` (aws:s3/bucketV2:BucketV2) $1.00",
    )
    assert budget_verdict({**HEAD, "budget": None}, BASE) == (False, "")


FAKE_PYTHON = """#!/bin/bash
# The estimates are the test's (-m ops cost --stack NAME --json); every other command is the real one.
if [ "$4" = "--stack" ]; then
  side=head; [ "$(basename "$PWD")" = base ] && side=base
  exec cat "$ESTIMATES/$side-$5.json"
fi
PYTHONPATH="$ROOT" exec "$REAL_PYTHON" "$@"
"""
FAKE_GH = """#!/bin/bash
# gh api: the staging preview comment exists (id 101), production's does not; writes are recorded.
echo "$*" >>"$GH_LOG"
case "$*" in
  *"--method PATCH"*|*"--method POST"*) body="${@: -1}"; cp "${body#body=@}" "$GH_POSTED/$(echo "$*" | cut -d' ' -f3)-$(basename "${body#body=@}")" ;;
  *"--paginate"*) case "$*" in *"/staging"*) echo 101 ;; esac ;;
  *"comments/101 --jq .body"*) printf '%s\\n' "$PREVIEW" ;;
esac
"""


def _cost_steps() -> list[str]:
    workflow = yaml.safe_load((PROJECT_ROOT / ".github/workflows/pull-request.yml").read_text())
    steps = workflow["jobs"]["cost"]["steps"]
    return [s["run"] for s in steps if s.get("name", "").startswith(("Estimate each stack", "Add the cost"))]


def test_the_workflow_comments_each_stack_and_fails_the_one_over_its_budget(tmp_path):
    estimates, posted, bin_dir = tmp_path / "estimates", tmp_path / "posted", tmp_path / "bin"
    for folder in (estimates, posted, bin_dir, tmp_path / "work/.venv/bin", tmp_path / "work/base"):
        folder.mkdir(parents=True)
    documents = {
        "head-staging": HEAD,
        "base-staging": BASE,
        "head-production": estimate_json("production", {DB: 600.0}, budget=700),
    }  # main has no production estimate: its command fails, the script removes the file
    for name, document in documents.items():
        (estimates / f"{name}.json").write_text(json.dumps(document))
    (tmp_path / "work/.venv/bin/python").write_text(FAKE_PYTHON)
    (bin_dir / "gh").write_text(FAKE_GH)
    for script in (tmp_path / "work/.venv/bin/python", bin_dir / "gh"):
        script.chmod(0o755)
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}", "ESTIMATES": str(estimates), "ROOT": str(PROJECT_ROOT),
        "REAL_PYTHON": sys.executable, "GH_LOG": str(tmp_path / "gh.log"), "GH_POSTED": str(posted),
        "PREVIEW": PREVIEW, "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"), "REPO": "acme/swipesavvy",
        "PR_NUMBER": "7", "GH_TOKEN": "t",
    }  # fmt: skip
    estimate, comment = _cost_steps()
    subprocess.run(["bash", "-e", "-c", estimate], cwd=tmp_path / "work", env=env, check=True, timeout=300)
    done = subprocess.run(
        ["bash", "-e", "-c", comment], cwd=tmp_path / "work", env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 1, done.stderr
    assert done.stdout.splitlines() == [
        f"::error title=staging over its monthly budget::{OVER}",
        "over their monthly budget: staging (raise monthlyBudgetUsd in usage/<stack>.yml, or cut the cost)",
    ]
    assert sorted(p.name for p in posted.iterdir()) == ["PATCH-new-staging.md", "POST-new-production.md"]
    assert (posted / "PATCH-new-staging.md").read_text() == (
        f"{PREVIEW}\n\n<!-- swipesavvy-cost -->\n"
        "**Monthly cost** (`python -m ops cost`, difference from main): staging: $134.65/month (+$44.80)\n\n"
        f"{TABLE}\n\n**{OVER}**\n"
    )
    assert (posted / "POST-new-production.md").read_text() == (
        "<!-- swipesavvy-cost -->\n"
        "**Monthly cost** (`python -m ops cost`, difference from main): production: $600.00/month"
        " (no estimate for main)\n\n"
        "production: budget: $600.00 of $700.00/month (usage/production.yml monthlyBudgetUsd), $100.00 to spare\n"
    )
    summary = (tmp_path / "summary.md").read_text()
    assert summary.startswith(f"staging: $134.65/month (+$44.80)\n\n{TABLE}\n\n**{OVER}**\n")
