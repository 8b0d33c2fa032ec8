"""``python -m ops preflight``: the committed stacks' needs against accounts served by botocore's
Stubber (every call the preflight makes is stubbed, so a write, or a read not listed, fails).

Each item passes on a roomy account and fails on one that lacks it, asserted as whole lines.
The AWS rules behind the items are cited in ops/live/preflight.py and tested at the bottom.
"""

from __future__ import annotations

import dataclasses

import pytest
from pulumi_program import stack_config

from ops import cli
from ops.command import EXIT_FAILED, EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE, CommandFailed
from ops.live.preflight import (
    CLOUDFRONT_DEFAULTS,
    COUNTED,
    EC2_STANDARD_VCPUS,
    FAIL,
    PASS,
    RESPONSE_HEADERS_POLICIES,
    VPC_ORIGINS,
    AccountFacts,
    StackNeeds,
    lambda_item,
)
from ops.preflight_cli import mocked_preflight, run_preflight
from ops.rehearsal.preflight_mock import ACCOUNT, CALLER, MockAccount


@pytest.fixture
def needs(staging, production):
    return {
        "staging": StackNeeds.from_run("staging", stack_config("staging"), staging),
        "production": StackNeeds.from_run("production", stack_config("production"), production),
    }


def preflight(capsys, needs: StackNeeds, account: MockAccount, as_json: bool = False) -> tuple[int, list[str], str]:
    clients, stubbers = account.clients(needs)
    code = run_preflight(needs, as_json, clients)
    for stubber in stubbers:
        stubber.assert_no_pending_responses()  # every stubbed read was made, and nothing else
    out, err = capsys.readouterr()
    return code, out.splitlines(), err.strip()


STAGING_ON_A_ROOMY_ACCOUNT = [
    f"✓ credentials: needed any account (Pulumi.staging.yaml names none: aws:allowedAccountIds would pin it),"
    f" available account {ACCOUNT} as {CALLER}",
    "✓ zones: needed 2 zones where CloudFront VPC origins are supported, available the stack will use use1-az1"
    " (us-east-1c), use1-az2 (us-east-1d); chosen by zone ID (components/zones.py)",
    "✓ lambda reserved concurrency: needed 0 reserved, available 900 (unreserved 1000 of 1000 minus the 100 Lambda"
    ' keeps); lambda L-B99A9384 "Concurrent executions"',
    "✓ ec2 vcpus: needed 4 vCPUs (2 x t4g.small of 2 during a rolling refresh), available 64 (64, 0 in use);"
    ' ec2 L-1216C47A "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances"',
    '✓ vpcs: needed 1, available 5 (5, 0 in use); vpc L-F678F1CE "VPCs per Region"',
    '✓ internet gateways: needed 1, available 5 (5, 0 in use); vpc L-A4707A72 "Internet gateways per Region"',
    "✓ nat gateways: needed 1 in one zone (in use: the busiest zone), available 5 (5, 0 in use);"
    ' vpc L-FE5A380F "NAT gateways per Availability Zone"',
    '✓ elastic ips: needed 1, available 5 (5, 0 in use); ec2 L-0263D0A3 "EC2-VPC Elastic IPs"',
    "✓ interface endpoints: needed 1 in the VPC, available 50 (50, 0 in use);"
    ' vpc L-29B6F2EB "Interface VPC endpoints per VPC"',
    '✓ rds manual snapshots: needed 2, available 100 (100, 0 in use); rds L-272F1212 "Manual DB instance snapshots"',
    "✓ cloudfront response headers policies: needed 1, available 20 (20, 0 in use);"
    ' cloudfront L-0000C0F1 "Response headers policies per AWS account"',
    "✓ cloudfront vpc origins: needed 1, available 25 (25, 0 in use);"
    ' cloudfront L-0000C0F2 "VPC origins per AWS account"',
    "account takes stack staging: all 12 items pass",
]


def test_staging_on_a_roomy_account_passes_every_item(capsys, needs):
    assert preflight(capsys, needs["staging"], MockAccount()) == (EXIT_OK, STAGING_ON_A_ROOMY_ACCOUNT, "")


def test_a_new_accounts_lambda_concurrency_is_named_as_the_shortfall(capsys, needs):
    # Lambda quotas: new accounts start with reduced concurrency (here 10); production reserves 6,
    # so the account needs 106: 100 kept unreserved and the 6.
    code, lines, summary = preflight(capsys, needs["production"], MockAccount(concurrency=10, unreserved=10))
    assert code == EXIT_FAILED
    assert lines[2] == (
        "✗ lambda reserved concurrency: needed 6 reserved (swipesavvy-db-operator-reader-function 5,"
        " swipesavvy-db-operator-function 1), available 0 (unreserved 10 of 10 minus the 100 Lambda keeps);"
        ' lambda L-B99A9384 "Concurrent executions" (fix: aws service-quotas request-service-quota-increase'
        " --service-code lambda --quota-code L-B99A9384 --desired-value 106 --region us-east-1, or pulumi config set"
        " --path 'swipesavvy:database.operatorReservedConcurrency' false --stack production)"
    )
    assert summary == "the first pulumi up of stack production would fail: lambda reserved concurrency"


def test_reserving_exactly_down_to_the_last_100_unreserved_passes(capsys, needs):
    code, lines, _ = preflight(capsys, needs["production"], MockAccount(concurrency=1000, unreserved=106))
    assert (code, lines[2].split(";")[0]) == (
        EXIT_OK,
        "✓ lambda reserved concurrency: needed 6 reserved (swipesavvy-db-operator-reader-function 5,"
        " swipesavvy-db-operator-function 1), available 6 (unreserved 106 of 1000 minus the 100 Lambda keeps)",
    )


@pytest.mark.parametrize(
    ("quota_name", "used", "line"),
    [
        (
            EC2_STANDARD_VCPUS.name,
            62,
            "✗ ec2 vcpus: needed 4 vCPUs (2 x t4g.small of 2 during a rolling refresh), available 2 (64, 62 in use);"
            ' ec2 L-1216C47A "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances" (fix: aws'
            " service-quotas request-service-quota-increase --service-code ec2 --quota-code L-1216C47A"
            " --desired-value 66 --region us-east-1)",
        ),
        (
            "VPCs per Region",
            5,
            '✗ vpcs: needed 1, available 0 (5, 5 in use); vpc L-F678F1CE "VPCs per Region" (fix: aws service-quotas'
            " request-service-quota-increase --service-code vpc --quota-code L-F678F1CE --desired-value 6"
            " --region us-east-1)",
        ),
        (
            "Internet gateways per Region",
            5,
            '✗ internet gateways: needed 1, available 0 (5, 5 in use); vpc L-A4707A72 "Internet gateways per Region"'
            " (fix: aws service-quotas request-service-quota-increase --service-code vpc --quota-code L-A4707A72"
            " --desired-value 6 --region us-east-1)",
        ),
        (
            "NAT gateways per Availability Zone",
            5,
            "✗ nat gateways: needed 1 in one zone (in use: the busiest zone), available 0 (5, 5 in use); vpc"
            ' L-FE5A380F "NAT gateways per Availability Zone" (fix: aws service-quotas request-service-quota-increase'
            " --service-code vpc --quota-code L-FE5A380F --desired-value 6 --region us-east-1)",
        ),
        (
            "EC2-VPC Elastic IPs",
            5,
            '✗ elastic ips: needed 1, available 0 (5, 5 in use); ec2 L-0263D0A3 "EC2-VPC Elastic IPs" (fix: aws'
            " service-quotas request-service-quota-increase --service-code ec2 --quota-code L-0263D0A3"
            " --desired-value 6 --region us-east-1)",
        ),
        (
            "Manual DB instance snapshots",
            99,
            '✗ rds manual snapshots: needed 2, available 1 (100, 99 in use); rds L-272F1212 "Manual DB instance'
            ' snapshots" (fix: aws service-quotas request-service-quota-increase --service-code rds --quota-code'
            " L-272F1212 --desired-value 101 --region us-east-1)",
        ),
        (
            RESPONSE_HEADERS_POLICIES.name,
            20,
            "✗ cloudfront response headers policies: needed 1, available 0 (20, 20 in use); cloudfront L-0000C0F1"
            ' "Response headers policies per AWS account" (fix: aws service-quotas request-service-quota-increase'
            " --service-code cloudfront --quota-code L-0000C0F1 --desired-value 21 --region us-east-1)",
        ),
        (
            VPC_ORIGINS.name,
            25,
            "✗ cloudfront vpc origins: needed 1, available 0 (25, 25 in use); cloudfront L-0000C0F2"
            ' "VPC origins per AWS account" (fix: aws service-quotas request-service-quota-increase'
            " --service-code cloudfront --quota-code L-0000C0F2 --desired-value 26 --region us-east-1)",
        ),
    ],
)
def test_a_quota_the_account_has_used_up_is_named_with_its_request(capsys, needs, quota_name, used, line):
    code, lines, summary = preflight(capsys, needs["staging"], MockAccount(usage={quota_name: used}))
    failed = [got for got in lines if got.startswith("✗")]
    assert (code, failed) == (EXIT_FAILED, [line])
    assert summary == f"the first pulumi up of stack staging would fail: {line[2:].split(':')[0]}"


def test_interface_endpoints_in_an_existing_vpc_count_what_is_there(capsys, production_existing_vpc):
    config = stack_config("production")
    config["swipesavvy:network"] = {"existingVpcId": "vpc-0123abcd"}
    needs = dataclasses.replace(
        StackNeeds.from_run("production", config, production_existing_vpc), interface_endpoints=1
    )
    code, lines, _ = preflight(capsys, needs, MockAccount(usage={"Interface VPC endpoints per VPC": 50}))
    assert [line for line in lines if line.startswith("✗")] == [
        "✗ interface endpoints: needed 1 in the VPC, available 0 (50, 50 in use); vpc L-29B6F2EB"
        ' "Interface VPC endpoints per VPC" (fix: aws service-quotas request-service-quota-increase --service-code'
        " vpc --quota-code L-29B6F2EB --desired-value 51 --region us-east-1)"
    ]
    assert code == EXIT_FAILED


def test_a_cloudfront_quota_service_quotas_does_not_list_falls_back_to_the_documented_default(capsys, needs):
    account = MockAccount(unlisted={VPC_ORIGINS.name})
    code, lines, _ = preflight(capsys, needs["staging"], account)
    assert (code, lines[11]) == (
        EXIT_OK,
        "✓ cloudfront vpc origins: needed 1, available 25 (25, documented default, not in Service Quotas, 0 in use);"
        ' cloudfront (no code) "VPC origins per AWS account"',
    )


def test_a_quota_with_no_applied_value_is_read_from_aws_defaults(capsys, needs):
    code, lines, _ = preflight(capsys, needs["staging"], MockAccount(unapplied={"L-F678F1CE"}))
    assert (code, lines[4]) == (
        EXIT_OK,
        '✓ vpcs: needed 1, available 5 (5, 0 in use); vpc L-F678F1CE "VPCs per Region"',
    )


def test_the_account_the_stack_file_names_must_be_the_callers(capsys, needs):
    wrong = dataclasses.replace(needs["staging"], allowed_account_ids=("210987654321",))
    code, lines, _ = preflight(capsys, wrong, MockAccount())
    assert (code, lines[0]) == (
        EXIT_FAILED,
        f"✗ credentials: needed account 210987654321 (aws:allowedAccountIds in Pulumi.staging.yaml), available account"
        f" {ACCOUNT} as {CALLER} (fix: credentials for account 210987654321 (AWS_PROFILE or aws sso login), or correct"
        " aws:allowedAccountIds)",
    )
    right = dataclasses.replace(needs["staging"], allowed_account_ids=(ACCOUNT,))
    assert preflight(capsys, right, MockAccount())[1][0] == (
        f"✓ credentials: needed account {ACCOUNT} (aws:allowedAccountIds in Pulumi.staging.yaml), available account"
        f" {ACCOUNT} as {CALLER}"
    )


def test_configured_zones_that_are_use1_az3_in_this_account_are_refused(capsys, needs):
    configured = dataclasses.replace(needs["staging"], configured_zones=("us-east-1a", "us-east-1b"))
    code, lines, _ = preflight(capsys, configured, MockAccount())
    assert (code, lines[1]) == (
        EXIT_FAILED,
        "✗ zones: needed 2 zones where CloudFront VPC origins are supported (swipesavvy:network.availabilityZones),"
        " available use1-az3 (us-east-1a), use1-az4 (us-east-1b); CloudFront developer guide, Restrict access with"
        " VPC origins (fix: pulumi config rm --path 'swipesavvy:network.availabilityZones' (the stack then chooses by"
        " zone ID) or name other zones than us-east-1a)",
    )


def test_a_region_whose_vpc_origin_exceptions_are_not_on_file_says_so(capsys, needs):
    elsewhere = dataclasses.replace(needs["staging"], region="eu-west-1")
    zones = [("eu-west-1a", "euw1-az3"), ("eu-west-1b", "euw1-az1"), ("eu-west-1c", "euw1-az2")]
    code, lines, _ = preflight(capsys, elsewhere, MockAccount(zones=zones))
    assert (code, lines[1]) == (
        EXIT_OK,
        "✓ zones: needed 2 zones where CloudFront VPC origins are supported, available the stack will use euw1-az1"
        " (eu-west-1b), euw1-az2 (eu-west-1c); no VPC-origin exceptions on file for eu-west-1; chosen by zone ID"
        " (components/zones.py)",
    )


def test_a_region_with_too_few_supported_zones_fails_the_zones_item(capsys, needs):
    account = MockAccount(zones=[("us-east-1a", "use1-az3"), ("us-east-1b", "use1-az1")])
    code, lines, _ = preflight(capsys, needs["staging"], account)
    assert (code, lines[1]) == (
        EXIT_FAILED,
        "✗ zones: needed 2 zones where CloudFront VPC origins are supported, available the region has 1 available"
        " zones that CloudFront VPC origins support (use1-az1), the network needs 2 (fix: deploy the stack in another"
        " aws:region, or set swipesavvy:network.existingVpcId)",
    )


def test_a_permission_missing_is_one_line_naming_it_and_exits_unread(capsys, needs):
    code, lines, summary = preflight(capsys, needs["staging"], MockAccount(denied={"get_account_settings"}))
    assert (code, lines[2]) == (
        EXIT_UNAVAILABLE,
        "? lambda reserved concurrency: could not read: AccessDeniedException on lambda:GetAccountSettings"
        " (fix: allow lambda:GetAccountSettings to the deploying credentials)",
    )
    assert summary == "could not read what stack staging needs: lambda reserved concurrency"


def test_a_shortfall_outranks_what_could_not_be_read(capsys, needs):
    account = MockAccount(denied={"describe_vpcs"}, usage={"EC2-VPC Elastic IPs": 5})
    code, _, summary = preflight(capsys, needs["staging"], account)
    assert (code, summary) == (EXIT_FAILED, "the first pulumi up of stack staging would fail: elastic ips")


def test_json_has_every_item_and_the_verdict(capsys, needs):
    import json

    code, lines, _ = preflight(capsys, needs["staging"], MockAccount(), as_json=True)
    document = json.loads("\n".join(lines))
    assert (code, document["verdict"], document["account"], len(document["items"])) == (EXIT_OK, "pass", ACCOUNT, 12)
    assert document["items"][2] == {
        "name": "lambda reserved concurrency",
        "status": "pass",
        "needed": "0 reserved",
        "available": "900 (unreserved 1000 of 1000 minus the 100 Lambda keeps)",
        "quota": 'lambda L-B99A9384 "Concurrent executions"',
        "fix": "",
    }


def test_no_credentials_is_one_line_with_the_fix(capsys, no_credentials):
    # The whole command: the program under mocks (its warnings are the preview's), then the account.
    assert cli.main(["preflight", "--stack", "staging"]) == EXIT_UNAVAILABLE
    assert capsys.readouterr() == (
        "",
        "error: cannot read the AWS account: no AWS credentials found (fix: `aws configure` for access keys, or"
        " `aws sso login --profile NAME` and AWS_PROFILE=NAME for SSO; or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        " in the environment)\n",
    )


def test_denied_caller_identity_stops_before_anything_else(needs):
    account = MockAccount(denied={"get_caller_identity"})
    clients, _ = account.clients(needs["staging"])
    with pytest.raises(CommandFailed) as failed:
        run_preflight(needs["staging"], False, clients)
    assert (failed.value.exit_code, str(failed.value)) == (
        EXIT_UNAVAILABLE,
        "cannot read the AWS account: AccessDeniedException on sts:GetCallerIdentity (fix: allow"
        " sts:GetCallerIdentity to the deploying credentials)",
    )


def test_an_unknown_stack_is_a_usage_error(capsys):
    assert cli.main(["preflight", "--stack", "nope"]) == EXIT_USAGE
    assert capsys.readouterr().err.startswith("error: no stack config Pulumi.nope.yaml in ")


def test_rehearse_shows_production_on_a_mocked_new_account_short_of_lambda_concurrency(production):
    lines = mocked_preflight("production", production)
    assert lines[0] == (
        "preflight against a mocked new account (Lambda concurrency 10; python -m ops preflight --stack production"
        " reads the real one):"
    )
    assert [line for line in lines if not line.startswith("✓")][1:] == [
        "✗ lambda reserved concurrency: needed 6 reserved (swipesavvy-db-operator-reader-function 5,"
        " swipesavvy-db-operator-function 1), available 0 (unreserved 10 of 10 minus the 100 Lambda keeps);"
        ' lambda L-B99A9384 "Concurrent executions" (fix: aws service-quotas request-service-quota-increase'
        " --service-code lambda --quota-code L-B99A9384 --desired-value 106 --region us-east-1, or pulumi config set"
        " --path 'swipesavvy:database.operatorReservedConcurrency' false --stack production)",
        "the first pulumi up of stack production would fail: lambda reserved concurrency",
    ]


def test_the_committed_stacks_count_what_their_programs_create(needs):
    staging, production = needs["staging"], needs["production"]
    assert (staging.reserved_concurrency, staging.peak_instances, staging.manual_snapshots) == ({}, 2, 2)
    assert production.reserved_concurrency == {
        "swipesavvy-db-operator-reader-function": 5,
        "swipesavvy-db-operator-function": 1,
    }
    # Production runs 2 instances, 4 during a rolling refresh at max_healthy_percentage 200 (EC2 Auto
    # Scaling user guide, "Instance refresh": new instances launch before the old terminate).
    assert (production.instance_type, production.peak_instances) == ("m7g.large", 4)
    # Production runs a NAT gateway in each zone (network.natGatewayPerZone), each with its address.
    assert (staging.nat_gateways_per_zone, staging.elastic_ips) == (1, 1)
    assert (production.nat_gateways_per_zone, production.elastic_ips) == (1, 2)
    for stack in (staging, production):
        assert (stack.creates_vpc, stack.internet_gateways) == (True, 1)
        assert (stack.response_headers_policies, stack.vpc_origins, stack.interface_endpoints) == (1, 1, 1)


# --- the AWS rules preflight relies on ------------------------------------------------------


@pytest.mark.parametrize(("unreserved", "status"), [(105, FAIL), (106, PASS)])
def test_lambda_keeps_100_unreserved_after_every_reservation(needs, unreserved, status):
    # Lambda developer guide, "Configuring reserved concurrency for a function": a function may
    # reserve up to the account's unreserved concurrency minus 100 (kept for the functions that
    # reserve none). Production reserves 6.
    facts = AccountFacts(ACCOUNT, CALLER, [], lambda_limit=1000, lambda_unreserved=unreserved)
    assert lambda_item(needs["production"], facts).status == status


def test_every_counted_quota_has_the_code_aws_documents():
    # Amazon VPC user guide, "Amazon VPC quotas"; EC2 user guide, "Amazon EC2 service quotas" and
    # "Elastic IP addresses"; RDS user guide, "Quotas in Amazon RDS"; CloudFront developer guide,
    # "Quotas" (response headers policies 20, VPC origins 25 per account: looked up by name).
    codes = {quota.name: (quota.service, quota.code) for _, quota, _, _ in COUNTED}
    assert codes == {
        "VPCs per Region": ("vpc", "L-F678F1CE"),
        "Internet gateways per Region": ("vpc", "L-A4707A72"),
        "NAT gateways per Availability Zone": ("vpc", "L-FE5A380F"),
        "EC2-VPC Elastic IPs": ("ec2", "L-0263D0A3"),
        "Interface VPC endpoints per VPC": ("vpc", "L-29B6F2EB"),
        "Manual DB instance snapshots": ("rds", "L-272F1212"),
        "Response headers policies per AWS account": ("cloudfront", ""),
        "VPC origins per AWS account": ("cloudfront", ""),
    }
    assert CLOUDFRONT_DEFAULTS == {"Response headers policies per AWS account": 20, "VPC origins per AWS account": 25}
    assert (EC2_STANDARD_VCPUS.service, EC2_STANDARD_VCPUS.code) == ("ec2", "L-1216C47A")
