"""``python -m ops pending``: an interrupted update's pending creates (a job cancelled during the
RDS create) and the refresh that resolves each, against a fake ``pulumi`` first on PATH
(tests/fake_pulumi.py replays a ``pulumi stack export`` checkpoint)."""

from __future__ import annotations

import json

import pytest
from fake_pulumi import put_on_path

from ops import cli
from ops.command import EXIT_FAILED, EXIT_OK, EXIT_UNAVAILABLE
from ops.live.pending_creates import PendingCreate, pending_creates

STACK = "staging"
INSTANCE_URN = (
    "urn:pulumi:staging::swipesavvy::pulumi:pulumi:Stack$swipesavvy:database:Database$aws:rds/instance:Instance"
    "::swipesavvy-db-postgres"
)
BUCKET_URN = "urn:pulumi:staging::swipesavvy::aws:s3/bucket:Bucket::swipesavvy-frontend-logs"


def checkpoint(*operations: dict) -> dict:
    """``pulumi stack export`` as apitype.UntypedDeployment (version 3) serializes it."""
    return {
        "version": 3,
        "deployment": {
            "manifest": {"time": "2026-12-06T19:02:11Z", "magic": "", "version": "v3.272.0"},
            "resources": [{"urn": "urn:pulumi:staging::swipesavvy::pulumi:pulumi:Stack::swipesavvy-staging"}],
            **({"pending_operations": list(operations)} if operations else {}),
        },
    }


def creating(urn: str, typ: str, inputs: dict) -> dict:
    return {"resource": {"urn": urn, "custom": True, "type": typ, "inputs": inputs}, "type": "creating"}


RDS_CREATE = creating(INSTANCE_URN, "aws:rds/instance:Instance", {"engine": "postgres", "tags": {"stack": STACK}})
REVIEW_CREATE = creating(
    INSTANCE_URN.replace("staging", "pr-42"), "aws:rds/instance:Instance", {"identifier": "swipesavvy-pr-42-postgres"}
)


def test_only_creates_are_pending_creates():
    updating = {**creating(BUCKET_URN, "aws:s3/bucket:Bucket", {}), "type": "updating"}
    assert pending_creates(checkpoint(RDS_CREATE, updating)) == [
        PendingCreate(INSTANCE_URN, "aws:rds/instance:Instance", "swipesavvy-db-postgres", None)
    ]
    assert pending_creates(checkpoint(REVIEW_CREATE))[0].known_id == "swipesavvy-pr-42-postgres"
    assert pending_creates(checkpoint()) == []


@pytest.fixture
def fake(tmp_path, monkeypatch):
    put_on_path(tmp_path / "bin", monkeypatch)
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("FAKE_PULUMI_LOG", str(log))

    def exported(document) -> list[dict]:
        path = tmp_path / "export.json"
        path.write_text(document if isinstance(document, str) else json.dumps(document))
        monkeypatch.setenv("FAKE_PULUMI_EXPORT", str(path))
        return log

    return exported


def calls(log) -> list[list[str]]:
    return [json.loads(line)["args"] for line in log.read_text().splitlines()]


def test_a_cancelled_rds_create_is_named_with_how_to_look_and_both_refreshes(fake, capsys):
    log = fake(checkpoint(RDS_CREATE))
    assert cli.main(["pending", "--stack", STACK]) == EXIT_FAILED
    assert capsys.readouterr().out.splitlines() == [
        "stack staging has 1 pending create(s) from an interrupted update:",
        "- aws:rds/instance:Instance swipesavvy-db-postgres: did its create finish? Look: aws rds"
        " describe-db-instances --query \"DBInstances[?TagList[?Key=='stack' && Value=='staging']]"
        '.[DBInstanceIdentifier,DBInstanceStatus]" --output text',
        f"  it exists: pulumi refresh --stack staging --yes --non-interactive --import-pending-creates"
        f" '{INSTANCE_URN} <ID>'",
        "  it does not: pulumi refresh --stack staging --yes --non-interactive --clear-pending-creates",
        "then: pulumi up --refresh --stack staging (`python -m ops pending --stack staging` says none left)",
    ]
    assert calls(log) == [["stack", "export", "--stack", STACK]]  # read-only: nothing else is run


def test_a_review_stacks_instance_has_its_id_in_the_import_command(fake, capsys):
    fake(checkpoint(REVIEW_CREATE))
    assert cli.main(["pending", "--stack", "pr-42"]) == EXIT_FAILED
    out = capsys.readouterr().out
    assert f"--import-pending-creates '{INSTANCE_URN.replace('staging', 'pr-42')} swipesavvy-pr-42-postgres'\n" in out


def test_after_the_refresh_none_is_left(fake, capsys):
    fake(checkpoint())
    assert cli.main(["pending", "--stack", STACK]) == EXIT_OK
    assert capsys.readouterr().out == "stack staging has no pending creates\n"


def test_an_export_that_is_not_json_is_one_line(fake, capsys):
    fake("<html>")
    assert cli.main(["pending", "--stack", STACK]) == EXIT_UNAVAILABLE
    assert capsys.readouterr().err == ("error: `pulumi stack export --stack staging` did not print a JSON object\n")
