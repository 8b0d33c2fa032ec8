"""The review stack's settings (``python -m ops review-config``): generated from staging's on
purpose, accepted by the config rules for a ``pr-<N>`` stack, and deployed under mocks into
staging's network with nothing that outlives it or is shared."""

from __future__ import annotations

import json

import pytest
import yaml
from pulumi_program import run_program, stack_config, unwrap_all
from test_ops_stack_cli import one_line_error, run

from components.config import ConfigError, parse_network
from ops import lifecycle_cli
from ops.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from ops.live.review import ReviewConfigError, review_config

STAGING_OUTPUTS = {
    "vpc_id": "vpc-0a1b2c3d4e5f60718",
    "private_subnet_ids": ["subnet-0aaa1111bbbb2222c", "subnet-0ddd3333eeee4444f"],
    "public_subnet_ids": ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"],
    "db_connection": {"host": "db.example", "port": 5432},
    "secrets_endpoint_security_group_id": "sg-0e1d2c3b4a5968778",
    "site_response_headers_policy_id": "67f7725c-6f97-4210-82d7-5512b31e9d03",
}


def staging_with(**sections) -> dict:
    config = stack_config("staging")
    for name, value in sections.items():
        config[f"swipesavvy:{name}"] = {**config.get(f"swipesavvy:{name}", {}), **value}
    config["datadog:apiKey"] = {"secure": "v1:staging-only-ciphertext"}
    config["datadog:apiUrl"] = "https://api.datadoghq.eu/"
    return config


def test_the_review_config_is_staging_changed_where_a_copy_would_fail_collide_or_outlive():
    staging = staging_with(
        frontend={"domain": "staging.swipesavvy.example", "hostedZoneId": "Z0123456789ABC"},
        monitoring={"awsIntegration": True},
        database={"deployRunnerCidrs": ["10.40.0.0/20"]},
    )
    config = review_config(staging, STAGING_OUTPUTS, 42, datadog_keys=False)
    assert config["swipesavvy:network"] == {
        "existingVpcId": "vpc-0a1b2c3d4e5f60718",
        "privateSubnetIds": ["subnet-0aaa1111bbbb2222c", "subnet-0ddd3333eeee4444f"],
        "publicSubnetIds": ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"],
        "existingSecretsEndpointSecurityGroupId": "sg-0e1d2c3b4a5968778",
    }
    database = config["swipesavvy:database"]
    assert {
        k: database[k] for k in ("deletionProtection", "snapshotAfterSchema", "snapshotAfterSeed")
    } == dict.fromkeys(("deletionProtection", "snapshotAfterSchema", "snapshotAfterSeed"), False)
    assert (database["access"], database["operatorSecretsEndpoint"]) == ("operator", False)
    assert "deployRunnerCidrs" not in database
    assert config["swipesavvy:seed"]["scale"] == 0.1
    assert config["swipesavvy:backend"]["instanceCount"] == 1
    assert config["swipesavvy:frontend"] == {
        "distDir": "examples/frontend-dist",
        "existingResponseHeadersPolicyId": "67f7725c-6f97-4210-82d7-5512b31e9d03",  # staging's: a quota per account
    }
    assert config["swipesavvy:monitoring"] == {"enabled": False}
    assert "datadog:apiKey" not in config  # staging's ciphertext: another stack cannot decrypt it
    assert config["datadog:apiUrl"] == "https://api.datadoghq.eu/"
    assert stack_config("staging")["swipesavvy:database"]["deletionProtection"] is True  # staging's own untouched


def test_with_datadog_keys_in_the_environment_monitoring_stays_on_paging_nobody():
    staging = staging_with(monitoring={"awsIntegration": True, "apiTokenVariable": "SWIPESAVVY_API_TOKEN"})
    monitoring = review_config(staging, STAGING_OUTPUTS, 42, datadog_keys=True)["swipesavvy:monitoring"]
    assert monitoring == {"enabled": True, "apiTokenVariable": "SWIPESAVVY_API_TOKEN"}


def test_staging_without_its_network_outputs_is_one_line_naming_the_fix():
    outputs = {k: v for k, v in STAGING_OUTPUTS.items() if k != "private_subnet_ids"}
    with pytest.raises(ReviewConfigError) as raised:
        review_config(stack_config("staging"), outputs, 42, datadog_keys=False)
    assert str(raised.value) == (
        "staging's stack outputs have no private_subnet_ids: a review stack goes into staging's network (fix: pulumi"
        " up --stack staging with this program, which exports it, then run this again)"
    )


def test_staging_without_its_headers_policy_output_is_one_line_naming_the_fix():
    outputs = {k: v for k, v in STAGING_OUTPUTS.items() if k != "site_response_headers_policy_id"}
    with pytest.raises(ReviewConfigError) as raised:
        review_config(stack_config("staging"), outputs, 42, datadog_keys=False)
    assert str(raised.value) == (
        "staging's stack outputs have no site_response_headers_policy_id: a review stack's site uses staging's"
        " response-headers policy (one account-wide CloudFront quota) (fix: pulumi up --stack staging with this"
        " program, which exports it, then run this again)"
    )


@pytest.fixture
def outputs_file(tmp_path):
    path = tmp_path / "staging-outputs.json"
    path.write_text(json.dumps(STAGING_OUTPUTS))
    return path


def test_the_command_writes_a_file_the_program_deploys_into_stagings_network(
    capsys, tmp_path, outputs_file, monkeypatch
):
    for name in ("DD_API_KEY", "DD_APP_KEY"):
        monkeypatch.delenv(name, raising=False)
    target = tmp_path / "Pulumi.pr-42.yaml"
    code, out, _ = run(
        capsys, "review-config", "--pr", "42", "--staging-outputs", str(outputs_file), "--output", str(target)
    )
    assert code == EXIT_OK
    assert out == "wrote Pulumi.pr-42.yaml for stack pr-42: staging's network vpc-0a1b2c3d4e5f60718, monitoring off\n"
    text = target.read_text()
    assert text.startswith("# Review stack pr-42: generated by `python -m ops review-config --pr 42` from\n")
    review = run_program(yaml.safe_load(text)["config"], stack="pr-42")
    # No network of its own: no VPC, NAT gateway or Elastic IP; its groups are in staging's VPC.
    assert [r.typ for r in review.resources if r.typ.startswith("aws:ec2/") and r.typ.split(":")[-1] in (
        "Vpc", "NatGateway", "Eip", "Subnet", "InternetGateway")] == []  # fmt: skip
    groups = review.of_type("aws:ec2/securityGroup:SecurityGroup")
    assert groups and {r.inputs["vpcId"] for r in groups} == {"vpc-0a1b2c3d4e5f60718"}
    assert (
        unwrap_all(review.one("aws:rds/subnetGroup:SubnetGroup").inputs["subnetIds"])
        == STAGING_OUTPUTS["private_subnet_ids"]
    )
    assert review.of_type("aws:ec2/vpcEndpoint:VpcEndpoint") == []  # staging's VPC has its own
    # whose private DNS answers for the whole VPC: the review stack's readers are admitted on it.
    admitted = {
        r.name: (r.inputs["securityGroupId"], r.inputs["referencedSecurityGroupId"], r.inputs["fromPort"])
        for r in review.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
        if r.inputs["securityGroupId"] == "sg-0e1d2c3b4a5968778"
    }
    assert admitted == {
        "swipesavvy-db-existing-endpoint-from-backend": ("sg-0e1d2c3b4a5968778", "swipesavvy-backend-id", 443),
        "swipesavvy-db-existing-endpoint-from-operator": ("sg-0e1d2c3b4a5968778", "swipesavvy-db-operator-sg-id", 443),
    }
    assert [r.name for r in review.resources if r.typ.startswith("datadog:")] == []
    assert review.protected == set()
    # Only the site's hashed files outlive a release; destroy empties their bucket (force_destroy).
    assert {typ for typ, _ in review.retained} == {"aws:s3/bucketObjectv2:BucketObjectv2"}
    assert review.of_name("aws:s3/bucket:Bucket", "swipesavvy-frontend-site").inputs["forceDestroy"] is True
    assert review.one("aws:rds/instance:Instance").inputs["skipFinalSnapshot"] is True
    # Staging's response-headers policy, not one more against the account's CloudFront quota.
    assert review.of_type("aws:cloudfront/responseHeadersPolicy:ResponseHeadersPolicy") == []
    behavior = unwrap_all(review.one("aws:cloudfront/distribution:Distribution").inputs)["defaultCacheBehavior"]
    assert behavior["responseHeadersPolicyId"] == STAGING_OUTPUTS["site_response_headers_policy_id"]


def test_the_command_with_keys_keeps_monitoring_without_paging(capsys, tmp_path, outputs_file, monkeypatch):
    monkeypatch.setenv("DD_API_KEY", "from-the-environment")
    monkeypatch.setenv("DD_APP_KEY", "from-the-environment")
    target = tmp_path / "review.yaml"
    code, out, _ = run(
        capsys, "review-config", "--pr", "7", "--staging-outputs", str(outputs_file), "--output", str(target)
    )
    assert code == EXIT_OK and out.endswith("monitoring on (keys from DD_API_KEY, DD_APP_KEY)\n")
    review = run_program(yaml.safe_load(target.read_text())["config"], stack="pr-7")
    monitors = review.of_type("datadog:index/monitor:Monitor")
    assert monitors and all("@" not in unwrap_all(m.inputs["message"]) for m in monitors)
    assert review.of_type("datadog:aws/integrationAccount:IntegrationAccount") == []
    assert "from-the-environment" not in target.read_text()


def test_bad_outputs_are_one_line(capsys, tmp_path):
    bad = tmp_path / "outputs.json"
    bad.write_text("not json")
    code, _, err = run(capsys, "review-config", "--pr", "42", "--staging-outputs", str(bad))
    assert code == EXIT_USAGE
    assert one_line_error(err) == (
        f"error: --staging-outputs {bad} is not JSON (fix: pulumi stack output --stack staging --json > FILE)"
    )
    bad.write_text(json.dumps({"vpc_id": "vpc-0a1b2c3d4e5f60718"}))
    code, _, err = run(capsys, "review-config", "--pr", "42", "--staging-outputs", str(bad))
    assert code == EXIT_FAILED
    assert one_line_error(err).startswith("error: staging's stack outputs have no private_subnet_ids")


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"[]", "holds a JSON list, not staging's outputs by name"),
        (b'"vpc-0a1b2c3d4e5f60718"', "holds a JSON str, not staging's outputs by name"),
        (b'\xff\xfe{"vpc_id": 1}', "is not UTF-8 text (byte 0)"),
    ],
)
def test_outputs_that_are_not_an_object_of_utf8_json_are_one_line(capsys, tmp_path, content, problem):
    bad = tmp_path / "outputs.json"
    bad.write_bytes(content)
    code, _, err = run(capsys, "review-config", "--pr", "42", "--staging-outputs", str(bad))
    assert code == EXIT_USAGE
    assert one_line_error(err) == (
        f"error: --staging-outputs {bad} {problem} (fix: pulumi stack output --stack staging --json > FILE)"
    )


@pytest.fixture
def staging_file(tmp_path, monkeypatch):
    """Writes a Pulumi.staging.yaml the command reads instead of the project's."""
    root = tmp_path / "project"
    root.mkdir()
    monkeypatch.setattr(lifecycle_cli, "PROJECT_ROOT", root)

    def write(content: bytes) -> None:
        (root / "Pulumi.staging.yaml").write_bytes(content)

    return write


def _staging_yaml(**changes) -> bytes:
    return yaml.safe_dump({"config": {**stack_config("staging"), **changes}}).encode()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            _staging_yaml(**{"swipesavvy:database": "notamap"}),
            "Pulumi.staging.yaml: swipesavvy:database = 'notamap' is invalid: must be an object (fix: pulumi config "
            "set --path 'swipesavvy:database' '{...}')",
        ),
        (
            _staging_yaml(**{"swipesavvy:seed": {"enabled": True, "scale": "big"}}),
            "Pulumi.staging.yaml: swipesavvy:seed.scale = 'big' is invalid: must be a number from 0.01 to 100 (fix: "
            "pulumi config set --path 'swipesavvy:seed.scale' 1.0)",
        ),
        (
            _staging_yaml(**{"swipesavvy:region": 5}),
            "Pulumi.staging.yaml: swipesavvy:region is not a setting of this program; known settings: environment, "
            "network, database, seed, featureFlags, backend, frontend, monitoring, cost (fix: pulumi config rm "
            "swipesavvy:region)",
        ),
        (
            _staging_yaml(**{"aws:region": 5}),
            "Pulumi.staging.yaml: aws:region = 5 is not a region name (fix: pulumi config set --stack staging "
            "aws:region us-east-1)",
        ),
        (
            b"config:\n  aws:region: us-east-1\xff\n",
            "{root}/Pulumi.staging.yaml is not UTF-8 text (byte 31) (fix: save it as UTF-8)",
        ),
        (
            b"- 1\n",
            "{root}/Pulumi.staging.yaml has no config: section (fix: pulumi config set --stack staging "
            "swipesavvy:environment staging)",
        ),
    ],
)
def test_a_staging_file_of_the_wrong_types_or_encoding_is_one_line_and_nothing_is_written(
    capsys, tmp_path, outputs_file, staging_file, content, message
):
    staging_file(content)
    target = tmp_path / "Pulumi.pr-42.yaml"
    argv = ["review-config", "--pr", "42", "--staging-outputs", str(outputs_file), "--output", str(target)]
    code, out, err = run(capsys, *argv)
    assert code == EXIT_USAGE and out == ""
    assert one_line_error(err) == f"error: {message.replace('{root}', str(tmp_path / 'project'))}"
    assert not target.exists()


def test_staging_exports_what_a_review_stack_needs(staging):
    outputs = {name: value for name, (value, _secret) in staging.outputs.items()}
    assert {"vpc_id", "private_subnet_ids", "public_subnet_ids", "secrets_endpoint_security_group_id"} <= set(outputs)
    assert outputs["secrets_endpoint_security_group_id"] == "swipesavvy-db-operator-endpoint-sg-id"
    assert outputs["site_response_headers_policy_id"] == "swipesavvy-frontend-headers-id"


def test_an_existing_response_headers_policy_is_a_cloudfront_policy_id():
    from components.config import parse_frontend
    from ops.rehearsal.mock_program import PROJECT_ROOT

    raw = {"distDir": "examples/frontend-dist", "existingResponseHeadersPolicyId": "sg-0e1d2c3b4a5968778"}
    with pytest.raises(ConfigError) as raised:
        parse_frontend(raw, PROJECT_ROOT)
    assert str(raised.value) == (
        "swipesavvy:frontend.existingResponseHeadersPolicyId = 'sg-0e1d2c3b4a5968778' is invalid: must be a"
        " CloudFront response-headers policy id (a lowercase UUID, staging's site_response_headers_policy_id output)"
        " (fix: pulumi config set --path 'swipesavvy:frontend.existingResponseHeadersPolicyId'"
        " 67f7725c-6f97-4210-82d7-5512b31e9d03)"
    )


def test_an_existing_endpoint_group_needs_the_existing_vpc():
    with pytest.raises(ConfigError) as raised:
        parse_network({"existingSecretsEndpointSecurityGroupId": "sg-0e1d2c3b4a5968778"})
    assert str(raised.value) == (
        "swipesavvy:network.existingSecretsEndpointSecurityGroupId = 'sg-0e1d2c3b4a5968778' is invalid: is only used"
        " with existingVpcId (an endpoint already in that VPC) (fix: pulumi config set --path"
        " 'swipesavvy:network.existingSecretsEndpointSecurityGroupId' sg-0123abcd)"
    )
