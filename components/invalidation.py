"""``CloudFrontInvalidation``: clear a distribution's cache when the site's release changes.

pulumi-aws has no invalidation resource. This one invalidates when it is created and when
its ``release`` (components/app/site_files.py ``release_digest``) changes, never on a run
that changes nothing. It invalidates ``/*``: one path, whatever the number of files (the
first 1,000 paths a month are free, a wildcard counts as one), and right for deleted files
and changed headers too, which a list of changed keys would need the previous release for.
A new ``distribution_id`` alone is only recorded: a new distribution has nothing cached.
Deleting it does nothing: an invalidation cannot be undone.

The CallerReference is ``<release>-<n>``, n counting this resource's invalidations: a
retried create or update (same state, same inputs) sends the same reference, which
CloudFront answers with the invalidation it already made instead of a new one; a return
to an earlier release (a rollback) is a new n, so it is invalidated again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3
import pulumi
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from pulumi.dynamic import CreateResult, DiffResult, Resource, ResourceProvider, UpdateResult

from components.dynamic import changed
from dbops.aws_credentials import credentials_problem

ALL_PATHS = ["/*"]
INPUTS = ("distribution_id", "release", "paths")
OUTPUT_KEYS = ("invalidation_id", "caller_reference", "invalidations")
CLOUDFRONT_REGION = "us-east-1"  # CloudFront's API is global, served from us-east-1


class InvalidationFailed(Exception):
    """One line: which distribution, and why (missing AWS credentials say how to provide them)."""


def _invalidate(props: Mapping[str, Any], number: int) -> dict[str, Any]:
    """Create the invalidation number ``number`` of this resource; its outputs."""
    reference = f"{props['release']}-{number}"
    paths = list(props["paths"])
    try:
        client = boto3.client("cloudfront", region_name=CLOUDFRONT_REGION, config=Config(retries={"mode": "standard"}))
        invalidation = client.create_invalidation(
            DistributionId=props["distribution_id"],
            InvalidationBatch={"Paths": {"Quantity": len(paths), "Items": paths}, "CallerReference": reference},
        )["Invalidation"]
    except (BotoCoreError, ClientError) as error:
        problem = credentials_problem(error)
        if problem is None:
            raise
        raise InvalidationFailed(
            f"cannot invalidate CloudFront distribution {props['distribution_id']}: {problem}"
        ) from None
    print(f"CloudFrontInvalidation: {props['distribution_id']} {' '.join(paths)} ({invalidation['Id']})")
    return {"invalidation_id": invalidation["Id"], "caller_reference": reference, "invalidations": number}


class CloudFrontInvalidationProvider(ResourceProvider):
    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return DiffResult(changes=any(changed(olds, news, key) for key in INPUTS), replaces=[])

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_=props["distribution_id"], outs={**props, **_invalidate(props, 1)})

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        kept = {key: olds[key] for key in OUTPUT_KEYS}
        if olds["release"] == news["release"]:
            return UpdateResult(outs={**news, **kept})
        # The engine hands numbers back as doubles: 1.0 would make the reference "<release>-2.0".
        return UpdateResult(outs={**news, **_invalidate(news, int(kept["invalidations"]) + 1)})


@dataclass
class CloudFrontInvalidationArgs:
    distribution_id: pulumi.Input[str]
    release: str
    """The release digest of the files the distribution serves."""
    paths: list[str] = field(default_factory=lambda: list(ALL_PATHS))


class CloudFrontInvalidation(Resource, module="cdn", name="CloudFrontInvalidation"):
    invalidation_id: pulumi.Output[str]
    caller_reference: pulumi.Output[str]

    def __init__(self, name: str, args: CloudFrontInvalidationArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(
            CloudFrontInvalidationProvider(),
            name,
            {
                "distribution_id": args.distribution_id,
                "release": args.release,
                "paths": args.paths,
                **dict.fromkeys(OUTPUT_KEYS),
            },
            opts,
        )
