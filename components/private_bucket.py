"""Private S3 buckets: the backend's release artifacts, the site's files and its logs.

A bucket nobody reaches without a policy saying so: all four public-access blocks,
owner-enforced object ownership (no ACLs), default encryption, versioning, and a lifecycle
rule for old versions and abandoned uploads; policies always refuse requests without TLS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

NONCURRENT_VERSION_DAYS = 30  # how long an overwritten object stays restorable
ABORT_UPLOAD_DAYS = 7


@dataclass
class PrivateBucket:
    name: str
    bucket: aws.s3.Bucket
    public_access_block: aws.s3.BucketPublicAccessBlock
    opts: pulumi.ResourceOptions
    region: str | None


def private_bucket(
    name: str,
    opts: pulumi.ResourceOptions,
    tags: dict,
    *,
    expiration_days: int | None,
    force_destroy: bool,
    region: str | None,
) -> PrivateBucket:
    """A bucket nobody reaches without a policy saying so: no public access, no ACLs,
    encrypted, versioned, old versions and abandoned uploads cleaned up."""
    bucket = aws.s3.Bucket(name, force_destroy=force_destroy, region=region, tags=tags, opts=opts)
    public_access_block = aws.s3.BucketPublicAccessBlock(
        name,
        bucket=bucket.id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
        region=region,
        opts=opts,
    )
    aws.s3.BucketOwnershipControls(
        name, bucket=bucket.id, rule={"object_ownership": "BucketOwnerEnforced"}, region=region, opts=opts
    )
    aws.s3.BucketServerSideEncryptionConfiguration(
        name,
        bucket=bucket.id,
        rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}],
        region=region,
        opts=opts,
    )
    versioning = aws.s3.BucketVersioning(
        name, bucket=bucket.id, versioning_configuration={"status": "Enabled"}, region=region, opts=opts
    )
    rule: dict[str, Any] = {
        "id": "expire-old-versions-and-abandoned-uploads",
        "status": "Enabled",
        "filter": {},
        "noncurrent_version_expiration": {"noncurrent_days": NONCURRENT_VERSION_DAYS},
        "abort_incomplete_multipart_upload": {"days_after_initiation": ABORT_UPLOAD_DAYS},
    }
    if expiration_days:
        rule["expiration"] = {"days": expiration_days}
    aws.s3.BucketLifecycleConfiguration(
        name,
        bucket=bucket.id,
        rules=[rule],
        region=region,
        # Noncurrent-version rules act on a versioned bucket: versioning first.
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[versioning])),
    )
    return PrivateBucket(name, bucket, public_access_block, opts, region)


def bucket_policy(target: PrivateBucket, *grants: dict[str, Any]) -> aws.s3.BucketPolicy:
    """``grants``, and a refusal of any request without TLS."""
    bucket = target.bucket
    deny_plain_http = {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [bucket.arn, pulumi.Output.concat(bucket.arn, "/*")],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    return aws.s3.BucketPolicy(
        target.name,
        bucket=bucket.id,
        policy=pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": [*grants, deny_plain_http]}),
        region=target.region,
        # The bucket is private before any policy lands on it.
        opts=pulumi.ResourceOptions.merge(target.opts, pulumi.ResourceOptions(depends_on=[target.public_access_block])),
    )
