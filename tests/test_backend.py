"""``BackendService`` in the whole program under mocks: staging (the committed config,
the example release) and production (the committed file, and a variant in an existing VPC)."""

from __future__ import annotations

import base64
import json

import pulumi
import pytest
import yaml
from pulumi_program import (
    ACCOUNT,
    ALB_DNS_NAME,
    AMI_ID,
    DB_ADDRESS,
    ELB_ACCOUNT,
    PROJECT_ROOT,
    RELEASE_AMI_ID,
    VPC_ORIGINS_SECURITY_GROUP_ID,
    RecordingMocks,
    is_secret,
    run_program,
    stack_config,
    unwrap_all,
)

from components.app.backend_boot import BootSettings, user_data
from components.app.release_archive import load_release
from components.observability.agent_config import AgentSettings
from components.rds_ca import region_bundle

LT = "aws:ec2/launchTemplate:LaunchTemplate"
ASG = "aws:autoscaling/group:Group"
ROLLOUT = "pulumi-python:dynamic/autoscaling:InstanceRefreshWait"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
BACKEND_SG = "swipesavvy-backend-id"
ALB_SG = "swipesavvy-api-alb-sg-id"
TARGET_GROUP_ARN = f"arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}:swipesavvy-api-api"


def cloud_config(run) -> dict:
    text = base64.b64decode(run.one(LT).inputs["userData"]).decode()
    assert text.startswith("#cloud-config\n")
    return yaml.safe_load(text)


def test_launch_template_is_locked_down(staging):
    template = staging.one(LT).inputs
    assert template["imageId"] == AMI_ID and template["instanceType"] == "t4g.small"
    assert template["metadataOptions"]["httpTokens"] == "required"
    assert template["metadataOptions"]["httpPutResponseHopLimit"] == 1
    (interface,) = template["networkInterfaces"]
    assert interface["associatePublicIpAddress"] == "false" and interface["securityGroups"] == [BACKEND_SG]
    (disk,) = template["blockDeviceMappings"]
    assert disk["ebs"]["encrypted"] == "true" and disk["ebs"]["volumeType"] == "gp3"
    assert "keyName" not in template  # Session Manager, not SSH
    assert template["iamInstanceProfile"]["arn"].endswith("instance-profile/swipesavvy-api-instance")


def test_the_ami_comes_from_the_public_al2023_parameter_for_the_instance_architecture():
    from components.app.backend import ami_parameter

    assert ami_parameter("arm64") == "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64"


def test_user_data_is_the_rendered_boot_config_and_holds_no_secret(staging):
    config = cloud_config(staging)
    release = load_release(PROJECT_ROOT, "examples/backend-release")
    secrets = "arn:aws:secretsmanager:us-east-1:123456789012:secret:swipesavvy/staging"
    secret_arn = f"{secrets}/db/swipesavvy_backend-20261126-AbCdEf"
    expected = user_data(
        BootSettings(
            region="us-east-1",
            release_uri=f"s3://swipesavvy-api-artifacts-a1b2c3d/{release.key}",
            release_sha256=release.sha256,
            db_secret_arn=secret_arn,
            node_env="staging",
            log_level="info",
            agent=AgentSettings(
                site="datadoghq.com",
                env="staging",
                version=release.sha256[:12],
                api_key_secret_arn=f"{secrets}/datadog/agent-api-key-20261126-AbCdEf",
                monitor_secret_arn=f"{secrets}/db/swipesavvy_monitor-20261126-AbCdEf",
                db_host=DB_ADDRESS,
                db_port=5432,
                db_name="swipesavvy_staging",
            ),
            api_tokens_secret_arn=f"{secrets}/api-tokens-20261126-AbCdEf",
        )
    )
    assert staging.one(LT).inputs["userData"] == expected
    assert "nodejs22" in config["packages"]
    text = json.dumps(config)
    assert "APP-PASSWORD" not in text and "MASTER-PASSWORD" not in text and "DATADOG-AGENT-API-KEY" not in text
    assert "api-token" not in text.replace("api-tokens-", "")  # the tokens' secret by ARN, never their values


def test_the_group_takes_new_versions_only_from_the_rollout(staging, production):
    """A rollback restores the configuration saved on the group before the refresh started
    (EC2 Auto Scaling user guide, "Undo changes with a manual or auto rollback"): the group
    starts on the template's first version and never saves a later one itself (no refresh
    of its own, its version ignored); the rollout moves it when the refresh succeeds."""
    group = staging.one(ASG).inputs
    assert group["vpcZoneIdentifiers"] == ["swipesavvy-private-0-id", "swipesavvy-private-1-id"]
    assert group["minSize"] == group["maxSize"] == group["desiredCapacity"] == 1
    assert group["launchTemplate"] == {"id": "swipesavvy-api-lt-id", "version": "1"}  # a number: a rollback target
    assert group["healthCheckType"] == "ELB" and group["waitForElbCapacity"] == 1
    assert "instanceRefresh" not in group
    for run in (staging, production):
        assert run.ignored[(ASG, "swipesavvy-api-asg")] == ["launchTemplate.version"]
        rollout = run.of_name(ROLLOUT, "swipesavvy-api-rollout").inputs
        assert rollout["launch_template_version"] == run.one(ASG).inputs["launchTemplate"]["version"]
        assert (rollout["min_healthy_percentage"], rollout["max_healthy_percentage"]) == (100, 200)
    # One batch (100-200 % replaces every instance at once): launch and warm up, 10 + 10 min.
    assert staging.of_name(ROLLOUT, "swipesavvy-api-rollout").inputs["timeout_seconds"] == 1200


def test_the_group_launches_only_after_its_role_may_read_the_release(staging, production):
    for run in (staging, production):
        assert "swipesavvy-api-instance" in run.dependencies[(ASG, "swipesavvy-api-asg")]


def test_the_group_is_created_after_the_database_logins(staging, production):
    for run in (staging, production):
        logins = {r.name for r in run.of_type("pulumi-python:dynamic/db:LoginRole")}
        assert {"swipesavvy-db-backend", "swipesavvy-db-monitor"} <= logins
        assert logins <= set(run.dependencies[(ASG, "swipesavvy-api-asg")])


def test_the_site_cache_is_cleared_only_after_the_rollout_succeeded(staging, production):
    for run in (staging, production):
        invalidation = ("pulumi-python:dynamic/cdn:CloudFrontInvalidation", "swipesavvy-frontend-invalidation")
        assert "swipesavvy-api-rollout" in run.dependencies[invalidation]
        rollout = ("pulumi-python:dynamic/autoscaling:InstanceRefreshWait", "swipesavvy-api-rollout")
        assert "swipesavvy-api-asg" in run.dependencies[rollout]  # and the rollout waits for the group


def test_a_recompressed_release_is_no_new_upload(staging):
    """The object key is the tar's digest: other compressed bytes of it change nothing."""
    assert staging.ignored[("aws:s3/bucketObjectv2:BucketObjectv2", "swipesavvy-api-release")] == ["source"]


def warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]


AMI_WARNING = (
    f"swipesavvy:backend.ami is latest: the instances run {AMI_ID}"
    " (/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64); when Amazon Linux publishes a newer"
    " image, the next `pulumi up` rolls every instance"
    f" (to choose when: pulumi config set --path 'swipesavvy:backend.ami' {AMI_ID})"
)


def test_the_preview_says_which_ami_latest_is_and_that_a_newer_one_rolls_the_instances(caplog):
    caplog.set_level("WARNING")
    run = run_program(stack_config("staging"), preview=True)
    assert AMI_WARNING in warnings(caplog)
    assert run.one(LT).inputs["imageId"] == AMI_ID
    assert run.outputs["backend_ami"] == (AMI_ID, False)


def test_the_launch_template_names_an_ami_id_a_rollback_can_return_to(staging, production):
    """ "You also cannot roll back to a launch template that is configured to use an AMI alias from
    the AWS Systems Manager Parameter Store" (EC2 Auto Scaling user guide, "Undo changes with a
    manual or auto rollback"): the program resolves the parameter itself."""
    for run in (staging, production):
        image = run.one(LT).inputs["imageId"]
        assert image.startswith("ami-") and not image.startswith("resolve:ssm:")


def test_a_pinned_ami_is_used_as_set_without_a_warning(caplog):
    config = stack_config("staging")
    config["swipesavvy:backend"] = {**config["swipesavvy:backend"], "ami": "ami-0fedcba9876543210"}
    caplog.set_level("WARNING")
    run = run_program(config, preview=True)
    assert not [w for w in warnings(caplog) if "swipesavvy:backend." in w]
    assert run.one(LT).inputs["imageId"] == "ami-0fedcba9876543210"


def test_the_instances_get_their_regions_rds_cas_in_user_data_not_a_download(staging):
    """RDS signs a region's servers with that region's CAs (components/rds_ca.py): the root of
    the one the database names travels in the user data alone (all three would pass EC2's
    16 KB), written by cloud-init before the install script runs."""
    files = {f["path"]: f for f in cloud_config(staging)["write_files"]}
    bundle = files["/etc/swipesavvy/rds-ca-bundle.pem"]
    assert (bundle["content"], bundle["owner"], bundle["permissions"]) == (
        region_bundle("us-east-1"),
        "root:root",
        "0644",
    )
    install = files["/usr/local/sbin/swipesavvy-backend-install"]["content"]
    assert "truststore" not in install and "curl" not in install


def test_production_runs_the_pinned_amazon_linux_release_found_among_amazons_images(caplog):
    """The release name is looked up among Amazon's own images (never a look-alike shared by
    another account), deprecated ones included: a pin keeps working after Amazon deprecates it."""
    caplog.set_level("WARNING")
    mocks = RecordingMocks()
    run = run_program(stack_config("production"), stack="production", preview=True, mocks=mocks)
    assert run.one(LT).inputs["imageId"] == RELEASE_AMI_ID
    assert not [w for w in warnings(caplog) if "swipesavvy:backend.ami" in w]
    (lookup,) = [c.args for c in mocks.calls if c.token == "aws:ec2/getAmi:getAmi"]
    assert lookup == {
        "owners": ["amazon"],
        "filters": [
            {"name": "name", "values": ["al2023-ami-2023.12.20260930.0-kernel-6.1-arm64"]},
            {"name": "architecture", "values": ["arm64"]},
        ],
        "includeDeprecated": True,
        "mostRecent": True,
    }


def test_production_on_latest_stops_the_preview_before_any_resource():
    config = stack_config("production")
    config["swipesavvy:backend"] = {**config["swipesavvy:backend"], "ami": "latest"}
    mocks = RecordingMocks()
    with pytest.raises(
        pulumi.RunError, match=r"swipesavvy:backend\.ami = 'latest' is invalid: production pins its image"
    ):
        run_program(config, stack="production", preview=True, mocks=mocks)
    assert mocks.resources == []


def test_target_group_checks_the_health_endpoint_on_8080(staging):
    target = staging.one("aws:lb/targetGroup:TargetGroup").inputs
    assert target["port"] == 8080 and target["protocol"] == "HTTP"
    assert target["healthCheck"]["path"] == "/api/health" and target["healthCheck"]["matcher"] == "200"


def test_the_load_balancer_is_internal_in_the_private_subnets_and_forwards_to_the_api(staging):
    alb = staging.one("aws:lb/loadBalancer:LoadBalancer").inputs
    assert alb["dropInvalidHeaderFields"] is True and alb["internal"] is True
    assert alb["subnets"] == ["swipesavvy-private-0-id", "swipesavvy-private-1-id"]
    listener = staging.one("aws:lb/listener:Listener").inputs
    assert listener["port"] == 80
    assert listener["defaultActions"] == [{"type": "forward", "targetGroupArn": TARGET_GROUP_ARN}]
    assert staging.of_type("aws:lb/listenerRule:ListenerRule") == []  # no shared-secret header to check


def test_the_load_balancer_writes_access_logs_the_elb_log_delivery_may_write(staging):
    """Only the log delivery service principal: "the legacy per-region ELB account" is supported
    in older regions only (ELB user guide, "Enable access logs for your Application Load
    Balancer"), and no invoke asks for it."""
    alb = staging.one("aws:lb/loadBalancer:LoadBalancer")
    assert alb.inputs["accessLogs"] == {"bucket": "swipesavvy-api-alb-logs-a1b2c3d", "prefix": "alb", "enabled": True}
    assert "swipesavvy-api-alb-logs" in staging.dependencies[(alb.typ, alb.name)]  # the policy first
    policy = json.loads(staging.of_name("aws:s3/bucketPolicy:BucketPolicy", "swipesavvy-api-alb-logs").inputs["policy"])
    objects = f"arn:aws:s3:::swipesavvy-api-alb-logs-a1b2c3d/alb/AWSLogs/{ACCOUNT}/*"
    assert policy["Statement"][0] == {
        "Sid": "ElbLogDelivery",
        "Effect": "Allow",
        "Principal": {"Service": "logdelivery.elasticloadbalancing.amazonaws.com"},
        "Action": "s3:PutObject",
        "Resource": objects,
    }
    assert [s["Sid"] for s in policy["Statement"]] == ["ElbLogDelivery", "DenyInsecureTransport"]
    assert ELB_ACCOUNT not in json.dumps(policy)
    assert ("aws:s3/bucket:Bucket", "swipesavvy-api-alb-logs") in staging.retained


def test_security_groups_admit_only_the_next_hop(staging):
    ingress = {r.name: r.inputs for r in staging.of_type(INGRESS)}
    alb_in = [r for r in ingress.values() if r["securityGroupId"] == ALB_SG]
    # Only CloudFront's VPC origins, by their service-managed group (not the origin-facing prefix
    # list, which any distribution's traffic comes from).
    assert alb_in == [ingress["swipesavvy-frontend-api-from-vpc-origin"]]
    assert (alb_in[0]["fromPort"], alb_in[0]["referencedSecurityGroupId"]) == (80, VPC_ORIGINS_SECURITY_GROUP_ID)
    assert "prefixListId" not in alb_in[0]
    backend_in = [r for r in ingress.values() if r["securityGroupId"] == BACKEND_SG]
    assert [(r["fromPort"], r["referencedSecurityGroupId"]) for r in backend_in] == [(8080, ALB_SG)]
    assert all(r.get("cidrIpv4") != "0.0.0.0/0" for r in ingress.values())
    egress = [r.inputs for r in staging.of_type(EGRESS) if r.inputs["securityGroupId"] == BACKEND_SG]
    assert sorted((r["fromPort"], r.get("cidrIpv4") or r.get("referencedSecurityGroupId")) for r in egress) == [
        (443, "0.0.0.0/0"),
        (5432, "swipesavvy-db-sg-id"),
    ]
    assert all(r["fromPort"] != 22 for r in ingress.values())


def test_instance_role_reads_only_the_releases_and_the_backend_login(staging):
    policy = json.loads(staging.of_name("aws:iam/rolePolicy:RolePolicy", "swipesavvy-api-instance").inputs["policy"])
    statements = {s["Sid"]: s for s in policy["Statement"]}
    release = load_release(PROJECT_ROOT, "examples/backend-release")
    # Every release object: a rollback launches the previous version, which fetches the previous release.
    assert statements["ReadTheReleases"]["Resource"] == "arn:aws:s3:::swipesavvy-api-artifacts-a1b2c3d/releases/*"
    assert release.key.startswith("releases/")
    secret = "arn:aws:secretsmanager:us-east-1:123456789012:secret:swipesavvy/staging"
    # Both slots of each rotated login: the one in use and the previous launch template's.
    assert statements["ReadTheBackendLogin"]["Resource"] == [
        f"{secret}/db/swipesavvy_backend-20261126-AbCdEf",
        f"{secret}/db/swipesavvy_backend_b-20261126-AbCdEf",
    ]
    assert statements["ReadTheAgentSecrets"]["Resource"] == [
        f"{secret}/datadog/agent-api-key-20261126-AbCdEf",
        f"{secret}/db/swipesavvy_monitor-20261126-AbCdEf",
        f"{secret}/db/swipesavvy_monitor_b-20261126-AbCdEf",
    ]
    tokens = staging.of_name("aws:secretsmanager/secret:Secret", "swipesavvy-api-api-tokens").inputs
    assert tokens["namePrefix"] == "swipesavvy/staging/api-tokens-"
    assert statements["ReadTheApiTokens"]["Resource"].startswith(
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:swipesavvy/staging/api-tokens-"
    )
    assert set(statements) == {"ReadTheReleases", "ReadTheBackendLogin", "ReadTheApiTokens", "ReadTheAgentSecrets"}
    ssm = staging.of_name("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "swipesavvy-api-ssm").inputs
    assert ssm["policyArn"] == "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"


def test_an_uploaded_release_grants_every_release_in_its_bucket():
    config = stack_config("staging")
    uri = f"s3://swipesavvy-releases/releases/{'d' * 64}.tar.gz"
    config["swipesavvy:backend"] = {**config["swipesavvy:backend"], "artifact": uri}
    run = run_program(config)
    policy = json.loads(run.of_name("aws:iam/rolePolicy:RolePolicy", "swipesavvy-api-instance").inputs["policy"])
    (release,) = [s["Resource"] for s in policy["Statement"] if s["Sid"] == "ReadTheReleases"]
    assert release == "arn:aws:s3:::swipesavvy-releases/releases/*"


def test_the_release_is_uploaded_under_its_content_hash_to_a_private_bucket(staging):
    release = load_release(PROJECT_ROOT, "examples/backend-release")
    upload = staging.of_name("aws:s3/bucketObjectv2:BucketObjectv2", "swipesavvy-api-release").inputs
    assert upload["key"] == release.key == f"releases/{release.sha256}.tar.gz"
    assert upload["bucket"] == "swipesavvy-api-artifacts-a1b2c3d"
    block = staging.of_name("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "swipesavvy-api-artifacts").inputs
    assert all(
        block[k] is True for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    )
    policy = json.loads(
        staging.of_name("aws:s3/bucketPolicy:BucketPolicy", "swipesavvy-api-artifacts").inputs["policy"]
    )
    assert [s["Sid"] for s in policy["Statement"]] == ["DenyInsecureTransport"]


def test_outputs_name_the_site_the_api_and_the_group(staging):
    outputs = {name: value for name, (value, _) in staging.outputs.items()}
    assert outputs["backend_group_name"] == "swipesavvy-api-asg"
    assert outputs["api_url"] == outputs["site_url"] + "/api"
    assert outputs["site_bucket"] and outputs["site_distribution_id"]
    assert ALB_DNS_NAME not in json.dumps(outputs)  # the load balancer is reached through CloudFront only


def test_a_backend_without_a_route_out_fails_before_anything_is_created():
    config = stack_config("staging")
    config["swipesavvy:network"] = {**config["swipesavvy:network"], "natGateway": False}
    mocks = RecordingMocks()
    with pytest.raises(pulumi.RunError, match=r"swipesavvy:network\.natGateway = false is invalid: the backend"):
        run_program(config, mocks=mocks)
    assert mocks.resources == []


def test_production_runs_two_instances_behind_a_protected_load_balancer(production, production_existing_vpc):
    group = production.one(ASG).inputs
    assert group["minSize"] == group["desiredCapacity"] == group["waitForElbCapacity"] == 2
    assert group["vpcZoneIdentifiers"] == ["swipesavvy-private-0-id", "swipesavvy-private-1-id"]
    existing = production_existing_vpc.one(ASG).inputs["vpcZoneIdentifiers"]
    assert existing == ["subnet-0123abcd", "subnet-4567ef01"]
    assert production.one("aws:lb/loadBalancer:LoadBalancer").inputs["enableDeletionProtection"] is True
    assert "production" in base64.b64decode(production.one(LT).inputs["userData"]).decode()
    assert production.one(LT).inputs["instanceType"] == "m7g.large"


def test_staging_load_balancer_can_be_replaced(staging):
    assert staging.one("aws:lb/loadBalancer:LoadBalancer").inputs["enableDeletionProtection"] is False


def test_production_site_is_served_on_its_own_domain_with_modern_tls(production_existing_vpc):
    distribution = production_existing_vpc.one("aws:cloudfront/distribution:Distribution").inputs
    assert distribution["aliases"] == ["app.swipesavvy.example"]
    assert distribution["viewerCertificate"]["minimumProtocolVersion"] == "TLSv1.2_2021"
    assert distribution["priceClass"] == "PriceClass_All"
    outputs = {name: value for name, (value, _) in production_existing_vpc.outputs.items()}
    assert outputs["site_url"] == "https://app.swipesavvy.example"
    assert outputs["api_url"] == "https://app.swipesavvy.example/api"


def test_destroy_keeps_the_releases_for_a_later_rollback(staging):
    kept = {name for typ, name in staging.retained if name.startswith("swipesavvy-api-")}
    assert {"swipesavvy-api-artifacts", "swipesavvy-api-release"} <= kept
    assert ("aws:s3/bucket:Bucket", "swipesavvy-api-artifacts") in staging.retained


def test_the_api_tokens_are_generated_into_their_own_secret(staging):
    """Read at boot into the env file (components/app/backend_boot.py), never in user data."""
    version = staging.of_name("aws:secretsmanager/secretVersion:SecretVersion", "swipesavvy-api-api-tokens").inputs
    assert is_secret(version["secretString"])
    assert json.loads(unwrap_all(version["secretString"])) == {
        "api_token": "APP-PASSWORD-generated-swipesavvy-api-api-token",
        "admin_token": "APP-PASSWORD-generated-swipesavvy-api-admin-token",
        # generated a rotation ahead, accepted already (docs/operations.md "Secrets")
        "next_api_token": "APP-PASSWORD-generated-swipesavvy-api-api-token-b",
        "next_admin_token": "APP-PASSWORD-generated-swipesavvy-api-admin-token-b",
    }
    for kind in ("api", "admin"):
        for slot in ("", "-b", "-c"):
            token = staging.of_name("random:index/randomPassword:RandomPassword", f"swipesavvy-api-{kind}-token{slot}")
            assert (token.inputs["length"], token.inputs["special"]) == (40, False)


def test_every_bucket_lifecycle_aborts_incomplete_uploads(staging, production):
    # Checkov CKV_AWS_300, on every bucket of both committed stacks (release, ALB logs, site, site logs).
    for run in (staging, production):
        lifecycles = run.of_type("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
        assert {r.name for r in lifecycles} == {r.name for r in run.of_type("aws:s3/bucket:Bucket")}
        for lifecycle in lifecycles:
            (rule,) = lifecycle.inputs["rules"]
            assert rule["status"] == "Enabled" and rule["abortIncompleteMultipartUpload"] == {"daysAfterInitiation": 7}
