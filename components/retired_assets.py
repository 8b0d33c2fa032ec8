"""``RetiredSiteAssets``: a release's hashed files stay in the site bucket for ``keep_days``
after the release that dropped them, then go.

A browser that loaded the previous ``index.html`` still asks for that release's lazy chunks
(``assets/chunk-3f9c1a2b.js``); deleted with the release they would be 403s (CloudFront
reads the bucket through OAC, without ListBucket) until the page is reloaded. So the site's
hashed objects are declared with ``retain_on_delete`` (components/app/frontend.py): a release
that drops one leaves the object in place, and this resource remembers when it left
(``retired``: key -> ISO time) and deletes it at the first update at least ``keep_days``
later. The rules are ``site_files.retirements``; a diff is due when the release's hashed
keys change or a retired one has expired, so a run that changes nothing calls nothing.
On a versioned bucket the delete leaves a delete marker: the object's data expires with the
bucket's other noncurrent versions. Deleting this resource deletes nothing: the bucket
(``force_destroy``) takes its objects with it when the stack goes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pulumi
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from pulumi.dynamic import CreateResult, DiffResult, Resource, ResourceProvider, UpdateResult

from components.app.site_files import retirements
from components.dynamic import changed, is_unknown
from dbops.aws_credentials import credentials_problem

INPUTS = ("bucket", "region", "assets", "keep_days")
DELETE_BATCH = 1000  # S3 DeleteObjects takes at most 1,000 keys


class AssetDeleteFailed(Exception):
    """One line: which bucket, and why."""


def _now() -> datetime:
    return datetime.now(UTC)


def _delete(props: Mapping[str, Any], keys: list[str]) -> None:
    try:
        client = boto3.client("s3", region_name=props["region"], config=Config(retries={"mode": "standard"}))
        for start in range(0, len(keys), DELETE_BATCH):
            batch = keys[start : start + DELETE_BATCH]
            answer = client.delete_objects(
                Bucket=props["bucket"], Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True}
            )
            if answer.get("Errors"):
                first = answer["Errors"][0]
                raise AssetDeleteFailed(
                    f"cannot delete retired site file {first['Key']} from {props['bucket']}: {first['Code']}"
                )
    except (BotoCoreError, ClientError) as error:
        problem = credentials_problem(error) or str(error)
        raise AssetDeleteFailed(f"cannot delete retired site files from {props['bucket']}: {problem}") from None
    print(f"RetiredSiteAssets: deleted {len(keys)} retired file(s) from {props['bucket']}: {' '.join(keys)}")


def _expired(retired: Mapping[str, str], keep_days: float) -> bool:
    deadline = _now() - timedelta(days=keep_days)
    return any(datetime.fromisoformat(left) <= deadline for left in retired.values())


class RetiredSiteAssetsProvider(ResourceProvider):
    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        due = any(changed(olds, news, key) for key in INPUTS)
        if not due and not is_unknown(news.get("keep_days")):
            due = _expired(olds.get("retired") or {}, float(news["keep_days"]))
        return DiffResult(changes=due, replaces=[])

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_=props["bucket"], outs={**props, "retired": {}})

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        if olds["bucket"] != news["bucket"]:  # a new bucket: the old one goes with its files
            return UpdateResult(outs={**news, "retired": {}})
        retired, expired = retirements(
            olds["assets"], olds.get("retired") or {}, news["assets"], _now(), int(news["keep_days"])
        )
        if expired:
            _delete(news, expired)
        return UpdateResult(outs={**news, "retired": retired})


@dataclass
class RetiredSiteAssetsArgs:
    bucket: pulumi.Input[str]
    region: pulumi.Input[str]
    assets: list[str]
    """The hashed keys of the release being deployed."""
    keep_days: int


class RetiredSiteAssets(Resource, module="cdn", name="RetiredSiteAssets"):
    retired: pulumi.Output[dict]

    def __init__(self, name: str, args: RetiredSiteAssetsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(
            RetiredSiteAssetsProvider(),
            name,
            {
                "bucket": args.bucket,
                "region": args.region,
                "assets": sorted(args.assets),
                "keep_days": args.keep_days,
                "retired": None,
            },
            opts,
        )
