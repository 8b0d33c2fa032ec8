"""``StaticSite``: the reporting dashboard (runbook phase 4), a static build on S3 behind CloudFront.

- Site bucket: private (all four public-access blocks, owner-enforced objects, no ACLs),
  AES256 encryption, versioning; old versions expire after 30 days. Only the distribution
  reads it, through an Origin Access Control (SigV4), and only over TLS.
- Build: one object per file (components/app/site_files.py), so ``pulumi preview`` lists
  exactly the changed files; when the release changes, CloudFront's cache is invalidated
  after the upload (components/invalidation.py). Hashed files a release drops stay for
  ``RETIRED_ASSETS_KEEP_DAYS`` for pages opened before it (components/retired_assets.py).
- Distribution: HTTPS only (HTTP is redirected), compressed, security headers on every
  response (HSTS two years with subdomains, nosniff, frame DENY, a referrer policy), from
  the stack's own response-headers policy or, with ``existingResponseHeadersPolicyId``
  (review stacks), staging's: the policies are an account-wide quota. Routes
  of the single-page app (paths without a file extension) are answered with index.html by
  a viewer-request CloudFront Function on the default behaviour only, so ``/api/*`` errors
  stay API errors (distribution-wide custom error responses would turn them into pages).
- ``/api/*`` (when ``api`` is given): forwarded, uncached, with all methods, viewer headers,
  cookies and query strings, to the backend's internal load balancer, unchanged (Express
  serves ``/api/...``), through a CloudFront VPC origin: CloudFront reaches it inside the
  VPC over AWS's network, so no shared secret is needed and nothing else can reach it.
- Access logs: CloudFront standard logging v2 (CloudWatch log delivery) into a log bucket
  with the same protections. Legacy logging writes through ACLs, which an owner-enforced
  bucket refuses; v2 writes under a bucket policy for ``delivery.logs.amazonaws.com``.
- Web ACL (``waf``: on by default, and required, in production): AWS WAF in front of the
  distribution, with AWS's managed common rule set and known-bad-inputs rule group, and a
  per-address rate limit on ``/api/*``.
- Custom domain (optional): an ACM certificate validated through DNS in the hosted zone,
  TLS 1.2 (2021 ciphers) with SNI, and A/AAAA alias records. Without one, the
  ``*.cloudfront.net`` name with CloudFront's certificate.

CloudFront takes certificates and log deliveries only in us-east-1: those resources say
so with their own ``region`` (pulumi-aws v7), whatever the stack's ``aws:region``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws

from components.app.site_files import SiteFile, is_hashed, release_digest, site_files
from components.aws_shared import tcp_rule
from components.config import FrontendConfig
from components.invalidation import CloudFrontInvalidation, CloudFrontInvalidationArgs
from components.private_bucket import PrivateBucket, bucket_policy, private_bucket
from components.retired_assets import RetiredSiteAssets, RetiredSiteAssetsArgs

CLOUDFRONT_REGION = "us-east-1"
# AWS managed policies (ids are the same in every account).
CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"
CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
ALL_VIEWER_EXCEPT_HOST_HEADER = "b689b0a8-53d0-40ab-baf2-68738e2966ac"
SITE_ORIGIN_ID = "site"
API_ORIGIN_ID = "api"
API_PATH = "/api/*"
# What CloudFront names the security group it creates in a VPC for its VPC origins.
VPC_ORIGINS_SECURITY_GROUP = "CloudFront-VPCOrigins-Service-SG"
ALL_METHODS = ["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"]
READ_METHODS = ["GET", "HEAD"]
HSTS_MAX_AGE_S = 63072000  # two years
LOG_RETENTION_DAYS = 90
# How long a release's hashed files outlive it: pages opened before a release keep loading
# their lazy chunks for this long (a browser tab left open over a weekend and then some).
RETIRED_ASSETS_KEEP_DAYS = 7
VALIDATION_RECORD_TTL_S = 300
# Requests one address may send to /api/* in 5 minutes before WAF blocks it (the dashboard
# makes a few calls a page; a script hammering the API is stopped at the edge).
API_RATE_LIMIT_PER_5_MIN = 2000
RATE_WINDOW_S = 300
# AWS managed rule groups, in the order WAF evaluates them.
MANAGED_RULE_GROUPS = ("AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet")

# cloudfront-js-2.0, viewer request. A path whose last segment has no "." is a route of the
# app (/reports/q3), answered with index.html; files (/assets/app.7d41e0c9.js) are served
# as they are. Attached to the default behaviour only: /api/* never reaches it.
SPA_ROUTES_CODE = """\
function handler(event) {
  var request = event.request;
  var last = request.uri.substring(request.uri.lastIndexOf('/') + 1);
  if (last.indexOf('.') === -1) {
    request.uri = '/index.html';
  }
  return request;
}
"""


@dataclass
class ApiOrigin:
    """The backend's internal load balancer, reached by CloudFront for ``/api/*``."""

    domain_name: pulumi.Input[str]
    """The load balancer's DNS name."""
    load_balancer_arn: pulumi.Input[str]
    """The load balancer the VPC origin points at."""
    security_group_id: pulumi.Input[str]
    """The load balancer's security group: it admits the VPC origin's managed group here."""
    vpc_id: pulumi.Input[str]
    """The load balancer's VPC, where CloudFront creates that group."""
    port: int = 80


@dataclass
class StaticSiteArgs:
    config: FrontendConfig
    project_root: Path
    """``config.dist_dir`` is relative to it."""
    stack: str
    tags: Mapping[str, str]
    api: ApiOrigin | None = None
    keep_on_destroy: bool = True
    """The log bucket outlives the stack; False (review stacks): emptied and deleted."""
    invalidate_after: Sequence[pulumi.Resource] = ()
    """What must succeed before the cache is cleared (the backend's rollout): a failed one leaves it as it was."""


class StaticSite(pulumi.ComponentResource):
    url: pulumi.Output[str]
    bucket_name: pulumi.Output[str]
    distribution_id: pulumi.Output[str]
    distribution_domain: pulumi.Output[str]
    response_headers_policy_id: pulumi.Output[str]
    """This stack's policy, or the one it shares (review stacks: staging's)."""

    def __init__(self, name: str, args: StaticSiteArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("swipesavvy:frontend:StaticSite", name, None, opts)
        config, tags = args.config, dict(args.tags)
        child = pulumi.ResourceOptions(parent=self)
        prefix = f"swipesavvy-{args.stack}"
        files = site_files(args.project_root / config.dist_dir)

        # The build is re-uploaded by the next `pulumi up`: destroy may empty the bucket
        # (old versions included, which would otherwise stop the delete).
        site = private_bucket(f"{name}-site", child, tags, expiration_days=None, force_destroy=True, region=None)
        # Logs outlive the stack: `pulumi destroy` leaves the log bucket (still private and
        # expiring) rather than failing on a non-empty bucket. Next to the delivery in us-east-1.
        logs = private_bucket(
            f"{name}-logs",
            pulumi.ResourceOptions(parent=self, retain_on_delete=args.keep_on_destroy),
            tags,
            expiration_days=LOG_RETENTION_DAYS,
            force_destroy=not args.keep_on_destroy,
            region=CLOUDFRONT_REGION,
        )

        access_control = aws.cloudfront.OriginAccessControl(
            f"{name}-oac",
            name=f"{prefix}-site",
            description=f"SwipeSavvy {args.stack}: CloudFront reads the site bucket",
            origin_access_control_origin_type="s3",
            signing_behavior="always",
            signing_protocol="sigv4",
            opts=child,
        )
        headers = config.existing_response_headers_policy_id or self._headers_policy(name, prefix, args.stack)
        self.response_headers_policy_id = pulumi.Output.from_input(headers)
        spa_routes = aws.cloudfront.Function(
            f"{name}-spa-routes",
            name=f"{prefix}-spa-routes",
            comment="Routes of the single-page app get index.html",
            runtime="cloudfront-js-2.0",
            code=SPA_ROUTES_CODE,
            publish=True,
            opts=child,
        )

        certificate_arn = self._certificate(name, config, tags) if config.domain else None
        web_acl = self._web_acl(name, prefix, args.stack, tags) if config.waf else None
        origins: list[dict[str, Any]] = [
            {
                "origin_id": SITE_ORIGIN_ID,
                "domain_name": site.bucket.bucket_regional_domain_name,
                "origin_access_control_id": access_control.id,
            }
        ]
        if args.api:
            origins.append(self._api_origin(name, prefix, args.api, tags))
        distribution = aws.cloudfront.Distribution(
            f"{name}-cdn",
            enabled=True,
            comment=f"SwipeSavvy {args.stack} reporting dashboard",
            aliases=[config.domain] if config.domain else None,
            default_root_object="index.html",
            is_ipv6_enabled=True,
            http_version="http2and3",
            price_class=config.price_class,
            origins=origins,
            default_cache_behavior={
                "target_origin_id": SITE_ORIGIN_ID,
                "allowed_methods": READ_METHODS,
                "cached_methods": READ_METHODS,
                "viewer_protocol_policy": "redirect-to-https",
                "compress": True,
                "cache_policy_id": CACHING_OPTIMIZED,
                "response_headers_policy_id": headers,
                "function_associations": [{"event_type": "viewer-request", "function_arn": spa_routes.arn}],
            },
            ordered_cache_behaviors=[self._api_behavior(headers)] if args.api else None,
            web_acl_id=web_acl.arn if web_acl else None,  # WAFv2 takes the ACL's ARN
            restrictions={"geo_restriction": {"restriction_type": "none"}},
            viewer_certificate=(
                {
                    "acm_certificate_arn": certificate_arn,
                    "ssl_support_method": "sni-only",
                    "minimum_protocol_version": "TLSv1.2_2021",
                }
                if certificate_arn
                else {"cloudfront_default_certificate": True}
            ),
            tags=tags,
            opts=child,
        )

        bucket_policy(
            site,
            {
                "Sid": "CloudFrontReadsObjects",
                "Effect": "Allow",
                "Principal": {"Service": "cloudfront.amazonaws.com"},
                "Action": "s3:GetObject",
                "Resource": pulumi.Output.concat(site.bucket.arn, "/*"),
                "Condition": {"StringEquals": {"AWS:SourceArn": distribution.arn}},
            },
        )
        self._access_logs(name, prefix, distribution, logs, tags)
        if config.domain:
            self._alias_records(name, config, distribution)

        uploads = [self._upload(name, site.bucket, f) for f in files]
        RetiredSiteAssets(
            f"{name}-retired-assets",
            RetiredSiteAssetsArgs(
                bucket=site.bucket.bucket,
                region=site.bucket.region,
                assets=[f.key for f in files if is_hashed(f)],
                keep_days=RETIRED_ASSETS_KEEP_DAYS,
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=uploads),  # the new release is up first
        )
        CloudFrontInvalidation(
            f"{name}-invalidation",
            CloudFrontInvalidationArgs(distribution_id=distribution.id, release=release_digest(files)),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*uploads, *args.invalidate_after]),
        )

        self.url = (
            pulumi.Output.from_input(f"https://{config.domain}")
            if config.domain
            else pulumi.Output.concat("https://", distribution.domain_name)
        )
        self.bucket_name = site.bucket.bucket
        self.distribution_id = distribution.id
        self.distribution_domain = distribution.domain_name
        self.register_outputs(
            {
                "url": self.url,
                "bucket_name": self.bucket_name,
                "distribution_id": self.distribution_id,
                "distribution_domain": self.distribution_domain,
                "response_headers_policy_id": self.response_headers_policy_id,
            }
        )

    def _access_logs(
        self, name: str, prefix: str, distribution: aws.cloudfront.Distribution, logs: PrivateBucket, tags: dict
    ) -> None:
        """Standard logging v2: CloudFront -> delivery source -> delivery -> the log bucket."""
        identity = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self))
        partition = aws.get_partition_output(opts=pulumi.InvokeOutputOptions(parent=self)).partition
        # The statement CloudWatch Logs would add itself (AWSLogDeliveryWrite), so it finds
        # it present and leaves the policy as the program declares it.
        policy = bucket_policy(
            logs,
            {
                "Sid": "AWSLogDeliveryWrite",
                "Effect": "Allow",
                "Principal": {"Service": "delivery.logs.amazonaws.com"},
                "Action": "s3:PutObject",
                "Resource": pulumi.Output.concat(logs.bucket.arn, "/*"),
                "Condition": {
                    "StringEquals": {
                        "s3:x-amz-acl": "bucket-owner-full-control",
                        "aws:SourceAccount": [identity.account_id],
                    },
                    "ArnLike": {
                        "aws:SourceArn": [
                            pulumi.Output.concat(
                                "arn:", partition, f":logs:{CLOUDFRONT_REGION}:", identity.account_id, ":*"
                            )
                        ]
                    },
                },
            },
        )
        child = pulumi.ResourceOptions(parent=self)
        source = aws.cloudwatch.LogDeliverySource(
            f"{name}-access-logs",
            name=f"{prefix}-cdn-access",
            log_type="ACCESS_LOGS",
            resource_arn=distribution.arn,
            region=CLOUDFRONT_REGION,
            tags=tags,
            opts=child,
        )
        destination = aws.cloudwatch.LogDeliveryDestination(
            f"{name}-access-logs",
            name=f"{prefix}-cdn-access-s3",
            delivery_destination_configuration={"destination_resource_arn": logs.bucket.arn},
            output_format="parquet",  # as the provider's CloudFront example; Athena reads it as is
            region=CLOUDFRONT_REGION,
            tags=tags,
            opts=child,
        )
        aws.cloudwatch.LogDelivery(
            f"{name}-access-logs",
            delivery_source_name=source.name,
            delivery_destination_arn=destination.arn,
            region=CLOUDFRONT_REGION,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]),
        )

    def _web_acl(self, name: str, prefix: str, stack: str, tags: dict) -> aws.wafv2.WebAcl:
        """A CloudFront-scope web ACL (it lives in us-east-1): AWS's managed rule groups, then a
        rate limit per address on the API (AWS WAF developer guide, "Using AWS WAF with
        Amazon CloudFront"; "Rate-based rule statement")."""

        def visibility(metric: str) -> dict[str, Any]:
            return {"cloudwatch_metrics_enabled": True, "metric_name": metric, "sampled_requests_enabled": True}

        managed = [
            {
                "name": group,
                "priority": priority,
                "override_action": {"none": {}},  # the group's own actions (block) apply
                "statement": {"managed_rule_group_statement": {"vendor_name": "AWS", "name": group}},
                "visibility_config": visibility(f"{prefix}-{group}"),
            }
            for priority, group in enumerate(MANAGED_RULE_GROUPS)
        ]
        api_rate = {
            "name": "api-rate-limit",
            "priority": len(MANAGED_RULE_GROUPS),
            "action": {"block": {}},
            "statement": {
                "rate_based_statement": {
                    "limit": API_RATE_LIMIT_PER_5_MIN,
                    "evaluation_window_sec": RATE_WINDOW_S,
                    "aggregate_key_type": "IP",
                    "scope_down_statement": {
                        "byte_match_statement": {
                            "field_to_match": {"uri_path": {}},
                            "positional_constraint": "STARTS_WITH",
                            "search_string": API_PATH.removesuffix("*"),
                            "text_transformations": [{"priority": 0, "type": "NONE"}],
                        }
                    },
                }
            },
            "visibility_config": visibility(f"{prefix}-api-rate-limit"),
        }
        return aws.wafv2.WebAcl(
            f"{name}-waf",
            name=f"{prefix}-cdn",
            description=f"SwipeSavvy {stack} CloudFront: AWS managed rules and an API rate limit",
            scope="CLOUDFRONT",
            region=CLOUDFRONT_REGION,
            default_action={"allow": {}},
            rules=[*managed, api_rate],
            visibility_config=visibility(f"{prefix}-cdn"),
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _certificate(self, name: str, config: FrontendConfig, tags: dict) -> pulumi.Output[str]:
        """An ACM certificate for the domain, validated through DNS; its ARN once issued."""
        child = pulumi.ResourceOptions(parent=self)
        certificate = aws.acm.Certificate(
            f"{name}-cert",
            domain_name=config.domain,
            validation_method="DNS",
            region=CLOUDFRONT_REGION,
            tags=tags,
            opts=child,
        )
        # One domain, no alternative names: one validation record.
        option = certificate.domain_validation_options.apply(lambda options: options[0])
        record = aws.route53.Record(
            f"{name}-cert-validation",
            zone_id=config.hosted_zone_id,
            name=option.resource_record_name,
            type=option.resource_record_type,
            records=[option.resource_record_value],
            ttl=VALIDATION_RECORD_TTL_S,
            # A re-created certificate for the same domain asks for the same record.
            allow_overwrite=True,
            opts=child,
        )
        validation = aws.acm.CertificateValidation(
            f"{name}-cert",
            certificate_arn=certificate.arn,
            validation_record_fqdns=[record.fqdn],
            region=CLOUDFRONT_REGION,
            opts=child,
        )
        return validation.certificate_arn

    def _alias_records(self, name: str, config: FrontendConfig, distribution: aws.cloudfront.Distribution) -> None:
        for record_type in ("A", "AAAA"):
            aws.route53.Record(
                f"{name}-alias-{record_type.lower()}",
                zone_id=config.hosted_zone_id,
                name=config.domain,
                type=record_type,
                aliases=[
                    {
                        "name": distribution.domain_name,
                        "zone_id": distribution.hosted_zone_id,
                        "evaluate_target_health": False,
                    }
                ],
                opts=pulumi.ResourceOptions(parent=self),
            )

    def _api_origin(self, name: str, prefix: str, api: ApiOrigin, tags: dict) -> dict[str, Any]:
        """A VPC origin to the internal load balancer (CloudFront developer guide, "Restrict
        access with VPC origins"): CloudFront puts its own network interfaces in the VPC and
        reaches the load balancer over AWS's private network, not the internet. It speaks
        HTTP to it: the load balancer has no name of its own to hold a certificate for.

        "To update a VPC origin, first disassociate it from every distribution" (same page,
        "Update a VPC origin"): a change of its endpoint settings (a replaced load balancer is a
        new ARN) replaces it instead, create before delete: a new origin, named after its
        settings, the distribution moved to it, then the old one deleted, associated with none."""
        endpoint = pulumi.Output.all(api.load_balancer_arn, api.port).apply(
            lambda values: {
                "name": f"{prefix}-api-{_digest(values)}",
                "arn": values[0],
                "http_port": values[1],
                "https_port": 443,
                "origin_protocol_policy": "http-only",
                # Required by the API even for http-only; unused.
                "origin_ssl_protocols": {"items": ["TLSv1.2"], "quantity": 1},
            }
        )
        origin = aws.cloudfront.VpcOrigin(
            f"{name}-api-origin",
            vpc_origin_endpoint_config=endpoint,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, replace_on_changes=["vpcOriginEndpointConfig"]),
        )
        self._admit_vpc_origin(name, api, origin)
        return {
            "origin_id": API_ORIGIN_ID,
            "domain_name": api.domain_name,
            "vpc_origin_config": {"vpc_origin_id": origin.id},
        }

    def _headers_policy(self, name: str, prefix: str, stack: str) -> pulumi.Output[str]:
        """Security headers on every response: this stack's own response-headers policy."""
        return aws.cloudfront.ResponseHeadersPolicy(
            f"{name}-headers",
            name=f"{prefix}-security-headers",
            comment=f"SwipeSavvy {stack}: security headers on every response",
            # No X-XSS-Protection: browsers removed the filter it switched on.
            security_headers_config={
                "strict_transport_security": {
                    "access_control_max_age_sec": HSTS_MAX_AGE_S,
                    "include_subdomains": True,
                    "override": True,
                },
                "content_type_options": {"override": True},
                "frame_options": {"frame_option": "DENY", "override": True},
                "referrer_policy": {"referrer_policy": "strict-origin-when-cross-origin", "override": True},
            },
            opts=pulumi.ResourceOptions(parent=self),
        ).id

    def _admit_vpc_origin(self, name: str, api: ApiOrigin, origin: aws.cloudfront.VpcOrigin) -> None:
        """The load balancer admits only the service-managed group CloudFront creates in the VPC
        with its first VPC origin there: "restricts the traffic only to your CloudFront
        distributions", unlike the origin-facing prefix list (CloudFront developer guide,
        "Restrict access with VPC origins", Security Group Configuration, option 2). Looked up
        once the origin exists, and never edited: a rule on the load balancer's group names it."""
        managed = aws.ec2.get_security_group_output(
            vpc_id=api.vpc_id,
            filters=[{"name": "group-name", "values": [VPC_ORIGINS_SECURITY_GROUP]}],
            opts=pulumi.InvokeOutputOptions(parent=self, depends_on=[origin]),
        )
        tcp_rule(
            aws.vpc.SecurityGroupIngressRule,
            f"{name}-api-from-vpc-origin",
            api.security_group_id,
            api.port,
            f"HTTP from CloudFront VPC origins ({VPC_ORIGINS_SECURITY_GROUP})",
            pulumi.ResourceOptions(parent=self, depends_on=[origin]),
            referenced_security_group_id=managed.id,
        )

    @staticmethod
    def _api_behavior(headers: pulumi.Input[str]) -> dict[str, Any]:
        return {
            "path_pattern": API_PATH,
            "target_origin_id": API_ORIGIN_ID,
            "allowed_methods": ALL_METHODS,
            "cached_methods": READ_METHODS,
            "viewer_protocol_policy": "redirect-to-https",
            "cache_policy_id": CACHING_DISABLED,
            "origin_request_policy_id": ALL_VIEWER_EXCEPT_HOST_HEADER,
            "response_headers_policy_id": headers,
        }

    def _upload(self, name: str, bucket: aws.s3.Bucket, file: SiteFile) -> aws.s3.BucketObjectv2:
        return aws.s3.BucketObjectv2(
            f"{name}-file-{file.key}",
            bucket=bucket.bucket,
            key=file.key,
            source=pulumi.FileAsset(str(file.path)),
            content_type=file.content_type,
            cache_control=file.cache_control,
            source_hash=file.sha256,  # a changed file is an update of its object, nothing else
            # A hashed file a release drops stays for open pages; RetiredSiteAssets deletes it later.
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=is_hashed(file)),
        )


def _digest(values: Sequence[Any]) -> str:
    """Eight hex digits naming a VPC origin's endpoint settings: its replacement has another name."""
    return hashlib.sha256(json.dumps(list(values)).encode()).hexdigest()[:8]
