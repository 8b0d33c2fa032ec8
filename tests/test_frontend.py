"""``StaticSite`` under Pulumi's mocks, with and without the API origin and custom domain:
what it declares, as the engine would receive it (camelCase inputs, secrets wrapped)."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field

import pulumi
import pytest
from installed_tools import require_tool
from pulumi.runtime.settings import ROOT as ROOT_RESOURCE
from pulumi_program import (
    ACCOUNT,
    CLOUDFRONT_DOMAIN,
    CLOUDFRONT_ZONE_ID,
    PROJECT_ROOT,
    VPC_ORIGINS_SECURITY_GROUP_ID,
    ProgramRun,
    RecordingMocks,
    RecordingMonitor,
    is_secret,
    unwrap_all,
)

from components.app.frontend import (
    ALL_VIEWER_EXCEPT_HOST_HEADER,
    CACHING_DISABLED,
    CACHING_OPTIMIZED,
    SPA_ROUTES_CODE,
    ApiOrigin,
    StaticSite,
    StaticSiteArgs,
    _digest,
)
from components.app.site_files import release_digest, site_files
from components.config import FrontendConfig

NAME = "swipesavvy-frontend"
DIST = "examples/frontend-dist"
DOMAIN = "staging.swipesavvy.example"
ZONE = "Z0123456789ABC"
ALB = "swipesavvy-alb-123456.us-east-1.elb.amazonaws.com"
ALB_ARN = f"arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}:loadbalancer/app/swipesavvy-api-alb/1"
ALB_SG = "swipesavvy-api-alb-sg-id"
VPC = "swipesavvy-vpc-id"
VPC_ORIGIN = "aws:cloudfront/vpcOrigin:VpcOrigin"
TAGS = {"project": "swipesavvy", "environment": "staging", "stack": "staging", "managed-by": "pulumi"}
COMPONENT = "swipesavvy:frontend:StaticSite"
BUCKET = "aws:s3/bucket:Bucket"
POLICY = "aws:s3/bucketPolicy:BucketPolicy"
DISTRIBUTION = "aws:cloudfront/distribution:Distribution"
OBJECT = "aws:s3/bucketObjectv2:BucketObjectv2"
INVALIDATION = "pulumi-python:dynamic/cdn:CloudFrontInvalidation"
RECORD = "aws:route53/record:Record"


class SiteMonitor(RecordingMonitor):
    """Also records each registration's parent, retain-on-delete option and the (type, name)
    of what it depends on (resources of different types share names here)."""

    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self.parents: dict[tuple[str, str], str] = {}
        self.retained: set[tuple[str, str]] = set()
        self.depends_on: dict[tuple[str, str], set[tuple[str, str]]] = {}
        self.replace_on_changes: dict[tuple[str, str], list[str]] = {}
        self.delete_before_replace: set[tuple[str, str]] = set()

    def RegisterResource(self, request):
        self.replace_on_changes[(request.type, request.name)] = list(request.replaceOnChanges)
        if request.deleteBeforeReplace:
            self.delete_before_replace.add((request.type, request.name))
        self.parents[(request.type, request.name)] = request.parent
        # urn:pulumi:<stack>::<project>::<parent types>$<type>::<name>
        self.depends_on[(request.type, request.name)] = {
            (urn.split("::")[2].rsplit("$", 1)[-1], urn.split("::", 3)[3]) for urn in request.dependencies
        }
        if request.retainOnDelete:
            self.retained.add((request.type, request.name))
        return super().RegisterResource(request)


@dataclass
class SiteRun(ProgramRun):
    parents: dict[tuple[str, str], str] = field(default_factory=dict)
    retained: set[tuple[str, str]] = field(default_factory=set)
    depends_on: dict[tuple[str, str], set[tuple[str, str]]] = field(default_factory=dict)
    replace_on_changes: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    delete_before_replace: set[tuple[str, str]] = field(default_factory=set)

    def get(self, typ: str, name: str):
        (found,) = [r for r in self.of_type(typ) if r.name == name]
        return found

    def distribution(self) -> dict:
        return unwrap_all(self.one(DISTRIBUTION).inputs)

    def policy(self, bucket: str) -> list[dict]:
        return json.loads(self.get(POLICY, f"{NAME}-{bucket}").inputs["policy"])["Statement"]


def run_site(
    *, api: bool, domain: bool, headers_policy: str | None = None, load_balancer_arn: str = ALB_ARN
) -> SiteRun:
    mocks = RecordingMocks()
    ROOT_RESOURCE.set(None)
    monitor = SiteMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project="swipesavvy", stack="staging", monitor=monitor)
    run = SiteRun(
        mocks.resources,
        monitor.dependencies,
        monitor.protected,
        parents=monitor.parents,
        retained=monitor.retained,
        depends_on=monitor.depends_on,
        replace_on_changes=monitor.replace_on_changes,
        delete_before_replace=monitor.delete_before_replace,
    )
    config = FrontendConfig(
        dist_dir=DIST,
        domain=DOMAIN if domain else None,
        hosted_zone_id=ZONE if domain else None,
        existing_response_headers_policy_id=headers_policy,
    )

    @pulumi.runtime.test
    def program():
        origin = ApiOrigin(ALB, load_balancer_arn, security_group_id=ALB_SG, vpc_id=VPC) if api else None
        site = StaticSite(NAME, StaticSiteArgs(config, PROJECT_ROOT, "staging", TAGS, origin))
        outputs = {
            "url": site.url,
            "bucket_name": site.bucket_name,
            "distribution_id": site.distribution_id,
            "distribution_domain": site.distribution_domain,
            "response_headers_policy_id": site.response_headers_policy_id,
        }
        return pulumi.Output.all(**outputs).apply(run.outputs.update)

    program()
    return run


@pytest.fixture(scope="module")
def full() -> SiteRun:
    return run_site(api=True, domain=True)


@pytest.fixture(scope="module")
def bare() -> SiteRun:
    return run_site(api=False, domain=False)


@pytest.fixture(params=["full", "bare"])
def site(request) -> SiteRun:
    return request.getfixturevalue(request.param)


def test_every_resource_is_a_child_of_the_component(site):
    assert [r.name for r in site.of_type(COMPONENT)] == [NAME]
    children = {key: urn for key, urn in site.parents.items() if key[0] not in (COMPONENT, "pulumi:pulumi:Stack")}
    assert len(children) == len(site.resources) - 1
    assert set(children.values()) == {f"urn:pulumi:staging::swipesavvy::pulumi:pulumi:Stack${COMPONENT}::{NAME}"}


def test_outputs(full, bare):
    assert full.outputs == {
        "url": f"https://{DOMAIN}",
        "bucket_name": f"{NAME}-site-a1b2c3d",
        "distribution_id": f"{NAME}-cdn-id",
        "distribution_domain": CLOUDFRONT_DOMAIN,
        "response_headers_policy_id": f"{NAME}-headers-id",
    }
    assert bare.outputs["url"] == f"https://{CLOUDFRONT_DOMAIN}"


STAGINGS_HEADERS_POLICY = "67f7725c-6f97-4210-82d7-5512b31e9d03"


def test_with_an_existing_response_headers_policy_the_site_declares_none_and_uses_it():
    """Response-headers policies are an account-wide CloudFront quota: review stacks share
    staging's (by id, from its outputs) instead of one each."""
    shared = run_site(api=True, domain=False, headers_policy=STAGINGS_HEADERS_POLICY)
    assert shared.of_type("aws:cloudfront/responseHeadersPolicy:ResponseHeadersPolicy") == []
    distribution = shared.distribution()
    behaviors = [distribution["defaultCacheBehavior"], *distribution["orderedCacheBehaviors"]]
    assert [b["responseHeadersPolicyId"] for b in behaviors] == [STAGINGS_HEADERS_POLICY] * 2
    assert shared.outputs["response_headers_policy_id"] == STAGINGS_HEADERS_POLICY


@pytest.mark.parametrize("bucket", ["site", "logs"])
def test_buckets_are_private_encrypted_versioned_and_expire_old_versions(site, bucket):
    name = f"{NAME}-{bucket}"
    declared = site.get(BUCKET, name).inputs
    assert declared["tags"] == TAGS
    public_access = site.get("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", name).inputs
    assert [public_access[k] for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls")] == [True] * 3
    assert public_access["restrictPublicBuckets"] is True
    assert site.get("aws:s3/bucketOwnershipControls:BucketOwnershipControls", name).inputs["rule"] == {
        "objectOwnership": "BucketOwnerEnforced"
    }
    encryption = site.get(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", name
    )
    assert encryption.inputs["rules"] == [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]
    assert site.get("aws:s3/bucketVersioning:BucketVersioning", name).inputs["versioningConfiguration"] == {
        "status": "Enabled"
    }
    lifecycle = site.get("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", name)
    (rule,) = lifecycle.inputs["rules"]
    assert rule["status"] == "Enabled" and rule["filter"] == {}
    assert rule["noncurrentVersionExpiration"] == {"noncurrentDays": 30}
    assert rule["abortIncompleteMultipartUpload"] == {"daysAfterInitiation": 7}
    assert ("aws:s3/bucketVersioning:BucketVersioning", name) in site.depends_on[(lifecycle.typ, name)]
    # Each side resource configures this bucket (the mocks' id for it).
    for resource in site.resources:
        if resource.name == name and resource.typ not in (BUCKET,):
            assert resource.inputs["bucket"] == f"{name}-id", resource.typ


def test_the_site_bucket_is_emptied_on_destroy_and_the_log_bucket_kept(full):
    site, logs = full.get(BUCKET, f"{NAME}-site"), full.get(BUCKET, f"{NAME}-logs")
    assert site.inputs["forceDestroy"] is True and "region" not in site.inputs  # the stack's region
    assert logs.inputs["forceDestroy"] is False and logs.inputs["region"] == "us-east-1"
    log_resources = {(r.typ, r.name) for r in full.resources if r.name == f"{NAME}-logs"}
    assert len(log_resources) == 7  # bucket, 4 protections, lifecycle, policy
    assert log_resources <= full.retained
    assert not any(name.startswith(f"{NAME}-site") for _, name in full.retained)
    assert {typ for typ, name in full.retained if not name.startswith(f"{NAME}-logs")} == {OBJECT}  # hashed files
    lifecycle = full.get("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", f"{NAME}-logs")
    assert lifecycle.inputs["rules"][0]["expiration"] == {"days": 90}
    assert all(r.inputs.get("region") == "us-east-1" for r in full.resources if r.name == f"{NAME}-logs")


def test_only_the_distribution_reads_the_site_bucket_and_only_over_tls(site):
    read, deny = site.policy("site")
    assert read == {
        "Sid": "CloudFrontReadsObjects",
        "Effect": "Allow",
        "Principal": {"Service": "cloudfront.amazonaws.com"},
        "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{NAME}-site-a1b2c3d/*",
        "Condition": {"StringEquals": {"AWS:SourceArn": f"arn:aws:cloudfront::{ACCOUNT}:distribution/{NAME}-cdn-id"}},
    }
    assert deny == {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [f"arn:aws:s3:::{NAME}-site-a1b2c3d", f"arn:aws:s3:::{NAME}-site-a1b2c3d/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    # The policy lands after the public-access block.
    assert ("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", f"{NAME}-site") in site.depends_on[
        (POLICY, f"{NAME}-site")
    ]

    oac = site.one("aws:cloudfront/originAccessControl:OriginAccessControl").inputs
    assert (oac["originAccessControlOriginType"], oac["signingBehavior"], oac["signingProtocol"]) == (
        "s3",
        "always",
        "sigv4",
    )
    site_origin = site.distribution()["origins"][0]
    assert site_origin == {
        "originId": "site",
        "domainName": f"{NAME}-site-a1b2c3d.s3.us-east-1.amazonaws.com",
        "originAccessControlId": f"{NAME}-oac-id",
    }


def test_distribution_defaults(site):
    distribution = site.distribution()
    assert distribution["enabled"] is True
    assert distribution["defaultRootObject"] == "index.html"
    assert distribution["priceClass"] == "PriceClass_100"
    assert distribution["restrictions"] == {"geoRestriction": {"restrictionType": "none"}}
    assert distribution["tags"] == TAGS
    assert "customErrorResponses" not in distribution  # would turn API errors into index.html
    assert "loggingConfig" not in distribution  # legacy logging needs ACLs; v2 is declared instead
    default = distribution["defaultCacheBehavior"]
    assert default["targetOriginId"] == "site"
    assert default["compress"] is True
    assert default["cachePolicyId"] == CACHING_OPTIMIZED
    assert default["allowedMethods"] == default["cachedMethods"] == ["GET", "HEAD"]
    behaviors = [default, *distribution.get("orderedCacheBehaviors", [])]
    assert {b["viewerProtocolPolicy"] for b in behaviors} == {"redirect-to-https"}
    assert {b["responseHeadersPolicyId"] for b in behaviors} == {f"{NAME}-headers-id"}


def test_security_headers_are_overridden_on_every_response(site):
    headers = site.one("aws:cloudfront/responseHeadersPolicy:ResponseHeadersPolicy").inputs["securityHeadersConfig"]
    assert headers == {
        "strictTransportSecurity": {"accessControlMaxAgeSec": 63072000, "includeSubdomains": True, "override": True},
        "contentTypeOptions": {"override": True},
        "frameOptions": {"frameOption": "DENY", "override": True},
        "referrerPolicy": {"referrerPolicy": "strict-origin-when-cross-origin", "override": True},
    }


def test_the_spa_fallback_is_a_viewer_request_function_on_the_default_behaviour_only(full):
    function = full.one("aws:cloudfront/function:Function").inputs
    assert function["runtime"] == "cloudfront-js-2.0"
    assert function["code"] == SPA_ROUTES_CODE
    assert function["publish"] is True
    distribution = full.distribution()
    assert distribution["defaultCacheBehavior"]["functionAssociations"] == [
        {"eventType": "viewer-request", "functionArn": f"arn:aws:cloudfront::{ACCOUNT}:function/{function['name']}"}
    ]
    (api,) = distribution["orderedCacheBehaviors"]
    assert "functionAssociations" not in api


def test_the_spa_function_rewrites_routes_not_files():
    node = require_tool("node", "runs the CloudFront function's code; install.sh installs it")
    uris = ["/", "/reports", "/reports/q3/", "/campaigns/42", "/index.html", "/assets/app.7d41e0c9.js", "/favicon.ico"]
    script = f"{SPA_ROUTES_CODE}\nconsole.log(JSON.stringify({json.dumps(uris)}.map(u => handler({{request: {{uri: u}}}}).uri)));"
    result = subprocess.run([node, "-e", script], capture_output=True, text=True, check=True, timeout=30)
    assert json.loads(result.stdout) == [
        "/index.html",
        "/index.html",
        "/index.html",
        "/index.html",
        "/index.html",
        "/assets/app.7d41e0c9.js",
        "/favicon.ico",
    ]


def test_api_behaviour_goes_to_the_load_balancer_uncached_and_unchanged(full):
    distribution = full.distribution()
    (api,) = distribution["orderedCacheBehaviors"]
    assert api == {
        "pathPattern": "/api/*",
        "targetOriginId": "api",
        "allowedMethods": ["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"],
        "cachedMethods": ["GET", "HEAD"],
        "viewerProtocolPolicy": "redirect-to-https",
        "cachePolicyId": CACHING_DISABLED,
        "originRequestPolicyId": ALL_VIEWER_EXCEPT_HOST_HEADER,
        "responseHeadersPolicyId": f"{NAME}-headers-id",
    }
    origin = distribution["origins"][1]
    assert origin["originId"] == "api" and origin["domainName"] == ALB
    assert "originPath" not in origin  # /api/... reaches Express as /api/...
    # A VPC origin, not a custom origin over the internet; no shared-secret header.
    assert origin == {"originId": "api", "domainName": ALB, "vpcOriginConfig": {"vpcOriginId": f"{NAME}-api-origin-id"}}


def test_the_vpc_origin_points_at_the_internal_load_balancer(full):
    vpc_origin = full.get(VPC_ORIGIN, f"{NAME}-api-origin")
    assert vpc_origin.inputs["vpcOriginEndpointConfig"] == {
        "name": "swipesavvy-staging-api-" + _digest([ALB_ARN, 80]),
        "arn": ALB_ARN,
        "httpPort": 80,
        "httpsPort": 443,
        "originProtocolPolicy": "http-only",  # inside AWS's network; the load balancer has no certificate
        "originSslProtocols": {"items": ["TLSv1.2"], "quantity": 1},
    }
    assert full.parents[(VPC_ORIGIN, f"{NAME}-api-origin")].endswith(f"::{NAME}")
    assert not is_secret(full.one(DISTRIBUTION).inputs["origins"])  # nothing secret travels to the origin


def test_a_replaced_load_balancer_gets_a_new_vpc_origin_and_the_old_one_goes_unassociated(full):
    """ "To update a VPC origin, first disassociate it from every distribution" (CloudFront
    developer guide, "Restrict access with VPC origins", Update a VPC origin). The second update,
    after the load balancer was replaced (a new ARN): what changes is in replaceOnChanges, so the
    engine replaces the origin instead of updating it in place, create before delete: the new
    origin (another name, so both can exist), the distribution moved to its id, then the old
    origin deleted, which no distribution uses by then."""
    key = (VPC_ORIGIN, f"{NAME}-api-origin")
    replaced = run_site(api=True, domain=True, load_balancer_arn=ALB_ARN.removesuffix("/1") + "/2")
    before = full.get(*key).inputs["vpcOriginEndpointConfig"]
    after = replaced.get(*key).inputs["vpcOriginEndpointConfig"]
    assert {k for k in before if before[k] != after[k]} == {"arn", "name"}
    assert replaced.replace_on_changes[key] == ["vpcOriginEndpointConfig"]  # the engine replaces: no UpdateVpcOrigin
    assert key not in replaced.delete_before_replace  # the old one stays until the distribution has moved
    assert key in replaced.depends_on[(DISTRIBUTION, f"{NAME}-cdn")]
    (api,) = [o for o in replaced.distribution()["origins"] if o["originId"] == "api"]
    assert api["vpcOriginConfig"] == {"vpcOriginId": f"{NAME}-api-origin-id"}


def test_the_load_balancer_admits_only_cloudfronts_managed_group_once_the_origin_exists(full):
    """Option 2 of "Security Group Configuration" (CloudFront developer guide, "Restrict access
    with VPC origins"): CloudFront-VPCOrigins-Service-SG, which exists once a VPC origin does and
    is never edited; looked up in the load balancer's VPC by name after the origin, and admitted
    on the load balancer's group."""
    (rule,) = full.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    assert rule.name == f"{NAME}-api-from-vpc-origin"
    assert {k: rule.inputs[k] for k in ("securityGroupId", "ipProtocol", "fromPort", "toPort")} == {
        "securityGroupId": ALB_SG,
        "ipProtocol": "tcp",
        "fromPort": 80,
        "toPort": 80,
    }
    assert rule.inputs["referencedSecurityGroupId"] == VPC_ORIGINS_SECURITY_GROUP_ID
    assert rule.inputs["description"] == "HTTP from CloudFront VPC origins (CloudFront-VPCOrigins-Service-SG)"
    assert (VPC_ORIGIN, f"{NAME}-api-origin") in full.depends_on[(rule.typ, rule.name)]
    assert full.of_type("aws:ec2/securityGroup:SecurityGroup") == []  # the managed group is never declared


def test_without_api_the_site_is_the_only_origin(bare):
    distribution = bare.distribution()
    assert [o["originId"] for o in distribution["origins"]] == ["site"]
    assert "orderedCacheBehaviors" not in distribution
    assert not is_secret(bare.one(DISTRIBUTION).inputs["origins"])


def test_custom_domain_certificate_in_us_east_1_validated_through_dns(full):
    certificate = full.one("aws:acm/certificate:Certificate").inputs
    assert certificate["domainName"] == DOMAIN
    assert certificate["validationMethod"] == "DNS"
    assert certificate["region"] == "us-east-1"
    validation_record = full.get(RECORD, f"{NAME}-cert-validation").inputs
    assert validation_record == {
        "zoneId": ZONE,
        "name": f"_c0ffee.{DOMAIN}.",
        "type": "CNAME",
        "records": ["_beef.acm-validations.aws."],
        "ttl": 300,
        "allowOverwrite": True,
    }
    validation = full.one("aws:acm/certificateValidation:CertificateValidation").inputs
    assert validation["region"] == "us-east-1"
    assert validation["validationRecordFqdns"] == [f"_c0ffee.{DOMAIN}"]

    distribution = full.distribution()
    assert distribution["aliases"] == [DOMAIN]
    assert distribution["viewerCertificate"] == {
        "acmCertificateArn": validation["certificateArn"],
        "sslSupportMethod": "sni-only",
        "minimumProtocolVersion": "TLSv1.2_2021",
    }
    # The distribution waits for the certificate to be issued, not just requested.
    assert ("aws:acm/certificateValidation:CertificateValidation", f"{NAME}-cert") in full.depends_on[
        (DISTRIBUTION, f"{NAME}-cdn")
    ]

    for record_type in ("A", "AAAA"):
        alias = full.get(RECORD, f"{NAME}-alias-{record_type.lower()}").inputs
        assert alias == {
            "zoneId": ZONE,
            "name": DOMAIN,
            "type": record_type,
            "aliases": [{"name": CLOUDFRONT_DOMAIN, "zoneId": CLOUDFRONT_ZONE_ID, "evaluateTargetHealth": False}],
        }
    assert full.distribution()["isIpv6Enabled"] is True  # AAAA answers need IPv6 on the distribution


def test_without_domain_cloudfronts_certificate(bare):
    distribution = bare.distribution()
    assert distribution["viewerCertificate"] == {"cloudfrontDefaultCertificate": True}
    assert "aliases" not in distribution
    assert not bare.of_type("aws:acm/certificate:Certificate")
    assert not bare.of_type(RECORD)


def test_access_logs_through_log_delivery_into_the_log_bucket(site):
    distribution_arn = f"arn:aws:cloudfront::{ACCOUNT}:distribution/{NAME}-cdn-id"
    source = site.one("aws:cloudwatch/logDeliverySource:LogDeliverySource").inputs
    assert (source["logType"], source["resourceArn"], source["region"]) == (
        "ACCESS_LOGS",
        distribution_arn,
        "us-east-1",
    )
    destination = site.one("aws:cloudwatch/logDeliveryDestination:LogDeliveryDestination").inputs
    assert destination["deliveryDestinationConfiguration"] == {
        "destinationResourceArn": f"arn:aws:s3:::{NAME}-logs-a1b2c3d"
    }
    assert destination["region"] == "us-east-1"
    delivery = site.one("aws:cloudwatch/logDelivery:LogDelivery")
    assert delivery.inputs["deliverySourceName"] == source["name"]
    assert delivery.inputs["deliveryDestinationArn"].endswith(f":delivery-destination:{destination['name']}")
    assert delivery.inputs["region"] == "us-east-1"
    # The bucket admits the delivery before the delivery is created.
    assert (POLICY, f"{NAME}-logs") in site.depends_on[(delivery.typ, delivery.name)]

    write, deny = site.policy("logs")
    assert write["Principal"] == {"Service": "delivery.logs.amazonaws.com"}
    assert write["Action"] == "s3:PutObject"
    assert write["Resource"] == f"arn:aws:s3:::{NAME}-logs-a1b2c3d/*"
    assert write["Condition"] == {
        "StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control", "aws:SourceAccount": [ACCOUNT]},
        "ArnLike": {"aws:SourceArn": [f"arn:aws:logs:us-east-1:{ACCOUNT}:*"]},
    }
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_one_object_per_file_with_its_type_cache_policy_and_hash(site):
    files = site_files(PROJECT_ROOT / DIST)
    objects = {r.inputs["key"]: r for r in site.of_type(OBJECT)}
    assert sorted(objects) == [f.key for f in files]
    for f in files:
        declared = objects[f.key]
        assert declared.name == f"{NAME}-file-{f.key}"
        assert declared.inputs["bucket"] == f"{NAME}-site-a1b2c3d"
        assert unwrap_all(declared.inputs["source"]) == ("FileAsset", str(PROJECT_ROOT / DIST / f.key))
        assert declared.inputs["contentType"] == f.content_type
        assert declared.inputs["cacheControl"] == f.cache_control
        assert declared.inputs["sourceHash"] == f.sha256
    assert objects["index.html"].inputs["cacheControl"] == "no-cache"
    assert objects["assets/app.7d41e0c9.js"].inputs["cacheControl"] == "public, max-age=31536000, immutable"
    assert objects["assets/app.7d41e0c9.js"].inputs["contentType"] == "text/javascript; charset=utf-8"


def test_a_releases_hashed_files_outlive_it_and_its_pages_do_not(full):
    """Pages opened before a release still load their lazy chunks: the hashed objects are kept
    when a release drops them (RetiredSiteAssets deletes them 7 days later); index.html goes."""
    kept = {name for typ, name in full.retained if typ == OBJECT}
    assert kept == {f"{NAME}-file-assets/app.3f9c1a2b.css", f"{NAME}-file-assets/app.7d41e0c9.js"}
    retired = full.get("pulumi-python:dynamic/cdn:RetiredSiteAssets", f"{NAME}-retired-assets")
    assert {k: v for k, v in retired.inputs.items() if k != "__provider"} == {
        "bucket": f"{NAME}-site-a1b2c3d",
        "region": "us-east-1",
        "assets": ["assets/app.3f9c1a2b.css", "assets/app.7d41e0c9.js"],
        "keep_days": 7,
    }
    uploads = {(OBJECT, r.name) for r in full.of_type(OBJECT)}
    assert uploads <= full.depends_on[(retired.typ, retired.name)]  # the new release is up before any delete


def test_the_invalidation_follows_the_upload(site):
    invalidation = site.one(INVALIDATION)
    inputs = {k: v for k, v in invalidation.inputs.items() if k != "__provider"}
    assert inputs == {
        "distribution_id": f"{NAME}-cdn-id",
        "release": release_digest(site_files(PROJECT_ROOT / DIST)),
        "paths": ["/*"],
    }
    uploads = {(OBJECT, r.name) for r in site.of_type(OBJECT)}
    assert site.depends_on[(INVALIDATION, invalidation.name)] == {*uploads, (DISTRIBUTION, f"{NAME}-cdn")}


WEB_ACL = "aws:wafv2/webAcl:WebAcl"


def test_production_cloudfront_has_a_web_acl_with_managed_rules_and_an_api_rate_limit(production):
    acl = production.one(WEB_ACL).inputs
    assert (acl["scope"], acl["region"], acl["defaultAction"]) == ("CLOUDFRONT", "us-east-1", {"allow": {}})
    managed, rate = acl["rules"][:2], acl["rules"][2]
    assert [(r["priority"], r["statement"]["managedRuleGroupStatement"]) for r in managed] == [
        (0, {"vendorName": "AWS", "name": "AWSManagedRulesCommonRuleSet"}),
        (1, {"vendorName": "AWS", "name": "AWSManagedRulesKnownBadInputsRuleSet"}),
    ]
    assert all(r["overrideAction"] == {"none": {}} for r in managed)
    assert rate["action"] == {"block": {}} and rate["priority"] == 2
    assert rate["statement"]["rateBasedStatement"] == {
        "limit": 2000,
        "evaluationWindowSec": 300,
        "aggregateKeyType": "IP",
        "scopeDownStatement": {
            "byteMatchStatement": {
                "fieldToMatch": {"uriPath": {}},
                "positionalConstraint": "STARTS_WITH",
                "searchString": "/api/",
                "textTransformations": [{"priority": 0, "type": "NONE"}],
            }
        },
    }
    distribution = production.one(DISTRIBUTION).inputs
    assert (
        distribution["webAclId"] == "arn:aws:wafv2:us-east-1:123456789012:global/webacl/swipesavvy-production-cdn/0123"
    )


def test_staging_has_no_web_acl_unless_switched_on(staging):
    assert staging.of_type(WEB_ACL) == []
    assert "webAclId" not in staging.one(DISTRIBUTION).inputs
