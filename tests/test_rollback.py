"""ops/live/rollback.py: from a stack's update history (as ``pulumi stack history --json`` records it)
to the update a rollback redeploys, or a one-line refusal; and ``python -m ops rollback`` end to
end, against a fake ``pulumi`` first on PATH (tests/fake_pulumi.py: it replays recorded history
and records every call) and a real git repository with two commits."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import tempfile

import pytest
import yaml
from fake_pulumi import put_on_path

from ops import cli, pulumi_cli, rollback_cli
from ops.live.rollback import (
    HistoryUnreadable,
    RollbackPlan,
    RollbackRefused,
    config_lines,
    history_rows,
    keep_counters,
    parse_history,
    plan_rollback,
    rollback_settings,
)

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


def test_the_plan_carries_every_recorded_field():
    assert plan_rollback(HISTORY, "staging") == RollbackPlan(
        version=2,
        commit="c" * 40,
        started="2026-11-02T10:00:00Z",
        result="succeeded",
        message="change 2",
        config={"swipesavvy:environment": {"value": "staging", "secret": False}},
    )


def test_fields_an_update_did_not_record_are_empty_and_a_missing_dirty_flag_means_clean():
    bare = {"version": 1, "kind": "update", "environment": {"git.head": GOOD}, "config": {"a:b": {"value": "1"}}}
    plan = plan_rollback([bare, update(2)], "staging", to=1)
    assert (plan.started, plan.result, plan.message) == ("", "", "")


@pytest.mark.parametrize("dirty", ["true", "True", "TRUE"])
def test_a_dirty_flag_in_any_case_is_refused(dirty):
    with pytest.raises(RollbackRefused) as refused:
        plan_rollback([update(1, head=DIRTY, dirty=dirty), update(2)], "staging", to=1)
    assert str(refused.value) == (
        "--to 1: the update ran from a dirty work tree at bbbbbbbbbbbb, so that commit is not what was deployed "
        "(fix: choose another version with --to)"
    )


@pytest.mark.parametrize(
    ("history", "to", "expected"),
    [
        (
            HISTORY,
            4,
            "--to 4: stack 'staging' has no update with that version (updates: 5, 3, 2, 1) "
            "(fix: pulumi stack history --stack staging)",
        ),
        (
            [update(1, kind="preview")],
            1,
            "--to 1: stack 'staging' has no update with that version (updates: none) "
            "(fix: pulumi stack history --stack staging)",
        ),
        (
            [],
            None,
            "stack 'staging' has no successful update before its latest one to roll back to "
            "(fix: pulumi stack history --stack staging lists them; give one with --to VERSION)",
        ),
        (
            [update(1)],
            None,
            "stack 'staging' has no successful update before its latest one to roll back to "
            "(fix: pulumi stack history --stack staging lists them; give one with --to VERSION)",
        ),
        *(
            (
                [update(1, head=head), update(2)],
                1,
                "--to 1: the update recorded no git commit, so its program cannot be recovered "
                "(fix: choose an update run from a git checkout, or redeploy by hand as docs/operations.md 'Rolling back' says)",
            )
            for head in (None, "a" * 39, "A" * 40, "a" * 40 + "\n")
        ),
        (
            [update(1) | {"environment": {}}, update(2)],
            1,
            "--to 1: the update recorded no git commit, so its program cannot be recovered "
            "(fix: choose an update run from a git checkout, or redeploy by hand as docs/operations.md 'Rolling back' says)",
        ),
    ],
)
def test_refusals_are_whole_lines(history, to, expected):
    with pytest.raises(RollbackRefused) as refused:
        plan_rollback(history, "staging", to=to)
    assert str(refused.value) == expected


def test_history_rows_are_whole_lines_newest_first_updates_only():
    history = [
        update(1, head=None),
        update(3, head=DIRTY, dirty="True"),
        update(2, result="failed"),
        update(4, kind="refresh"),
        {"version": 12, "kind": "update"},
        update(5) | {"environment": None},
    ]
    assert history_rows(history) == [
        "   12" + " " * 40 + "(no commit)",  # no time, no result: the columns stay aligned
        "    5  2026-11-05T10:00:00Z      succeeded   (no commit)",
        "    3  2026-11-03T10:00:00Z      succeeded   bbbbbbbbbbbb dirty",
        "    2  2026-11-02T10:00:00Z      failed      aaaaaaaaaaaa",
        "    1  2026-11-01T10:00:00Z      succeeded   (no commit)",
    ]
    assert history_rows([]) == []


def test_config_lines_show_plain_values_objects_and_never_secrets():
    config = {
        "b:plain": {"value": "7", "secret": False},
        "a:secret": {"value": "hunter2", "secret": True},
        "c:object": {"value": "{}", "objectValue": {"z": 1, "a": [True]}, "secret": False},
        "d:empty": {},
        "e:none": None,
    }
    assert config_lines(config) == [
        "  a:secret: [secret]",
        "  b:plain: 7",
        '  c:object: {"a": [true], "z": 1}',
        "  d:empty: ",
        "  e:none: ",
    ]


def test_entries_without_environment_or_config_fit_the_schema():
    history = [{"version": 1}, {"version": 2, "kind": "update", "environment": {}, "config": {}}]
    assert parse_history(history) is history


def test_an_unreadable_value_is_shown_cut_to_60_characters():
    long = "x" * 100
    with pytest.raises(HistoryUnreadable) as unreadable:
        parse_history([{"version": 1, "message": 5}, {"version": 2, "message": long}])
    assert str(unreadable.value) == "entry 1 (version 1) has message 5, not a string"
    with pytest.raises(HistoryUnreadable) as unreadable:
        parse_history([{"version": 1, "kind": [long]}])
    assert str(unreadable.value) == f'entry 1 (version 1) has kind ["{"x" * 58}, not a string'
    with pytest.raises(HistoryUnreadable) as unreadable:
        parse_history([{"version": 0}])
    assert str(unreadable.value) == "entry 1 has version 0, not an integer from 1"


def test_the_settings_keep_plain_values_and_objects_as_recorded():
    recorded = {
        "app:plain": {"value": "7", "secret": False},
        "app:object": {"value": "[1]", "objectValue": [1], "secret": False},
        "app:blank": {"secret": False},
        "app:none": None,
    }
    plan = plan_rollback([update(1) | {"config": recorded}, update(2)], "staging", to=1)
    expected = {"config": {"app:blank": "", "app:none": "", "app:object": [1], "app:plain": "7"}}
    assert rollback_settings(plan, None, "staging") == expected
    assert rollback_settings(plan, {"config": None}, "staging") == expected


@pytest.mark.parametrize("committed", [["config"], {"config": ["app:key"]}])
def test_a_settings_file_that_is_not_a_mapping_is_refused_whole(committed):
    plan = plan_rollback(HISTORY, "staging", to=1)
    with pytest.raises(RollbackRefused) as refused:
        rollback_settings(plan, committed, "staging")
    assert str(refused.value) == (
        "--to 1: Pulumi.staging.yaml at aaaaaaaaaaaa is not a mapping with a config: mapping, so its secrets "
        "cannot be recovered (fix: choose another version with --to)"
    )


@pytest.mark.parametrize("held", [None, "plain", {"value": "x"}])
def test_a_secret_the_commit_does_not_hold_is_refused_whole(held):
    recorded = update(1) | {"config": {"app:key": {"secret": True}}}
    plan = plan_rollback([recorded, update(2)], "staging", to=1)
    with pytest.raises(RollbackRefused) as refused:
        rollback_settings(plan, {"config": {"app:key": held}}, "staging")
    assert str(refused.value) == (
        "--to 1: the update's secret app:key is not in Pulumi.staging.yaml at aaaaaaaaaaaa, so its value cannot be "
        "recovered (fix: choose another version with --to, or redeploy by hand as docs/operations.md 'Rolling back' says)"
    )


# --- python -m ops rollback, end to end against a fake `pulumi` and a real git repository ----------

STACK = "staging"
# Pulumi.staging.yaml at the first commit: what the update being returned to ran with.
FIRST_SETTINGS = """\
encryptionsalt: v1:c2FsdA==:v1:aXY=:Y2lwaGVy
config:
  aws:region: us-east-1
  swipesavvy:environment: staging
  swipesavvy:datadogApiKey:
    secure: v1:first-ciphertext
  swipesavvy:database:
    instanceClass: db.t4g.medium
    multiAz: false
"""
SECOND_SETTINGS = FIRST_SETTINGS.replace("db.t4g.medium", "db.r6g.large").replace("first-ciphertext", "second")


def git(repo, *command: str) -> str:
    identity = ["-c", "user.name=Test", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false"]
    done = subprocess.run(["git", "-C", str(repo), *identity, *command], capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """A project repository with two commits (the instance class changed in the second), as
    PROJECT_ROOT; returns (path, first commit, second commit)."""
    path = tmp_path / "project"
    (path / "policy").mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    (path / "Pulumi.yaml").write_text("name: swipesavvy\nruntime: python\n")
    (path / "policy" / "PulumiPolicy.yaml").write_text("runtime: python\n")
    (path / "Pulumi.staging.yaml").write_text(FIRST_SETTINGS)
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "first")
    first = git(path, "rev-parse", "HEAD")
    (path / "Pulumi.staging.yaml").write_text(SECOND_SETTINGS)
    git(path, "commit", "-q", "-am", "second")
    monkeypatch.setattr(rollback_cli, "PROJECT_ROOT", path)
    return path, first, git(path, "rev-parse", "HEAD")


def recorded_update(version: int, commit: str, instance_class: str, dirty: bool = False) -> dict:
    """One update as `pulumi stack history --json --show-secrets=false` prints it."""
    database = {"instanceClass": instance_class, "multiAz": False}
    return {
        "version": version,
        "kind": "update",
        "startTime": f"2026-01-{version:02d}T10:00:00.000Z",
        "message": f"deploy {version}",
        "environment": {
            "exec.kind": "cli",
            "git.head": commit,
            "git.headName": "refs/heads/main",
            "git.dirty": "true" if dirty else "false",
            "pulumi.version": "v3.272.0",
        },
        "config": {
            "aws:region": {"value": "us-east-1", "secret": False},
            "swipesavvy:environment": {"value": "staging", "secret": False},
            "swipesavvy:datadogApiKey": {"secret": True},
            "swipesavvy:database": {"value": json.dumps(database), "objectValue": database, "secret": False},
        },
        "result": "succeeded",
        "endTime": f"2026-01-{version:02d}T10:12:00.000Z",
        "resourceChanges": {"same": 41, "update": 1},
    }


class Fake:
    def __init__(self, directory, monkeypatch):
        self.directory, self.monkeypatch = directory, monkeypatch
        self.log, self.history = directory / "pulumi-calls.jsonl", directory / "history.json"
        monkeypatch.setenv("FAKE_PULUMI_LOG", str(self.log))
        monkeypatch.setenv("FAKE_PULUMI_HISTORY", str(self.history))

    def record(self, *updates: dict) -> None:
        self.history.write_text(json.dumps(list(reversed(updates)), indent=4))  # pulumi lists newest first

    def fail(self, command: str, reason: str) -> None:
        self.monkeypatch.setenv("FAKE_PULUMI_FAIL", command)
        self.monkeypatch.setenv("FAKE_PULUMI_FAIL_REASON", reason)

    def calls(self) -> list[dict]:
        return [json.loads(line) for line in self.log.read_text().splitlines()] if self.log.exists() else []

    def commands(self) -> list[str]:
        return [next(arg for arg in call["args"] if not arg.startswith("-")) for call in self.calls()]


@pytest.fixture
def pulumi(tmp_path, monkeypatch):
    put_on_path(tmp_path / "bin", monkeypatch)
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))  # the rollback's worktree goes here
    (tmp_path / "tmp").mkdir()
    tempfile.tempdir = None  # re-read TMPDIR
    yield Fake(tmp_path, monkeypatch)
    tempfile.tempdir = None


class Terminal(io.StringIO):
    """stdin as a terminal on which the operator types ``answer``."""

    def isatty(self) -> bool:
        return True


def rollback(capsys, monkeypatch, *argv: str, answer: str | None = None) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", Terminal(answer) if answer is not None else io.StringIO())
    code = cli.main(["rollback", "--stack", STACK, *argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


def assert_no_worktree_left(repo_path, tmp_path) -> None:
    assert git(repo_path, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert list((tmp_path / "tmp").iterdir()) == []


def test_a_rollback_previews_then_deploys_the_recorded_commit_and_config(repo, pulumi, tmp_path, capsys, monkeypatch):
    path, first, second = repo
    pulumi.record(recorded_update(1, first, "db.t4g.medium"), recorded_update(2, second, "db.r6g.large"))
    code, out, err = rollback(capsys, monkeypatch, answer="y\n")
    assert code == cli.EXIT_OK, err
    assert pulumi.commands() == ["stack", "install", "preview", "up"]
    history, install, preview, up = pulumi.calls()
    assert history["args"] == [
        "stack",
        "history",
        "--json",
        "--show-secrets=false",
        "--non-interactive",
        "--stack",
        STACK,
    ]
    assert history["cwd"] == str(path)
    # preview and up ran in one worktree of the first commit, away from the checkout, exactly that commit
    tree = preview["cwd"]
    assert tree != str(path) and install["cwd"] == up["cwd"] == tree
    assert preview["head"] == up["head"] == first and preview["changes"] == up["changes"] == ""
    for call in (preview, up):
        assert call["args"][call["args"].index("--stack") + 1] == STACK
        assert call["args"][call["args"].index("--cwd") + 1] == tree
        assert call["args"][call["args"].index("--policy-pack") + 1] == f"{tree}/policy"
    assert up["args"][:3] == ["up", "--yes", "--skip-preview"]
    # with the config recorded for version 1: its values, the commit's ciphertext for its secret
    settings = yaml.safe_load(preview["config_file"])
    assert preview["config_file"] == up["config_file"]
    assert settings == {
        "encryptionsalt": "v1:c2FsdA==:v1:aXY=:Y2lwaGVy",
        "config": {
            "aws:region": "us-east-1",
            "swipesavvy:database": {"instanceClass": "db.t4g.medium", "multiAz": False},
            "swipesavvy:datadogApiKey": {"secure": "v1:first-ciphertext"},
            "swipesavvy:environment": "staging",
        },
    }
    # what the operator saw: the history, the chosen version, its config (secret masked), the preview
    assert out.startswith(
        "stack staging: updates, newest first (version, started, result, git commit)\n"
        f"    2  2026-01-02T10:00:00.000Z  succeeded   {second[:12]}\n"
        f"    1  2026-01-01T10:00:00.000Z  succeeded   {first[:12]}\n"
        "\n"
        f"rolling back to version 1: started 2026-01-01T10:00:00.000Z, succeeded, commit {first}\n"
        "  message: deploy 1\n"
        "config recorded for that update:\n"
        "  aws:region: us-east-1\n"
        '  swipesavvy:database: {"instanceClass": "db.t4g.medium", "multiAz": false}\n'
        "  swipesavvy:datadogApiKey: [secret]\n"
        "  swipesavvy:environment: staging\n"
    )
    assert "Previewing update (staging)" in out
    assert out.index("Previewing update") < out.index("deploy this to stack staging? [y/N]") < out.index("Updating")
    assert_no_worktree_left(path, tmp_path)


def test_yes_deploys_without_asking_even_without_a_terminal(repo, pulumi, capsys, monkeypatch):
    path, first, second = repo
    pulumi.record(recorded_update(1, first, "db.t4g.medium"), recorded_update(2, second, "db.r6g.large"))
    code, out, err = rollback(capsys, monkeypatch, "--to", "1", "--yes")
    assert code == cli.EXIT_OK, err
    assert pulumi.commands() == ["stack", "install", "preview", "up"] and "[y/N]" not in out


def test_without_a_terminal_or_yes_nothing_is_asked_of_pulumi(repo, pulumi, capsys, monkeypatch):
    code, _, err = rollback(capsys, monkeypatch)
    assert code == cli.EXIT_USAGE
    assert "there is none (fix: run it in a terminal, or pass --yes" in one_line_error(err)
    assert pulumi.calls() == []


def test_a_commit_missing_from_the_repository_is_refused(repo, pulumi, tmp_path, capsys, monkeypatch):
    path, _, second = repo
    gone = "f" * 40
    pulumi.record(recorded_update(1, gone, "db.t4g.medium"), recorded_update(2, second, "db.r6g.large"))
    code, _, err = rollback(capsys, monkeypatch, answer="y\n")
    assert code == cli.EXIT_REFUSED
    line = one_line_error(err)
    assert f"commit ffffffffffff is not in the repository at {path}" in line
    assert "(fix: git fetch --all, or choose another version with --to)" in line
    assert pulumi.commands() == ["stack"]
    assert_no_worktree_left(path, tmp_path)


def test_an_update_from_a_dirty_tree_is_refused(repo, pulumi, tmp_path, capsys, monkeypatch):
    path, first, second = repo
    pulumi.record(recorded_update(1, first, "db.t4g.medium", dirty=True), recorded_update(2, second, "db.r6g.large"))
    code, out, err = rollback(capsys, monkeypatch, "--to", "1", answer="y\n")
    assert code == cli.EXIT_REFUSED
    assert one_line_error(err) == (
        f"error: --to 1: the update ran from a dirty work tree at {first[:12]}, so that commit is not what was "
        "deployed (fix: choose another version with --to)"
    )
    # the listing marks it, and nothing about a plan follows the refusal
    assert out == (
        "stack staging: updates, newest first (version, started, result, git commit)\n"
        f"    2  2026-01-02T10:00:00.000Z  succeeded   {second[:12]}\n"
        f"    1  2026-01-01T10:00:00.000Z  succeeded   {first[:12]} dirty\n"
    )
    assert pulumi.commands() == ["stack"]
    assert_no_worktree_left(path, tmp_path)


def test_an_empty_history_is_refused_before_anything_is_deployed(repo, pulumi, tmp_path, capsys, monkeypatch):
    path, _, _ = repo
    pulumi.record()
    code, out, err = rollback(capsys, monkeypatch, "--yes")
    assert code == cli.EXIT_REFUSED
    assert one_line_error(err) == (
        "error: stack 'staging' has no successful update before its latest one to roll back to "
        "(fix: pulumi stack history --stack staging lists them; give one with --to VERSION)"
    )
    assert out == "stack staging: updates, newest first (version, started, result, git commit)\n  (none)\n"
    assert pulumi.commands() == ["stack"]
    assert_no_worktree_left(path, tmp_path)


def test_an_update_without_a_message_says_so(repo, pulumi, capsys, monkeypatch):
    path, first, second = repo
    silent = {k: v for k, v in recorded_update(1, first, "db.t4g.medium").items() if k != "message"}
    pulumi.record(silent, recorded_update(2, second, "db.r6g.large"))
    code, out, err = rollback(capsys, monkeypatch, "--yes")
    assert code == cli.EXIT_OK, err
    assert f"commit {first}\n  (no message)\nconfig recorded for that update:\n" in out


def test_a_declined_confirmation_deploys_nothing(repo, pulumi, tmp_path, capsys, monkeypatch):
    path, first, second = repo
    pulumi.record(recorded_update(1, first, "db.t4g.medium"), recorded_update(2, second, "db.r6g.large"))
    code, out, err = rollback(capsys, monkeypatch, answer="n\n")
    assert code == cli.EXIT_REFUSED
    assert "to version 1 declined; nothing was deployed" in one_line_error(err)
    assert pulumi.commands() == ["stack", "install", "preview"] and "Previewing update" in out
    assert_no_worktree_left(path, tmp_path)


def test_a_failed_preview_deploys_nothing(repo, pulumi, tmp_path, capsys, monkeypatch):
    path, first, second = repo
    pulumi.record(recorded_update(1, first, "db.t4g.medium"), recorded_update(2, second, "db.r6g.large"))
    pulumi.fail("preview", "preview failed: 1 policy violation (rds-encrypted)")
    code, _, err = rollback(capsys, monkeypatch, "--yes")
    assert code == cli.EXIT_FAILED
    line = one_line_error(err)
    assert (
        "the preview of version 1 failed: preview failed: 1 policy violation (rds-encrypted); nothing was deployed"
        in line
    )
    assert pulumi.commands() == ["stack", "install", "preview"]
    assert_no_worktree_left(path, tmp_path)


# --- unusual history, interrupts, a missing CLI ----------------------------------------------------


@pytest.mark.parametrize(
    ("history", "problem"),
    [
        ({"version": 1}, "it is not a JSON list"),
        (["update 1"], "entry 1 is \"update 1\", not an object"),
        ([{"kind": "update", "result": "succeeded"}], "entry 1 has no version (an integer from 1)"),
        ([{"version": "2", "kind": "update"}], "entry 1 has version \"2\", not an integer from 1"),
        ([{"version": True, "kind": "update"}], "entry 1 has version true, not an integer from 1"),
        ([update(2), 7], "entry 2 is 7, not an object"),
        ([{"version": 1, "kind": ["update"]}], "entry 1 (version 1) has kind [\"update\"], not a string"),
        ([update(1) | {"environment": ["git.head"]}], "entry 1 (version 1) has environment [\"git.head\"], not an object"),
        ([update(1) | {"config": [1]}], "entry 1 (version 1) has config [1], not an object"),
        ([update(1) | {"config": {"a:b": "x"}}], "entry 1 (version 1) has config.a:b \"x\", not an object"),
        ([update(1) | {"environment": {"git.head": 5}}], "entry 1 (version 1) has environment.git.head 5, not a string"),
        ([update(1) | {"result": None}], "entry 1 (version 1) has result null, not a string"),
    ],
)  # fmt: skip
def test_a_history_that_does_not_fit_is_refused_in_one_line(repo, pulumi, capsys, monkeypatch, history, problem):
    pulumi.history.write_text(json.dumps(history))
    code, _, err = rollback(capsys, monkeypatch, "--yes")
    assert code == cli.EXIT_UNAVAILABLE
    assert one_line_error(err) == (
        f"error: `pulumi stack history --json --stack {STACK}` printed a history this command cannot read: {problem} "
        "(fix: `pulumi version` should be 3.x; redeploy by hand as docs/operations.md 'Rolling back' says)"
    )
    assert pulumi.commands() == ["stack"]


def test_an_update_that_recorded_no_config_is_refused():
    for recorded in ({k: v for k, v in update(1).items() if k != "config"}, update(1) | {"config": {}}):
        with pytest.raises(RollbackRefused) as refused:
            plan_rollback([recorded, update(2)], "staging", to=1)
        assert str(refused.value) == (
            "--to 1: the update recorded no config, so the settings it ran with cannot be recovered "
            "(fix: choose another version with --to, or redeploy by hand as docs/operations.md 'Rolling back' says)"
        )


def test_an_interrupt_during_up_says_the_stack_may_be_partly_updated(repo, pulumi, tmp_path, capsys, monkeypatch):
    """Ctrl-C reaches the command, not pulumi (its own session): pulumi is sent one SIGINT, its
    graceful cancel, and waited for; the line says what may have happened and where to look."""
    path, first, second = repo
    pulumi.record(recorded_update(1, first, "db.t4g.medium"), recorded_update(2, second, "db.r6g.large"))
    monkeypatch.setenv("FAKE_PULUMI_WAIT", "up")

    def interrupting_print(*args, **kwargs):
        print_(*args, **kwargs)
        if args and str(args[0]).startswith("Updating"):
            raise KeyboardInterrupt

    print_ = print
    monkeypatch.setattr(pulumi_cli, "print", interrupting_print, raising=False)
    code, _, err = rollback(capsys, monkeypatch, "--yes")
    assert code == cli.EXIT_INTERRUPTED
    assert one_line_error(err) == (
        f"error: interrupted during `pulumi up` of version 1: the stack may be partly updated "
        f"(fix: `pulumi stack history --stack {STACK}` shows the update; `pulumi cancel --stack {STACK}` if it "
        "is still marked in progress; rerun the rollback, or fix forward)"
    )
    assert pulumi.calls()[-1] == {"interrupted": "up"}  # pulumi got its SIGINT and ended before the exit
    assert_no_worktree_left(path, tmp_path)


def test_an_interrupt_before_up_says_nothing_was_deployed(repo, pulumi, tmp_path, capsys, monkeypatch):
    path, first, second = repo
    pulumi.record(recorded_update(1, first, "db.t4g.medium"), recorded_update(2, second, "db.r6g.large"))
    monkeypatch.setattr(
        rollback_cli, "_confirmed", lambda _: (_ for _ in ()).throw(KeyboardInterrupt)
    )  # Ctrl-C at the question
    code, _, err = rollback(capsys, monkeypatch, answer="y\n")
    assert code == cli.EXIT_INTERRUPTED
    assert one_line_error(err) == "error: interrupted before `pulumi up`: nothing was deployed"
    assert_no_worktree_left(path, tmp_path)


@pytest.mark.parametrize(
    ("argv", "fix"),
    [
        (["rollback", "--stack", STACK, "--yes"], "install it, https://www.pulumi.com/docs/install/"),
        (["smoke", "--stack", STACK], "or give --api-url and --site-url"),
        (["verify", "--stack", STACK], "or use --dsn"),
        (["db", "migrate", "--stack", STACK], "or use --dsn"),
    ],
)
def test_no_pulumi_on_path_is_one_exit_code_everywhere(tmp_path, capsys, monkeypatch, argv, fix):
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing there
    monkeypatch.setenv("SWIPESAVVY_API_TOKEN", "t")
    monkeypatch.setenv("SWIPESAVVY_ADMIN_TOKEN", "a")
    code = cli.main(argv)
    _, err = capsys.readouterr()
    assert code == cli.EXIT_USAGE
    line = one_line_error(err)
    assert line.startswith("error: ") and "the Pulumi CLI, which is not on PATH (fix: " in line and fix in line


@pytest.mark.parametrize(("text", "problem"), [("config: [\n", "is not valid YAML"), ("- 1\n", "is not a mapping")])
def test_a_settings_file_at_the_commit_that_cannot_be_read_is_refused(
    repo, pulumi, tmp_path, capsys, monkeypatch, text, problem
):
    path, _, second = repo
    (path / "Pulumi.staging.yaml").write_text(text)
    git(path, "commit", "-q", "-am", "broken settings")
    broken = git(path, "rev-parse", "HEAD")
    pulumi.record(recorded_update(1, broken, "db.t4g.medium"), recorded_update(2, second, "db.r6g.large"))
    code, _, err = rollback(capsys, monkeypatch, "--yes")
    assert code == cli.EXIT_REFUSED
    assert one_line_error(err).startswith(f"error: --to 1: Pulumi.staging.yaml at {broken[:12]} {problem}")
    assert pulumi.commands() == ["stack"]
    assert_no_worktree_left(path, tmp_path)


# --- across a migration: the schema is forward-only -----------------------------------------------


@pytest.fixture
def migrated_repo(repo):
    """The repository of ``repo`` with a migration in each commit: the second adds 002, as a
    release that came with a migration; returns (path, first commit, second commit)."""
    path, _, _ = repo
    (path / "sql").mkdir()
    (path / "sql" / "001_first.sql").write_text("CREATE TABLE t (id int);\n")
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "first with a migration")
    first = git(path, "rev-parse", "HEAD")
    (path / "sql" / "002_second.sql").write_text("ALTER TABLE t ADD COLUMN c int;\n")
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "second, with its migration")
    return path, first, git(path, "rev-parse", "HEAD")


def test_a_rollback_past_a_migration_keeps_this_checkouts_sql(migrated_repo, pulumi, tmp_path, capsys, monkeypatch):
    """Version 1 ran before migration 002: the rollback deploys version 1's program and config
    with the migrations of this checkout, so its preview sees the ledger it would refuse
    otherwise ("002_second was applied but is missing from sql/") and changes no schema."""
    path, first, second = migrated_repo
    pulumi.record(recorded_update(1, first, "db.t4g.medium"), recorded_update(2, second, "db.r6g.large"))
    code, out, err = rollback(capsys, monkeypatch, answer="y\n")
    assert code == cli.EXIT_OK, err
    _, install, preview, up = pulumi.calls()
    for call in (preview, up):
        assert call["head"] == first
        assert call["sql"] == ["001_first.sql", "002_second.sql"]
        assert call["changes"] == "?? sql/002_second.sql"  # recorded as dirty: honest about what ran
    assert (
        f"keeping the schema: sql/ as in this checkout ({second[:12]}), 1 migration file(s) newer than {first[:12]}:"
        " 002_second.sql; migrations are forward-only, so the rollback restores the application and its config and"
        " leaves the database's schema as it is"
    ) in out.splitlines()
    message = up["args"][up["args"].index("--message") + 1]
    assert message == f"rollback to version 1 (commit {first[:12]}; sql/ kept from {second[:12]})"
    assert_no_worktree_left(path, tmp_path)


def test_a_rollback_that_kept_sql_points_a_later_rollback_to_the_version_it_redeployed():
    kept = {
        **update(3, dirty="true"),
        "message": f"rollback to version 1 (commit {GOOD[:12]}; sql/ kept from 0123abcd4567)",
    }
    with pytest.raises(RollbackRefused) as refused:
        plan_rollback([update(1), update(2), kept, update(4)], "staging", 3)
    assert str(refused.value) == (
        f"--to 3: the update ran from a dirty work tree at {GOOD[:12]}, so that commit is not what was deployed"
        " (fix: choose --to 1, the update it rolled back to)"
    )


def test_the_earlier_program_with_this_checkouts_sql_accepts_a_database_ahead_of_it(staging, rds_database, tmp_path):
    """A real database migrated by the current program; the program of a commit before the last
    migration (this project, that file removed), run by the engine as a rollback runs it: on
    its own sql/ the preview is refused; with the sql/ the rollback keeps, nothing changes."""
    from engine import ProviderError, PulumiEngine
    from pulumi_program import PROJECT_ROOT

    from dbops.migrations import load_migrations, migration_checksums

    old_project = tmp_path / "at-the-earlier-commit"
    for part in ("components", "dbops", "ops", "seed", "sql"):
        shutil.copytree(PROJECT_ROOT / part, old_project / part, ignore=shutil.ignore_patterns("__pycache__"))
    last = load_migrations()[-1]
    (old_project / "sql" / last.filename).unlink()

    rds = rds_database
    declared = next(r.inputs for r in staging.resources if r.name == "swipesavvy-db-schema")
    news = {**declared, "connection": rds.connection(), "database_id": "db-TEST/swipesavvy_staging"}
    news.pop("operator", None)
    news.pop("reader", None)
    current = PulumiEngine(rds.env, "urn:pulumi:staging::swipesavvy::dynamic:swipesavvy-db-schema")
    assert current.up(news) == "create"  # the database's ledger: every migration
    ledger = rds.query("SELECT name FROM swipesavvy_meta.schema_migrations ORDER BY name")

    earlier = PulumiEngine(rds.env, current.urn, cwd=old_project)
    earlier.state = current.state
    own_sql = {**news, "migrations": migration_checksums(load_migrations(old_project / "sql"))}
    with pytest.raises(ProviderError) as refused:
        earlier.preview(own_sql)
    assert f"{last.name}.sql was applied but is missing from sql/" in str(refused.value)

    assert rollback_cli.keep_current_schema(old_project, PROJECT_ROOT) == [last.filename]
    kept_sql = {**news, "migrations": migration_checksums(load_migrations(old_project / "sql"))}
    assert earlier.up(kept_sql) == "same"
    assert rds.query("SELECT name FROM swipesavvy_meta.schema_migrations ORDER BY name") == ledger


# --- rotation counters never go back -------------------------------------------------------------


def test_a_rollback_keeps_each_rotation_counter_at_the_stacks_newest_value():
    """A lower counter would generate a new password for the slot the instances use (README
    "Secrets"); a section without the counter is left as recorded (its program may not know it)."""
    config = {"swipesavvy:database": {"instanceClass": "db.t4g.medium", "credentialRotation": 1}, "aws:region": "x"}
    newest = {
        "swipesavvy:database": {"objectValue": {"credentialRotation": 3}},
        "swipesavvy:backend": {"objectValue": {"apiTokenRotation": 2}},
    }
    assert keep_counters(config, newest) == ["swipesavvy:database.credentialRotation: 1 -> 3"]
    assert config == {
        "swipesavvy:database": {"instanceClass": "db.t4g.medium", "credentialRotation": 3},
        "aws:region": "x",
    }
    assert keep_counters(config, {"swipesavvy:database": {"objectValue": {"credentialRotation": 2}}}) == []


def test_a_rollback_past_a_rotation_deploys_the_newest_counter(repo, pulumi, capsys, monkeypatch):
    path, first, second = repo
    before, after = recorded_update(1, first, "db.t4g.medium"), recorded_update(2, second, "db.r6g.large")
    for entry, rotation in ((before, 0), (after, 1)):
        database = {**entry["config"]["swipesavvy:database"]["objectValue"], "credentialRotation": rotation}
        entry["config"]["swipesavvy:database"] = {
            "value": json.dumps(database),
            "objectValue": database,
            "secret": False,
        }
    pulumi.record(before, after)
    code, out, err = rollback(capsys, monkeypatch, "--yes")
    assert code == cli.EXIT_OK, err
    up = pulumi.calls()[-1]
    assert yaml.safe_load(up["config_file"])["config"]["swipesavvy:database"] == {
        "instanceClass": "db.t4g.medium",
        "multiAz": False,
        "credentialRotation": 1,
    }
    assert (
        "keeping the rotation counter at the stack's newest value: swipesavvy:database.credentialRotation: 0 -> 1"
        " (it never goes back)"
    ) in out.splitlines()
