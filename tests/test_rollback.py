"""ops/rollback.py: from a stack's update history (as ``pulumi stack history --json`` records it)
to the update a rollback redeploys, or a one-line refusal."""

from __future__ import annotations

import pytest

from ops.rollback import RollbackRefused, plan_rollback, rollback_settings

GOOD, DIRTY = "a" * 40, "b" * 40


def update(version: int, result: str = "succeeded", head: str | None = GOOD, dirty: str = "false", kind="update"):
    environment = {"git.dirty": dirty} | ({"git.head": head} if head else {})
    return {
        "version": version,
        "kind": kind,
        "result": result,
        "startTime": f"2026-11-{version:02d}T10:00:00Z",
        "message": f"change {version}",
        "environment": environment,
        "config": {"swipesavvy:environment": {"value": "staging", "secret": False}},
    }


HISTORY = [update(1), update(2, head="c" * 40), update(3, result="failed"), update(4, kind="refresh"), update(5)]


def test_default_is_the_last_successful_update_before_the_latest():
    plan = plan_rollback(HISTORY, "staging")
    assert (plan.version, plan.commit, plan.result) == (2, "c" * 40, "succeeded")
    assert plan.started == "2026-11-02T10:00:00Z" and plan.config["swipesavvy:environment"]["value"] == "staging"


def test_an_explicit_version_is_taken_as_given():
    assert plan_rollback(HISTORY, "staging", to=1).commit == GOOD


@pytest.mark.parametrize(
    ("history", "to", "expected"),
    [
        (HISTORY, 4, "--to 4: stack 'staging' has no update with that version (updates: 5, 3, 2, 1)"),
        ([update(1, head=None), update(2)], 1, "--to 1: the update recorded no git commit"),
        ([update(1, head=DIRTY, dirty="true"), update(2)], 1, "ran from a dirty work tree at bbbbbbbbbbbb"),
        ([update(1, result="failed"), update(2)], None, "stack 'staging' has no successful update before its latest"),
    ],
)
def test_refusals_are_one_line_and_name_the_fix(history, to, expected):
    with pytest.raises(RollbackRefused) as refused:
        plan_rollback(history, "staging", to=to)
    message = str(refused.value)
    assert expected in message and "(fix: " in message and "\n" not in message


def test_the_settings_file_is_the_recorded_config_with_the_commits_secrets():
    recorded = update(1) | {"config": {"app:plain": {"value": "7", "secret": False}, "app:key": {"secret": True}}}
    plan = plan_rollback([recorded, update(2)], "staging", to=1)
    committed = {"encryptionsalt": "salt", "config": {"app:plain": "6", "app:key": {"secure": "v1:x"}, "app:old": "1"}}
    settings = rollback_settings(plan, committed, "staging")
    assert settings == {"encryptionsalt": "salt", "config": {"app:key": {"secure": "v1:x"}, "app:plain": "7"}}
    with pytest.raises(RollbackRefused, match=r"secret app:key is not in Pulumi.staging.yaml at aaaaaaaaaaaa"):
        rollback_settings(plan, {"config": {"app:plain": "6"}}, "staging")
