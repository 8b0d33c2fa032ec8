"""ops/live/orphans.py: which review stacks outlived their pull request (the nightly sweep,
.github/workflows/review-orphans.yml, destroys them); only GitHub's CLOSED or MERGED selects."""

from __future__ import annotations

import json

import pytest

from ops import cli
from ops.command import EXIT_OK, EXIT_USAGE
from ops.live.orphans import decision_lines, orphaned, review_stack_prs


def test_only_pr_stacks_count_whatever_the_name_is_qualified_with():
    stacks = [
        {"name": "staging"},
        {"name": "acme/production"},
        {"name": "acme/swipesavvy/pr-7"},
        {"name": "acme/pr-12"},
        {"name": "pr-3"},
        {"name": "acme/pr-0"},
        {"name": "acme/pr-12a"},
        {"name": "acme/xpr-5"},
        {},
    ]
    assert review_stack_prs(stacks) == [3, 7, 12]


@pytest.mark.parametrize(
    ("state", "selected", "line"),
    [
        ("CLOSED", [4], "pr-4: pull request closed: destroy"),
        ("MERGED", [4], "pr-4: pull request merged: destroy"),
        ("OPEN", [], "pr-4: pull request open: kept"),
        (None, [], "pr-4: pull request state unknown: kept (the next run tries again)"),
        ("DRAFT", [], "pr-4: pull request draft: kept"),
    ],
)
def test_only_an_ended_pull_request_selects_its_stack(state, selected, line):
    assert orphaned([4], {4: state}) == selected
    assert decision_lines([4], {4: state}) == [line]


def test_the_command_without_gh_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no gh
    stacks = tmp_path / "stacks.json"
    stacks.write_text(json.dumps([{"name": "acme/pr-4"}]))
    assert cli.main(["review-orphans", "--stacks", str(stacks)]) == EXIT_USAGE
    assert capsys.readouterr().err == "error: review-orphans reads pull requests with gh, which is not on PATH\n"


def test_no_review_stack_selects_nothing(tmp_path, capsys):
    stacks = tmp_path / "stacks.json"
    stacks.write_text(json.dumps([{"name": "acme/staging"}]))
    assert cli.main(["review-orphans", "--stacks", str(stacks)]) == EXIT_OK
    assert capsys.readouterr() == ("[]\n", "")


def test_a_stack_list_that_is_not_a_list_is_one_line(tmp_path, capsys):
    stacks = tmp_path / "stacks.json"
    stacks.write_text("{}")
    assert cli.main(["review-orphans", "--stacks", str(stacks)]) == EXIT_USAGE
    assert capsys.readouterr().err == (
        f"error: --stacks {stacks} is not a JSON list (fix: pulumi stack ls --json >{stacks})\n"
    )
