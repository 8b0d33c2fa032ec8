"""``PrivateBucket``: an S3 bucket nobody outside the account can read, with its safeguards.

All four public-access blocks, owner-enforced object ownership (no ACLs), default
encryption, versioning, and a lifecycle rule that expires old versions and abandoned
multipart uploads. Used for the backend's release artifacts and the site's files and logs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws


@dataclass
class PrivateBucketArgs:
    purpose: str
    """What it holds, for its tags and description."""
    tags: Mapping[str, str]
    noncurrent_days: int = 30
    """Days an overwritten or deleted object's old version is kept (a rollback window)."""
    expire_days: int | None = None
    """Days current objects are kept (log buckets); None keeps them."""


class PrivateBucket(pulumi.ComponentResource):
    bucket: aws.s3.Bucket
    id: pulumi.Output[str]
    arn: pulumi.Output[str]
    regional_domain_name: pulumi.Output[str]

    def __init__(self, name: str, args: PrivateBucketArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("swipesavvy:storage:PrivateBucket", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        bucket = aws.s3.Bucket(name, tags={**args.tags, "purpose": args.purpose}, opts=child)
        aws.s3.BucketPublicAccessBlock(
            name,
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        aws.s3.BucketOwnershipControls(
            name, bucket=bucket.id, rule={"object_ownership": "BucketOwnerEnforced"}, opts=child
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            name,
            bucket=bucket.id,
            rules=[
                {"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}, "bucket_key_enabled": True}
            ],
            opts=child,
        )
        versioning = aws.s3.BucketVersioning(
            name, bucket=bucket.id, versioning_configuration={"status": "Enabled"}, opts=child
        )
        rule = {
            "id": "expire-old-versions",
            "status": "Enabled",
            "filter": {},
            "noncurrent_version_expiration": {"noncurrent_days": args.noncurrent_days},
            "abort_incomplete_multipart_upload": {"days_after_initiation": 7},
        }
        if args.expire_days is not None:
            rule["expiration"] = {"days": args.expire_days}
        aws.s3.BucketLifecycleConfiguration(
            name,
            bucket=bucket.id,
            rules=[rule],
            # Lifecycle rules on versions need versioning first.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[versioning]),
        )
        self.bucket = bucket
        self.id, self.arn = bucket.id, bucket.arn
        self.regional_domain_name = bucket.bucket_regional_domain_name
        self.register_outputs({"id": self.id, "arn": self.arn})
