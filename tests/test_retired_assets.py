"""``RetiredSiteAssets`` against S3 served by moto (the ``secrets_manager`` fixture's server),
driven as the engine drives it (tests/engine.py): a release's hashed files stay in the bucket
after the release that dropped them, and go once ``keep_days`` have passed."""

from __future__ import annotations

import uuid

import boto3
import pytest
from engine import DIFF_NONE, DIFF_SOME, PulumiEngine
from pulumi_program import run_program, stack_config

TYPE = "pulumi-python:dynamic/cdn:RetiredSiteAssets"
OLD, NEW, SHARED = "assets/app.1a2b3c4d.js", "assets/app.9c8d7e6f.js", "assets/app.3f9c1a2b.css"


@pytest.fixture
def bucket(secrets_manager) -> str:
    name = f"swipesavvy-site-{uuid.uuid4().hex[:8]}"
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    for key in (OLD, NEW, SHARED):
        s3.put_object(Bucket=name, Key=key, Body=b"chunk")
    return name


def served(bucket: str) -> list[str]:
    """The keys a GET without a version answers (a delete marker hides the others)."""
    listed = boto3.client("s3", region_name="us-east-1").list_objects_v2(Bucket=bucket)
    return sorted(item["Key"] for item in listed.get("Contents", []))


@pytest.fixture(scope="module")
def declared() -> dict:
    return run_program(stack_config("staging")).of_name(TYPE, "swipesavvy-frontend-retired-assets").inputs


def test_through_the_engine(bucket, declared, secrets_manager):
    release_1 = {**declared, "bucket": bucket, "assets": [OLD, SHARED]}
    release_2 = {**release_1, "assets": [NEW, SHARED]}
    engine = PulumiEngine(
        secrets_manager, f"urn:pulumi:staging::swipesavvy::{TYPE}::swipesavvy-frontend-retired-assets"
    )

    assert engine.up(release_1) == "create"
    assert engine.state.outputs["retired"] == {}
    assert engine.preview(release_1).changes == DIFF_NONE  # nothing retired, nothing due

    # The next release drops OLD: it stays served, remembered with the time it left.
    assert engine.up(release_2) == "update"
    assert served(bucket) == sorted([OLD, NEW, SHARED])
    (left,) = engine.state.outputs["retired"].values()
    assert list(engine.state.outputs["retired"]) == [OLD]
    assert engine.up(release_2) == "same"  # within its 7 days: nothing to do
    assert served(bucket) == sorted([OLD, NEW, SHARED])

    # Once its time has passed (here: keep_days 0), the next update deletes it.
    expired = {**release_2, "keep_days": 0}
    assert engine.preview(expired).changes == DIFF_SOME
    assert engine.up(expired) == "update"
    assert served(bucket) == sorted([NEW, SHARED])
    assert engine.state.outputs["retired"] == {}
    assert left.endswith("+00:00")  # recorded in UTC

    engine.destroy()
    assert served(bucket) == sorted([NEW, SHARED])  # the bucket's files are the bucket's to delete


def test_a_rollback_brings_a_retired_file_back_into_the_release(bucket, declared, secrets_manager):
    release_1 = {**declared, "bucket": bucket, "assets": [OLD, SHARED]}
    engine = PulumiEngine(
        secrets_manager, f"urn:pulumi:staging::swipesavvy::{TYPE}::swipesavvy-frontend-retired-assets"
    )
    engine.up(release_1)
    engine.up({**release_1, "assets": [NEW, SHARED]})
    assert list(engine.state.outputs["retired"]) == [OLD]
    assert engine.up(release_1) == "update"  # back to release 1: OLD is served again, NEW is kept
    assert list(engine.state.outputs["retired"]) == [NEW]
    assert served(bucket) == sorted([OLD, NEW, SHARED])
