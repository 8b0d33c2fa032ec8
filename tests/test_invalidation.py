"""``CloudFrontInvalidation`` against CloudFront served by moto (the ``secrets_manager``
fixture's server), called directly and driven as the engine drives it (tests/engine.py):
one invalidation per new release, none on a run that changes nothing, the same
CallerReference on a retry, a new one on a rollback.

moto records every CreateInvalidation; CloudFront does not: "If you make a second
invalidation request with the same value for CallerReference, and if the rest of the
request is the same, CloudFront doesn't create a new invalidation request" (CloudFront API
reference, InvalidationBatch). The ``cloudfront`` fixture gives moto that rule, so the
tests show what a retry costs on CloudFront.
"""

from __future__ import annotations

import uuid

import boto3
import pulumi
import pytest
from engine import DIFF_NONE, DIFF_SOME, PulumiEngine
from moto.cloudfront.exceptions import CloudFrontException
from moto.cloudfront.models import CloudFrontBackend
from pulumi.runtime.rpc import UNKNOWN
from pulumi.runtime.settings import ROOT as ROOT_RESOURCE
from pulumi_program import PROJECT_ROOT, RecordingMocks, RecordingMonitor

from components.app.site_files import release_digest, site_files
from components.invalidation import (
    CloudFrontInvalidation,
    CloudFrontInvalidationArgs,
    CloudFrontInvalidationProvider,
)

RELEASE_A = release_digest(site_files(PROJECT_ROOT / "examples" / "frontend-dist"))
RELEASE_B = "b" * 64
TYPE = "pulumi-python:dynamic/cdn:CloudFrontInvalidation"


class CloudFront:
    """A distribution in moto and what was done to its cache."""

    def __init__(self) -> None:
        self.client = boto3.client("cloudfront", region_name="us-east-1")
        self.distribution_id = self.client.create_distribution(
            DistributionConfig={
                "CallerReference": uuid.uuid4().hex,
                "Comment": "swipesavvy test site",
                "Enabled": True,
                "Origins": {
                    "Quantity": 1,
                    "Items": [
                        {
                            "Id": "s3",
                            "DomainName": "swipesavvy-site.s3.us-east-1.amazonaws.com",
                            "S3OriginConfig": {"OriginAccessIdentity": ""},
                        }
                    ],
                },
                "DefaultCacheBehavior": {"TargetOriginId": "s3", "ViewerProtocolPolicy": "redirect-to-https"},
            }
        )["Distribution"]["Id"]

    def invalidations(self) -> list[tuple[str, list[str]]]:
        """(CallerReference, paths) of each invalidation, oldest first."""
        listed = self.client.list_invalidations(DistributionId=self.distribution_id)["InvalidationList"]
        batches = [
            self.client.get_invalidation(DistributionId=self.distribution_id, Id=item["Id"])["Invalidation"][
                "InvalidationBatch"
            ]
            for item in listed.get("Items", [])
        ]
        return [(batch["CallerReference"], batch["Paths"]["Items"]) for batch in batches]


class InvalidationBatchAlreadyExists(CloudFrontException):
    def __init__(self) -> None:
        super().__init__("InvalidationBatchAlreadyExists", "The CallerReference was used with other paths")


@pytest.fixture
def cloudfront(secrets_manager, monkeypatch) -> CloudFront:
    create = CloudFrontBackend.create_invalidation

    def create_once_per_caller_reference(backend, dist_id, paths, caller_ref):
        for existing in backend.invalidations.get(dist_id, []):
            if existing.caller_ref == caller_ref:
                if existing.paths != paths:
                    raise InvalidationBatchAlreadyExists()
                return existing
        return create(backend, dist_id, paths, caller_ref)

    # The moto server runs in this process (a thread), so the provider processes see this too.
    monkeypatch.setattr(CloudFrontBackend, "create_invalidation", create_once_per_caller_reference)
    return CloudFront()


def declared_inputs(distribution_id: str) -> dict:
    """The inputs a CloudFrontInvalidation registers, ``__provider`` included (a secret)."""
    mocks = RecordingMocks()
    ROOT_RESOURCE.set(None)
    pulumi.runtime.set_mocks(mocks, project="swipesavvy", stack="staging", monitor=RecordingMonitor(mocks))

    @pulumi.runtime.test
    def program():
        CloudFrontInvalidation(
            "swipesavvy-frontend-invalidation",
            CloudFrontInvalidationArgs(distribution_id=distribution_id, release=RELEASE_A),
        )

    program()
    (registered,) = [r for r in mocks.resources if r.typ == TYPE]
    return registered.inputs


def test_declared_inputs():
    inputs = declared_inputs("E2QWRUHAPOMQZL")
    assert {k: v for k, v in inputs.items() if k != "__provider"} == {
        "distribution_id": "E2QWRUHAPOMQZL",
        "release": RELEASE_A,
        "paths": ["/*"],
    }
    assert "__provider" in inputs


def test_direct_calls_invalidate_once_per_release(cloudfront):
    provider = CloudFrontInvalidationProvider()
    props = {"distribution_id": cloudfront.distribution_id, "release": RELEASE_A, "paths": ["/*"]}

    created = provider.create(props)
    state = created.outs
    assert created.id == cloudfront.distribution_id
    assert state["caller_reference"] == f"{RELEASE_A}-1"
    assert state["invalidations"] == 1
    assert cloudfront.invalidations() == [(f"{RELEASE_A}-1", ["/*"])]

    # A retried create (the engine lost the answer) sends the same reference: nothing new.
    assert provider.create(props).outs["invalidation_id"] == state["invalidation_id"]
    assert len(cloudfront.invalidations()) == 1

    # The next run with the same release: no change, and an update would do nothing either.
    assert provider.diff(created.id, state, props).changes is False
    same = provider.update(created.id, state, {**props})
    assert same.outs["invalidation_id"] == state["invalidation_id"]
    assert len(cloudfront.invalidations()) == 1

    release_b = {**props, "release": RELEASE_B}
    assert provider.diff(created.id, state, release_b).changes is True
    state = provider.update(created.id, state, release_b).outs
    assert state["caller_reference"] == f"{RELEASE_B}-2"
    assert cloudfront.invalidations()[-1] == (f"{RELEASE_B}-2", ["/*"])

    # Back to release A (a rollback): invalidated again, not answered with the first one.
    state = provider.update(created.id, state, props).outs
    assert [ref for ref, _ in cloudfront.invalidations()] == [f"{RELEASE_A}-1", f"{RELEASE_B}-2", f"{RELEASE_A}-3"]

    # Only recorded: a new distribution has nothing cached; other paths, same release.
    for recorded in ({**props, "distribution_id": "E0THERDISTRIBUTION"}, {**props, "paths": ["/index.html"]}):
        assert provider.diff(created.id, state, recorded).changes is True
        assert provider.update(created.id, state, recorded).outs["invalidations"] == 3
    assert len(cloudfront.invalidations()) == 3

    provider.delete(created.id, state)
    assert len(cloudfront.invalidations()) == 3


def test_through_the_engine(cloudfront, secrets_manager):
    news = {**declared_inputs("unused"), "distribution_id": cloudfront.distribution_id}
    engine = PulumiEngine(secrets_manager, f"urn:pulumi:staging::swipesavvy::{TYPE}::swipesavvy-frontend-invalidation")

    # The first preview of a new stack: the distribution does not exist yet.
    assert engine.preview({**news, "distribution_id": UNKNOWN}) is None
    assert cloudfront.invalidations() == []

    assert engine.up(news) == "create"
    assert engine.state.id == cloudfront.distribution_id
    assert engine.state.outputs["caller_reference"] == f"{RELEASE_A}-1"
    assert cloudfront.invalidations() == [(f"{RELEASE_A}-1", ["/*"])]

    # The second `pulumi up` of the same build: no change, no invalidation.
    assert engine.preview(news).changes == DIFF_NONE
    assert engine.up(news) == "same"
    assert len(cloudfront.invalidations()) == 1

    # A preview that replaces the distribution does not know its id: a change.
    assert engine.preview({**news, "distribution_id": UNKNOWN}).changes == DIFF_SOME

    # A new release, then a rollback: each one invalidation. The count comes back from
    # state as a double (2.0); the reference must still read "-3".
    assert engine.up({**news, "release": RELEASE_B}) == "update"
    assert engine.up(news) == "update"
    assert [ref for ref, _ in cloudfront.invalidations()] == [f"{RELEASE_A}-1", f"{RELEASE_B}-2", f"{RELEASE_A}-3"]
    assert engine.state.outputs["invalidations"] == 3
    assert engine.up(news) == "same"

    engine.destroy()
    assert len(cloudfront.invalidations()) == 3
