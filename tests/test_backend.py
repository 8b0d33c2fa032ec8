"""``BackendService`` in the whole program under mocks: staging (the committed config,
the example release) and production (the committed file, and a variant in an existing VPC)."""

from __future__ import annotations

import base64
import json

import pulumi
import pytest
import yaml
from pulumi_program import (
    ALB_DNS_NAME,
    AMI_ID,
    CLOUDFRONT_PREFIX_LIST_ID,
    DB_ADDRESS,
    PROJECT_ROOT,
    RecordingMocks,
    is_secret,
    plain_values,
    run_program,
    stack_config,
    unwrap_all,
)

from components.agent_config import AgentSettings
from components.backend_boot import BootSettings, user_data
from components.release_archive import load_release

LT = "aws:ec2/launchTemplate:LaunchTemplate"
ASG = "aws:autoscaling/group:Group"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
BACKEND_SG = "swipesavvy-backend-id"
ALB_SG = "swipesavvy-api-alb-sg-id"


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
    from components.backend import ami_parameter

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


def test_group_rolls_through_an_instance_refresh_and_waits_for_health(staging):
    group = staging.one(ASG).inputs
    assert group["vpcZoneIdentifiers"] == ["swipesavvy-private-0-id", "swipesavvy-private-1-id"]
    assert group["minSize"] == group["maxSize"] == group["desiredCapacity"] == 1
    assert group["launchTemplate"]["version"] == "1"  # a number: "$Latest" never starts a refresh
    assert group["healthCheckType"] == "ELB" and group["waitForElbCapacity"] == 1
    refresh = group["instanceRefresh"]
    assert refresh["strategy"] == "Rolling"
    assert (refresh["preferences"]["minHealthyPercentage"], refresh["preferences"]["maxHealthyPercentage"]) == (
        100,
        200,
    )
    assert isinstance(refresh["preferences"]["instanceWarmup"], str)


def test_target_group_checks_the_health_endpoint_on_8080(staging):
    target = staging.one("aws:lb/targetGroup:TargetGroup").inputs
    assert target["port"] == 8080 and target["protocol"] == "HTTP"
    assert target["healthCheck"]["path"] == "/api/health" and target["healthCheck"]["matcher"] == "200"


def test_load_balancer_serves_only_cloudfront_requests_with_the_origin_header(staging):
    alb = staging.one("aws:lb/loadBalancer:LoadBalancer").inputs
    assert alb["dropInvalidHeaderFields"] is True and alb["internal"] is False
    assert alb["subnets"] == ["swipesavvy-public-0-id", "swipesavvy-public-1-id"]
    listener = staging.one("aws:lb/listener:Listener").inputs
    assert listener["port"] == 80
    assert listener["defaultActions"][0]["fixedResponse"]["statusCode"] == "403"
    rule = staging.one("aws:lb/listenerRule:ListenerRule").inputs
    assert is_secret(rule["conditions"])  # the header's value makes the whole condition secret
    (condition,) = unwrap_all(rule["conditions"])
    assert condition["httpHeader"]["httpHeaderName"] == "X-Origin-Verify"
    assert rule["actions"][0]["type"] == "forward"


def test_security_groups_admit_only_the_next_hop(staging):
    ingress = {r.name: r.inputs for r in staging.of_type(INGRESS)}
    alb_in = [r for r in ingress.values() if r["securityGroupId"] == ALB_SG]
    assert alb_in == [ingress["swipesavvy-api-alb-from-cloudfront"]]
    assert (alb_in[0]["fromPort"], alb_in[0]["prefixListId"]) == (80, CLOUDFRONT_PREFIX_LIST_ID)
    backend_in = [r for r in ingress.values() if r["securityGroupId"] == BACKEND_SG]
    assert [(r["fromPort"], r["referencedSecurityGroupId"]) for r in backend_in] == [(8080, ALB_SG)]
    assert all(r.get("cidrIpv4") != "0.0.0.0/0" for r in ingress.values())
    egress = [r.inputs for r in staging.of_type(EGRESS) if r.inputs["securityGroupId"] == BACKEND_SG]
    assert sorted((r["fromPort"], r.get("cidrIpv4") or r.get("referencedSecurityGroupId")) for r in egress) == [
        (443, "0.0.0.0/0"),
        (5432, "swipesavvy-db-sg-id"),
    ]
    assert all(r["fromPort"] != 22 for r in ingress.values())


def test_instance_role_reads_only_the_release_and_the_backend_login(staging):
    policy = json.loads(staging.of_name("aws:iam/rolePolicy:RolePolicy", "swipesavvy-api-instance").inputs["policy"])
    statements = {s["Sid"]: s for s in policy["Statement"]}
    release = load_release(PROJECT_ROOT, "examples/backend-release")
    assert statements["ReadTheRelease"]["Resource"] == f"arn:aws:s3:::swipesavvy-api-artifacts-a1b2c3d/{release.key}"
    assert statements["ReadTheBackendLogin"]["Resource"].endswith(
        ":secret:swipesavvy/staging/db/swipesavvy_backend-20261126-AbCdEf"
    )
    assert statements["ReadTheAgentSecrets"]["Resource"] == [
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:swipesavvy/staging/datadog/agent-api-key-20261126-AbCdEf",
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:swipesavvy/staging/db/swipesavvy_monitor-20261126-AbCdEf",
    ]
    tokens = staging.of_name("aws:secretsmanager/secret:Secret", "swipesavvy-api-api-tokens").inputs
    assert tokens["namePrefix"] == "swipesavvy/staging/api-tokens-"
    assert statements["ReadTheApiTokens"]["Resource"].startswith(
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:swipesavvy/staging/api-tokens-"
    )
    assert set(statements) == {"ReadTheRelease", "ReadTheBackendLogin", "ReadTheApiTokens", "ReadTheAgentSecrets"}
    ssm = staging.of_name("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "swipesavvy-api-ssm").inputs
    assert ssm["policyArn"] == "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"


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


def test_cloudfront_and_the_load_balancer_share_the_origin_secret_and_keep_it_secret(staging):
    secret = "APP-PASSWORD-generated-swipesavvy-api-origin-verify"  # what the mocked generator returns
    rule = staging.one("aws:lb/listenerRule:ListenerRule").inputs
    assert secret in json.dumps(unwrap_all(rule["conditions"])) and secret not in plain_values(rule)
    distribution = staging.one("aws:cloudfront/distribution:Distribution").inputs
    assert secret in json.dumps(unwrap_all(distribution["origins"])) and secret not in plain_values(distribution)


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
    """Read at boot into the env file (components/backend_boot.py), never in user data."""
    version = staging.of_name("aws:secretsmanager/secretVersion:SecretVersion", "swipesavvy-api-api-tokens").inputs
    assert is_secret(version["secretString"])
    assert json.loads(unwrap_all(version["secretString"])) == {
        "api_token": "APP-PASSWORD-generated-swipesavvy-api-api-token",
        "admin_token": "APP-PASSWORD-generated-swipesavvy-api-admin-token",
    }
    for kind in ("api", "admin"):
        token = staging.of_name("random:index/randomPassword:RandomPassword", f"swipesavvy-api-{kind}-token").inputs
        assert (token["length"], token["special"]) == (40, False)
