"""``python -m ops cost``: each resource kind priced from the table, a missing price named (never
zero), the committed stacks' estimates, ``swipesavvy:cost`` refused in one line, the
pull-request line, and ``--refresh-prices`` reading ``GetProducts`` answers of the documented shape."""

from __future__ import annotations

import datetime
import json

import boto3
import pulumi
import pytest
import yaml
from botocore.stub import Stubber
from test_ops_stack_cli import one_line_error, run

from components.config import ConfigError, CostConfig, parse_stack_config
from ops import cost_cli
from ops.cost.estimate import NO_PRICE, estimate, estimate_for_stack
from ops.cost.free import FREE
from ops.cost.price_list import api_filters, on_demand_prices, query_for, refresh_table
from ops.cost.price_tables import PriceTable, load_price_table, price_table_from_json
from ops.cost.pricers import PRICERS, PlannedResource
from ops.cost.report import budget_verdict, comment_line, comment_with_cost, render_text
from ops.rehearsal.mock_program import PROJECT_ROOT, RecordingMocks, run_program, stack_config

READ = "2026-11-30"
# Round, distinct prices, so each expected figure below is checkable by eye.
TEST_PRICES = {
    "rds.instance:postgres:db.t4g.medium": 0.1,
    "rds.storage:gp3": 0.2,
    "secretsmanager.secret": 0.4,
    "secretsmanager.api-calls-10k": 0.05,
    "logs.ingest.gb": 0.5,
    "logs.storage.gb-month": 0.03,
    "logs.vended-delivery.gb": 0.25,
    "ec2.instance:t4g.small": 0.02,
    "ebs.volume:gp3": 0.08,
    "cloudwatch.metric.month": 0.3,
    "cloudwatch.alarm.month": 0.1,
    "vpc.nat-gateway.hour": 0.045,
    "vpc.nat-gateway.gb": 0.045,
    "vpc.public-ipv4.hour": 0.005,
    "elb.application.hour": 0.0225,
    "elb.application.lcu-hour": 0.008,
    "vpc.interface-endpoint.hour": 0.01,
    "vpc.interface-endpoint.gb": 0.01,
    "s3.standard.gb-month": 0.023,
    "s3.put-requests-1k": 0.005,
    "s3.get-requests-1k": 0.0004,
    "cloudfront.data-out.gb": 0.085,
    "cloudfront.https-requests-10k": 0.01,
    "cloudfront.function-invocations-1m": 0.1,
    "lambda.requests-1m": 0.2,
    "lambda.gb-second:arm64": 0.00001,
    "lambda.gb-second:x86_64": 0.00002,
    "xray.traces-1m": 5.0,
    "waf.web-acl.month": 5.0,
    "waf.rule.month": 1.0,
    "waf.requests-1m": 0.6,
    "kms.key.month": 1.0,
    "datadog.infrastructure-host.month": 15.0,
    "datadog.apm-host.month": 31.0,
    "datadog.synthetics-api-runs-10k": 5.0,
    "datadog.custom-metrics-100": 5.0,
    "ec2.cpu-credits:t4g": 0.05,
    "rds.cpu-credits:postgres:db.t4g": 0.1,
}
USAGE = CostConfig(
    nat_gb_per_month=100,
    cdn_gb_per_month=10,
    cdn_requests_per_month=1_000_000,
    load_balancer_capacity_units=2,
    endpoint_gb_per_month=4,
    log_gb_per_month=2,
    access_log_gb_per_month=3,
    s3_gb_per_bucket=10,
    s3_put_requests_per_bucket=2_000,
    s3_get_requests_per_bucket=50_000,
    secret_api_calls_per_month=20_000,
    lambda_invocations_per_month=10_000,
    lambda_average_seconds=2,
    custom_metrics=250,
)


def table(prices: dict[str, float] = TEST_PRICES) -> PriceTable:
    return price_table_from_json(
        {
            "region": "test-1",
            "prices": {
                k: {"usd": v, "per": "unit", "source": "test", "read": READ, "kind": "provider"}
                for k, v in prices.items()
            },
        }
    )


def resource(typ: str, name: str, component: str = "c", **inputs) -> PlannedResource:
    return PlannedResource(typ, name, inputs, component)


def lines_of(
    plan: list[PlannedResource], name: str, usage: CostConfig = USAGE
) -> list[tuple[str, float, float | None]]:
    found = estimate("test", plan, table(), usage).lines
    return [
        (line.what, round(line.quantity, 6), line.monthly and round(line.monthly, 4))
        for line in found
        if line.resource.endswith(f" {name}")
    ]


DATABASE = {
    "engine": "postgres",
    "instanceClass": "db.t4g.medium",
    "allocatedStorage": 100.0,
    "storageType": "gp3",
    "multiAz": False,
    "performanceInsightsEnabled": True,
    "performanceInsightsRetentionPeriod": 7.0,
    "manageMasterUserPassword": True,
    "enabledCloudwatchLogsExports": ["postgresql"],
}


def test_an_rds_instance_is_priced_by_class_storage_secret_and_exported_logs():
    assert lines_of([resource("aws:rds/instance:Instance", "db", **DATABASE)], "db") == [
        ("db.t4g.medium postgres Single-AZ", 730, 73.0),
        ("gp3 storage, 100 GB x 1", 100, 20.0),
        ("unlimited CPU credits at 100% CPU (2 vCPUs, 20% baseline)", 1168, 116.8),  # beside the total
        ("Performance Insights, 7 days", 1, 0.0),
        ("master password secret (RDS-managed)", 1, 0.4),
        ("logs ingestion (postgresql export)", 2, 1.0),
        # RDS's own log group never expires: priced as it stands after a year, 12 x 2 GB
        ("logs storage (postgresql export, never expires: 12 months' worth)", 24, 0.72),
        ("automated backups up to the allocated storage", 1, 0.0),
    ]


def test_multi_az_doubles_the_instance_hours_and_the_storage():
    """AWS bills a Multi-AZ instance's standby like its primary: hours and storage
    (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_OnDemandDBInstances.html)."""
    single = lines_of([resource("aws:rds/instance:Instance", "db", **DATABASE)], "db")
    multi = lines_of([resource("aws:rds/instance:Instance", "db", **{**DATABASE, "multiAz": True})], "db")
    assert multi[:2] == [
        ("db.t4g.medium postgres Multi-AZ (primary and standby)", 1460, 146.0),
        ("gp3 storage, 100 GB x 2", 200, 40.0),
    ]
    assert [m[2] for m in multi[:2]] == [2 * s[2] for s in single[:2]]


def test_a_missing_price_is_named_and_left_out_of_the_total_never_zero():
    plan = [
        resource(
            "aws:rds/instance:Instance",
            "db",
            **{**DATABASE, "instanceClass": "db.r7g.xlarge", "performanceInsightsRetentionPeriod": 31.0},
        )
    ]
    result = estimate("test", plan, table(), USAGE)
    missing = [line for line in result.lines if line.status == NO_PRICE]
    assert [(line.what, line.unit_price, line.monthly, line.note) for line in missing] == [
        (
            "db.r7g.xlarge postgres Single-AZ",
            None,
            None,
            "rds.instance:postgres:db.r7g.xlarge is not in the test-1 price table"
            " (fix: python -m ops cost --refresh-prices --stack test fetches it from the Price List API)",
        ),
        (
            "Performance Insights, 31 days",
            None,
            None,
            "rds.performance-insights.long-term is not in the test-1 price table"
            " (fix: add it to ops/cost/prices/test-1.json from the provider's pricing page)",
        ),
    ]
    assert result.no_price == [
        "aws:rds/instance:Instance db: db.r7g.xlarge postgres Single-AZ",
        "aws:rds/instance:Instance db: Performance Insights, 31 days",
    ]
    assert round(result.total, 2) == 22.12  # storage 20, secret 0.40, log ingestion 1 and a year's storage 0.72
    text = render_text(result).splitlines()
    assert any(
        line.split() == ["db", "db.r7g.xlarge", "postgres", "Single-AZ", "730", "instance-hours", "no", "price"]
        for line in text
    )
    start = next(i for i, line in enumerate(text) if line.startswith("not in the total (no price)"))
    assert [line.strip() for line in text[start : start + 2]] == [
        "not in the total (no price): aws:rds/instance:Instance db: db.r7g.xlarge postgres Single-AZ;",
        "aws:rds/instance:Instance db: Performance Insights, 31 days",
    ]  # wrapped between the charges, never inside one; then each one's fix
    assert text[start + 2 : start + 6] == [
        "rds.instance:postgres:db.r7g.xlarge is not in the test-1 price table",
        "  (fix: python -m ops cost --refresh-prices --stack test fetches it from the Price List API)",
        "rds.performance-insights.long-term is not in the test-1 price table",
        "  (fix: add it to ops/cost/prices/test-1.json from the provider's pricing page)",
    ]
    assert (
        comment_line(result.to_json(), None) == "test: $22.12/month (no estimate for main), 2 charges without a price"
    )


def test_a_type_nobody_priced_is_named_not_free():
    result = estimate("test", [resource("aws:opensearch/domain:Domain", "search")], table(), USAGE)
    (line,) = result.lines
    assert (line.status, line.monthly, line.note) == (
        NO_PRICE,
        None,
        "add a pricer for aws:opensearch/domain:Domain to ops/cost/pricers.py (or list it as free)",
    )
    assert result.no_price == ["aws:opensearch/domain:Domain search: a type the cost table does not know"]


def test_known_free_types_are_listed_as_free():
    plan = [
        resource("aws:ec2/vpc:Vpc", "vpc"),
        resource("datadog:index/monitor:Monitor", "cpu"),
        resource("pulumi:providers:aws", "us-east-1"),
    ]
    result = estimate("test", plan, table(), USAGE)
    assert [(line.status, line.monthly, line.what) for line in result.lines] == [
        ("free", 0.0, "no charge for a VPC"),
        ("free", 0.0, "included in the plan"),
        ("free", 0.0, "a provider's configuration"),
    ]
    assert render_text(result).splitlines()[2].split() == ["3", "free", "resources", "subtotal", "$0.00"]
    assert result.total == 0 and not result.no_price
    assert not set(FREE) & set(PRICERS)


BACKEND = [
    resource(
        "aws:ec2/launchTemplate:LaunchTemplate", "lt", "api",
        instanceType="t4g.small", monitoring={"enabled": True},
        blockDeviceMappings=[{"deviceName": "/dev/xvda", "ebs": {"volumeType": "gp3", "volumeSize": 20.0}}],
    ),
    resource("aws:autoscaling/group:Group", "asg", "api", desiredCapacity=1.0, minSize=1.0),
    resource("datadog:index/apiKey:ApiKey", "agents", "dd"),
]  # fmt: skip


def test_backend_instances_their_disks_monitoring_and_datadog_hosts():
    assert lines_of(BACKEND, "asg") == [
        ("t4g.small x 1", 730, 14.6),
        ("unlimited CPU credits at 100% CPU (2 vCPUs, 20% baseline)", 1168, 58.4),  # 2 x 80% x 730 h
        ("EBS gp3 20 GB x 1", 20, 1.6),
        ("detailed monitoring (1-minute metrics)", 7, 2.1),
    ]
    assert lines_of(BACKEND, "agents") == [
        ("infrastructure hosts x 1 (the backend's instances)", 1, 15.0),
        ("APM hosts x 1", 1, 31.0),
        ("custom metrics beyond 100 per host", 2, 10.0),  # 250 - 100 = 150: two blocks of 100
    ]


def test_a_second_backend_instance_doubles_its_instance_disk_and_hosts():
    two = [*BACKEND[:1], resource("aws:autoscaling/group:Group", "asg", "api", desiredCapacity=2.0), BACKEND[2]]
    assert lines_of(two, "asg") == [
        ("t4g.small x 2", 1460, 29.2),
        ("unlimited CPU credits at 100% CPU (2 vCPUs, 20% baseline)", 2336, 116.8),
        ("EBS gp3 20 GB x 2", 40, 3.2),
        ("detailed monitoring (1-minute metrics)", 14, 4.2),
    ]
    assert lines_of(two, "agents") == [
        ("infrastructure hosts x 2 (the backend's instances)", 2, 30.0),
        ("APM hosts x 2", 2, 62.0),
        ("custom metrics beyond 100 per host", 1, 5.0),
    ]


NETWORK_AND_EDGE = [
    (resource("aws:ec2/natGateway:NatGateway", "nat"), [("NAT gateway", 730, 32.85), ("data processed", 100, 4.5)]),
    (resource("aws:ec2/eip:Eip", "ip"), [("public IPv4 address", 730, 3.65)]),
    (
        resource(
            "aws:lb/loadBalancer:LoadBalancer",
            "alb",
            loadBalancerType="application",
            internal=False,
            subnets=["a", "b"],
        ),
        [
            ("application load balancer", 730, 16.425),
            ("capacity units, 2 average", 1460, 11.68),
            ("public IPv4 addresses x 2", 1460, 7.3),
        ],
    ),
    (  # internal: no public addresses
        resource(
            "aws:lb/loadBalancer:LoadBalancer",
            "internal-alb",
            loadBalancerType="application",
            internal=True,
            subnets=["a", "b"],
        ),
        [("application load balancer", 730, 16.425), ("capacity units, 2 average", 1460, 11.68)],
    ),
    (
        resource("aws:ec2/vpcEndpoint:VpcEndpoint", "sm", vpcEndpointType="Interface", subnetIds=["a", "b"]),
        [("interface endpoint x 2 zones", 1460, 14.6), ("data processed", 4, 0.04)],
    ),
    (resource("aws:ec2/vpcEndpoint:VpcEndpoint", "s3", vpcEndpointType="Gateway"), [("gateway endpoint", 1, 0.0)]),
    (resource("aws:secretsmanager/secret:Secret", "login"), [("secret", 1, 0.4), ("API calls", 2, 0.1)]),
    (
        resource("aws:cloudwatch/logGroup:LogGroup", "logs", retentionInDays=30.0),
        [("ingestion", 2, 1.0), ("storage, 30 days kept", 2, 0.06)],
    ),
    (resource("aws:cloudwatch/logDelivery:LogDelivery", "cdn-logs"), [("vended logs delivered", 3, 0.75)]),
    (
        resource("aws:s3/bucket:Bucket", "site"),
        [("standard storage", 10, 0.23), ("PUT/COPY/POST/LIST requests", 2, 0.01), ("GET requests", 50, 0.02)],
    ),
    (
        resource("aws:cloudfront/distribution:Distribution", "cdn"),
        [
            ("data out to viewers", 10, 0.85),
            ("always free per account: 10 of 1,024 GB out", -10, -0.85),  # beside the total
            ("HTTPS requests", 100, 1.0),
            ("always free per account: 1,000,000 of 10,000,000 requests", -100, -1.0),
        ],
    ),
    (
        resource("aws:cloudfront/function:Function", "spa"),
        [
            ("invocations (at most every request)", 1, 0.1),
            ("always free per account: 1,000,000 of 2,000,000 invocations", -1, -0.1),
        ],
    ),
    (resource("aws:kms/key:Key", "key"), [("customer managed key", 1, 1.0)]),
    (resource("aws:cloudwatch/metricAlarm:MetricAlarm", "alarm"), [("alarm", 1, 0.1)]),
]


@pytest.mark.parametrize("planned, expected", NETWORK_AND_EDGE, ids=lambda v: getattr(v, "name", ""))
def test_each_resource_kind_is_priced_from_the_table(planned, expected):
    assert lines_of([planned], planned.name) == expected


def test_a_second_lambda_function_is_priced_on_its_own_architecture_memory_and_tracing():
    operator = resource("aws:lambda/function:Function", "operator", architectures=["arm64"], memorySize=1024.0)
    reader = resource(
        "aws:lambda/function:Function",
        "reader",
        architectures=["x86_64"],
        memorySize=512.0,
        tracingConfig={"mode": "Active"},
    )
    plan = [operator, reader]
    assert lines_of(plan, "operator") == [("requests", 0.01, 0.002), ("compute, 1024 MB x 2 s", 20_000, 0.2)]
    assert lines_of(plan, "reader") == [
        ("requests", 0.01, 0.002),
        ("compute, 512 MB x 2 s", 10_000, 0.2),
        ("X-Ray traces (every invocation)", 0.01, 0.05),
    ]


def test_a_waf_web_acl_is_priced_per_acl_rule_and_request():
    acl = resource(
        "aws:wafv2/webAcl:WebAcl",
        "waf",
        scope="CLOUDFRONT",
        rules=[{"name": "common"}, {"name": "bad-inputs"}, {"name": "rate"}],
    )
    assert lines_of([acl], "waf") == [
        ("web ACL", 1, 5.0),
        ("rules x 3", 3, 3.0),
        ("requests inspected (CloudFront's)", 1, 0.6),
    ]


def test_synthetic_runs_follow_from_tick_every_and_locations():
    test = resource(
        "datadog:index/syntheticsTest:SyntheticsTest", "health", type="api", locations=["aws:us-east-1", "aws:eu-central-1"],
        optionsList={"tickEvery": 300.0},
    )  # fmt: skip
    # 730 h x 3600 s / 300 s = 8,760 runs per location; two locations: 17,520 runs.
    assert lines_of([test], "health") == [("api test every 300 s from 2 locations", 1.752, 8.76)]


def test_usage_shared_by_several_resources_of_a_type_is_split_between_them():
    plan = [resource("aws:ec2/natGateway:NatGateway", "nat-a"), resource("aws:ec2/natGateway:NatGateway", "nat-b")]
    assert lines_of(plan, "nat-a")[1] == ("data processed", 50, 2.25)


# --- the committed stacks ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def committed(staging, production):
    return {
        "staging": estimate_for_stack("staging", staging),
        "production": estimate_for_stack("production", production),
    }


@pytest.mark.parametrize("stack", ["staging", "production"])
def test_every_resource_of_the_committed_stacks_is_priced_or_known_free(committed, stack):
    result = committed[stack]
    assert result.no_price == []
    beside = {"staging": {"risk", "free tier"}, "production": {"free tier"}}[stack]  # production runs no t4g
    assert {line.status for line in result.lines} == {"priced", "free", *beside}


def test_the_committed_estimates_are_the_readmes(committed):
    readme = (PROJECT_ROOT / "docs" / "cost.md").read_text()
    for stack, result in committed.items():
        assert f"| `{stack}` | ${result.total:,.2f} |" in readme, stack


def test_the_readmes_hand_computation_for_staging_adds_up_to_the_tools(committed):
    """docs/cost.md's hand computation from the public prices (a row per AWS service, as AWS's
    calculator groups them, then Datadog): each row's figure is the tool's lines it names."""
    readme = (PROJECT_ROOT / "docs" / "cost.md").read_text()
    table_text = readme.split("**By hand, for staging**", 1)[1].split("\n\n", 2)[1]
    rows = [[cell.strip() for cell in row.strip("|").split("|")] for row in table_text.splitlines()[2:]]
    services = {row[0]: (float(row[2].strip("*")), row[3]) for row in rows}
    for service, (hand, tool) in services.items():
        if not service.startswith("**"):  # each service: the hand figure is the sum of the tool's lines
            assert hand == pytest.approx(sum(float(x) for x in tool.split(" + ")), abs=0.011), service
    staging = committed["staging"]
    datadog = sum(line.monthly for line in staging.lines if line.price_key.startswith("datadog."))
    assert float(services["**AWS total**"][1].strip("*")) == round(staging.total - datadog, 2) == 160.80
    assert float(services["**total**"][1].strip("*")) == round(staging.total, 2) == 233.08
    assert services["Datadog"][0] == round(datadog, 2)
    parts = [
        float(x) for service, (_, tool) in services.items() if not service.startswith("**") for x in tool.split(" + ")
    ]
    assert sum(parts) == pytest.approx(staging.total, abs=0.02)  # the tool column is the tool's lines
    by_what = {(line.resource.split()[1], line.what): line.monthly for line in staging.lines}
    assert by_what[("swipesavvy-db-postgres", "db.t4g.medium postgres Single-AZ")] == pytest.approx(730 * 0.065)
    assert by_what[("swipesavvy-nat", "NAT gateway")] == pytest.approx(730 * 0.045)
    assert by_what[("swipesavvy-api-asg", "t4g.small x 1")] == pytest.approx(730 * 0.0168)


def test_the_pull_request_line_shows_a_changed_instance_class(staging):
    """A pull request moving staging to db.m7g.large: the line shows the difference from main."""
    config = stack_config("staging")
    config["swipesavvy:database"] = {**config["swipesavvy:database"], "instanceClass": "db.m7g.large"}
    head = estimate_for_stack("staging", run_program(config)).to_json()
    base = estimate_for_stack("staging", staging).to_json()
    difference = round(730 * (0.168 - 0.065), 2)
    assert comment_line(head, base) == f"staging: ${base['total'] + difference:,.2f}/month (+${difference:,.2f})"
    assert comment_line(base, head) == f"staging: ${base['total']:,.2f}/month (-${difference:,.2f})"
    assert comment_line(base, base) == f"staging: ${base['total']:,.2f}/month (no change)"
    # ... and takes staging over its $300 budget (usage/staging.yml): docs/cost.md's example verdict
    assert budget_verdict(head, base) == (
        True,
        "staging: over budget: $308.27/month is $8.27 above $300.00 (usage/staging.yml monthlyBudgetUsd);"
        " what crossed it: `swipesavvy-db-postgres` (aws:rds/instance:Instance) +$75.19",
    )
    assert "$308.27/month is $8.27 above $300.00" in " ".join((PROJECT_ROOT / "docs" / "cost.md").read_text().split())


@pytest.mark.parametrize("stack", ["staging", "production"])
def test_the_readme_shows_each_stacks_output_as_the_command_prints_it(committed, stack):
    readme = (PROJECT_ROOT / "docs" / "cost.md").read_text()
    block = readme.split(f"<!-- cost-{stack} -->\n```\n", 1)[1].split("\n```", 1)[0]
    assert block == render_text(committed[stack])


def test_cost_compare_prints_the_line_from_two_json_estimates(tmp_path, capsys):
    head = {"stack": "staging", "total": 254.71, "no_price": []}
    base = {"stack": "staging", "total": 238.51, "no_price": []}
    (tmp_path / "head.json").write_text(json.dumps(head))
    (tmp_path / "base.json").write_text(json.dumps(base))
    code, out, _ = run(capsys, "cost", "--compare", str(tmp_path / "head.json"), str(tmp_path / "base.json"))
    assert (code, out) == (0, "staging: $254.71/month (+$16.20)\n")
    code, out, _ = run(capsys, "cost", "--compare", str(tmp_path / "head.json"), str(tmp_path / "missing.json"))
    assert (code, out) == (0, "staging: $254.71/month (no estimate for main)\n")
    code, _, err = run(capsys, "cost", "--compare", str(tmp_path / "missing.json"), str(tmp_path / "base.json"))
    assert code == 2
    assert one_line_error(err) == (
        f"error: {tmp_path / 'missing.json'} is not an estimate (fix: python -m ops cost --stack NAME --json > {tmp_path / 'missing.json'})"
    )


# --- swipesavvy:cost -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings, message",
    [
        (
            {"natGbPerMonth": -5},
            "swipesavvy:cost.natGbPerMonth = -5 is invalid: must be a number from 0 to 1e+07"
            " (fix: pulumi config set --path 'swipesavvy:cost.natGbPerMonth' 50)",
        ),
        (
            {"cdnRequestsPerMonth": 1.5},
            "swipesavvy:cost.cdnRequestsPerMonth = 1.5 is invalid: must be an integer from 0 to 9007199254740991"
            " (fix: pulumi config set --path 'swipesavvy:cost.cdnRequestsPerMonth' 2000000)",
        ),
        (
            {"lambdaAverageSeconds": "fast"},
            "swipesavvy:cost.lambdaAverageSeconds = 'fast' is invalid: must be a number from 0 to 900"
            " (fix: pulumi config set --path 'swipesavvy:cost.lambdaAverageSeconds' 5)",
        ),
        (
            {"natGB": 5},
            "swipesavvy:cost.natGB is not a setting; cost takes accessLogGbPerMonth, cdnGbPerMonth,"
            " cdnRequestsPerMonth, customMetrics, endpointGbPerMonth, enhancedMonitoringKbPerSample,"
            " lambdaAverageSeconds, lambdaInvocationsPerMonth, loadBalancerCapacityUnits, logGbPerMonth,"
            " natGbPerMonth, s3GbPerBucket, s3GetRequestsPerBucket, s3PutRequestsPerBucket, secretApiCallsPerMonth,"
            " upgradeLogGbPerMonth"
            " (fix: pulumi config rm --path 'swipesavvy:cost.natGB')",
        ),
    ],
)
def test_bad_cost_settings_are_refused_at_preview_in_one_line(settings, message):
    values = {
        key.partition(":")[2]: value for key, value in stack_config("staging").items() if key.startswith("swipesavvy:")
    }
    with pytest.raises(ConfigError) as raised:
        parse_stack_config("staging", {**values, "cost": settings}, region="us-east-1")
    assert str(raised.value) == message


def test_a_bad_cost_setting_stops_the_program_at_preview():
    config = {**stack_config("staging"), "swipesavvy:cost": {"natGbPerMonth": "a lot"}}
    mocks = RecordingMocks()
    with pytest.raises(
        pulumi.RunError, match=r"^swipesavvy:cost\.natGbPerMonth = 'a lot' is invalid: must be a number"
    ):
        run_program(config, preview=True, mocks=mocks)
    assert mocks.resources == []  # nothing is created


def test_cost_settings_change_the_estimate_and_are_listed_as_assumptions():
    values = {
        key.partition(":")[2]: value for key, value in stack_config("staging").items() if key.startswith("swipesavvy:")
    }
    config = parse_stack_config("staging", {**values, "cost": {"natGbPerMonth": 500}}, region="us-east-1")
    assert config.cost.nat_gb_per_month == 500
    result = estimate("s", [resource("aws:ec2/natGateway:NatGateway", "nat")], table(), config.cost)
    assert result.assumptions["natGbPerMonth"] == 500 and result.lines[1].monthly == pytest.approx(22.5)


def test_ops_cost_refuses_a_bad_cost_setting_in_one_line(tmp_path, monkeypatch, capsys):
    config = stack_config("staging")
    config["swipesavvy:cost"] = {"cdnGbPerMonth": "lots"}
    (tmp_path / "Pulumi.bad.yaml").write_text("config: {}\n")
    monkeypatch.setattr(cost_cli, "PROJECT_ROOT", tmp_path)
    monkeypatch.setattr("ops.rehearsal.mock_program.stack_config", lambda stack: config)
    code, out, err = run(capsys, "cost", "--stack", "bad")
    assert (code, out) == (2, "")
    assert one_line_error(err) == (
        "error: swipesavvy:cost.cdnGbPerMonth = 'lots' is invalid: must be a number from 0 to 1e+07"
        " (fix: pulumi config set --path 'swipesavvy:cost.cdnGbPerMonth' 20)"
    )


# --- the price table and --refresh-prices ----------------------------------------------------------


def test_every_committed_price_has_a_source_and_the_date_it_was_read():
    document = json.loads((PROJECT_ROOT / "ops/cost/prices/us-east-1.json").read_text())
    for key, entry in document["prices"].items():
        assert entry["source"] and entry["per"], key
        datetime.date.fromisoformat(entry["read"])
        assert entry["usd"] > 0, key
    assert set(load_price_table("us-east-1").prices) == set(document["prices"])


def product(sku: str, tiers: list[tuple[str, str]], description: str = "") -> str:
    """One ``PriceList`` item as GetProducts returns it: a JSON document in a string
    (https://docs.aws.amazon.com/aws-cost-management/latest/APIReference/API_pricing_GetProducts.html)."""
    dimensions = {
        f"{sku}.JRTCKXETXF.{index}": {
            "unit": "Hrs", "endRange": "Inf", "description": description, "appliesTo": [],
            "rateCode": f"{sku}.JRTCKXETXF.{index}", "beginRange": begin, "pricePerUnit": {"USD": usd},
        }
        for index, (begin, usd) in enumerate(tiers)
    }  # fmt: skip
    return json.dumps(
        {
            "product": {"productFamily": "Database Instance", "attributes": {"regionCode": "us-east-1"}, "sku": sku},
            "serviceCode": "AmazonRDS",
            "terms": {
                "OnDemand": {
                    f"{sku}.JRTCKXETXF": {
                        "priceDimensions": dimensions,
                        "sku": sku,
                        "effectiveDate": "2026-11-01T00:00:00Z",
                        "offerTermCode": "JRTCKXETXF",
                        "termAttributes": {},
                    }
                },
                "Reserved": {
                    f"{sku}.HU7G6KETJZ": {
                        "priceDimensions": {"x": {"beginRange": "0", "pricePerUnit": {"USD": "0.04"}}}
                    }
                },
            },
            "version": "20261101000000",
            "publicationDate": "2026-11-01T00:00:00Z",
        }
    )


def test_on_demand_prices_take_the_first_tier_of_each_on_demand_term():
    tiered = product("S3SKU", [("0", "0.0000050000"), ("1000000000", "0.0000040000")])
    assert on_demand_prices([tiered]) == {0.000005}  # reserved terms and later tiers ignored


def pricing_client():
    return boto3.client("pricing", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")


def test_refresh_prices_reads_get_products_answers_and_keeps_what_it_cannot_find():
    document = {
        "region": "us-east-1",
        "prices": {
            "rds.instance:postgres:db.t4g.medium": {
                "usd": 0.06,
                "per": "instance-hour",
                "source": "old",
                "read": "2025-01-01",
            },
            "s3.put-requests-1k": {"usd": 0.004, "per": "1,000 requests", "source": "old", "read": "2025-01-01"},
            "waf.web-acl.month": {"usd": 5.0, "per": "web ACL-month", "source": "old", "read": "2025-01-01"},
            "datadog.apm-host.month": {"usd": 31.0, "per": "host-month", "source": "datadog", "read": READ},
        },
    }
    client = pricing_client()
    with Stubber(client) as stub:
        rds = query_for("rds.instance:postgres:db.t4g.medium")
        stub.add_response(  # the first page, then a NextToken for the second
            "get_products",
            {"FormatVersion": "aws_v1", "PriceList": [], "NextToken": "page-2"},
            {
                "ServiceCode": "AmazonRDS",
                "Filters": api_filters(rds, "us-east-1"),
                "FormatVersion": "aws_v1",
                "MaxResults": 100,
            },
        )
        stub.add_response(
            "get_products",
            {"FormatVersion": "aws_v1", "PriceList": [product("RDSSKU", [("0", "0.0650000000")])]},
            {
                "ServiceCode": "AmazonRDS",
                "Filters": api_filters(rds, "us-east-1"),
                "FormatVersion": "aws_v1",
                "MaxResults": 100,
                "NextToken": "page-2",
            },
        )
        stub.add_response(
            "get_products", {"FormatVersion": "aws_v1", "PriceList": [product("S3SKU", [("0", "0.0000050000")])]}
        )
        stub.add_response("get_products", {"FormatVersion": "aws_v1", "PriceList": []})  # WAF: nothing matched
        refreshed, report = refresh_table(document, client, datetime.date(2026, 12, 1))
        stub.assert_no_pending_responses()
    prices = refreshed["prices"]
    assert prices["rds.instance:postgres:db.t4g.medium"] == {
        "usd": 0.065,
        "per": "instance-hour",
        "source": "AWS Price List Query API (pricing GetProducts AmazonRDS: instanceType=db.t4g.medium,"
        " databaseEngine=PostgreSQL, deploymentOption=Single-AZ)",
        "read": "2026-12-01",
        "kind": "price-list-api",
    }
    assert prices["s3.put-requests-1k"]["usd"] == 0.005  # $0.000005 per request: per 1,000
    assert prices["waf.web-acl.month"] == document["prices"]["waf.web-acl.month"]
    assert prices["datadog.apm-host.month"] == document["prices"]["datadog.apm-host.month"]
    assert report == [
        "datadog.apm-host.month: kept 31.0 (not in AWS's price list)",
        "rds.instance:postgres:db.t4g.medium: 0.065",
        "s3.put-requests-1k: 0.005",
        "waf.web-acl.month: kept 5.0 (no product matched)",
    ]


def test_refresh_prices_refuses_to_choose_between_different_prices():
    document = {
        "region": "us-east-1",
        "prices": {"ebs.volume:gp3": {"usd": 0.08, "per": "GB-month", "source": "x", "read": READ}},
    }
    client = pricing_client()
    with Stubber(client) as stub:
        answer = [product("A", [("0", "0.08")]), product("B", [("0", "0.1")])]
        stub.add_response("get_products", {"FormatVersion": "aws_v1", "PriceList": answer})
        refreshed, report = refresh_table(document, client, datetime.date(2026, 12, 1))
    assert refreshed == document
    assert report == ["ebs.volume:gp3: kept 0.08 (2 different prices [0.08, 0.1])"]


def test_ops_cost_refresh_prices_rewrites_the_table_and_fails_in_one_line_without_access(tmp_path, monkeypatch, capsys):
    path = tmp_path / "us-east-1.json"
    path.write_text(
        json.dumps(
            {
                "region": "us-east-1",
                "prices": {"kms.key.month": {"usd": 2, "per": "key-month", "source": "x", "read": READ}},
            }
        )
    )
    monkeypatch.setattr(cost_cli, "price_table_path", lambda region: path)
    monkeypatch.setattr(cost_cli, "PROJECT_ROOT", tmp_path)
    client = pricing_client()
    monkeypatch.setattr(boto3, "client", lambda *args, **kwargs: client)
    with Stubber(client) as stub:
        stub.add_response(
            "get_products", {"FormatVersion": "aws_v1", "PriceList": [product("K", [("0", "1.0000000000")])]}
        )
        code, out, _ = run(capsys, "cost", "--refresh-prices", "--region", "us-east-1")
    assert (code, out) == (0, f"kms.key.month: 1.0\nwrote {path}\n")
    assert json.loads(path.read_text())["prices"]["kms.key.month"]["usd"] == 1.0
    with Stubber(client) as stub:
        stub.add_client_error(
            "get_products", "AccessDeniedException", "User is not authorized to perform: pricing:GetProducts"
        )
        code, _, err = run(capsys, "cost", "--refresh-prices", "--region", "us-east-1")
    assert code == 1
    assert one_line_error(err) == (
        "error: cannot read the AWS Price List API: An error occurred (AccessDeniedException) when calling the"
        " GetProducts operation: User is not authorized to perform: pricing:GetProducts"
        " (fix: AWS credentials allowed pricing:GetProducts)"
    )


# --- the pull-request workflow and rehearse ---------------------------------------------------------


def test_the_cost_section_is_appended_to_the_preview_comment_and_replaced_on_a_rerun():
    preview = "#### :tropical_drink: `preview` on swipesavvy/acme/staging\n\n<details>plan</details>"
    once = comment_with_cost(preview, "staging: $254.71/month (+$16.20)")
    assert once == (
        f"{preview}\n\n<!-- swipesavvy-cost -->\n"
        "**Monthly cost** (`python -m ops cost`, difference from main): staging: $254.71/month (+$16.20)\n"
    )
    assert comment_with_cost(once, "staging: $238.51/month (no change)") == comment_with_cost(
        preview, "staging: $238.51/month (no change)"
    )
    assert comment_with_cost("", "staging: $1.00/month (no estimate for main)").startswith("<!-- swipesavvy-cost -->\n")


def test_the_pull_request_workflow_estimates_both_stacks_here_and_on_main():
    workflow = yaml.safe_load((PROJECT_ROOT / ".github/workflows/pull-request.yml").read_text())
    job = workflow["jobs"]["cost"]
    assert job["needs"] == ["test", "preview"] and job["permissions"] == {"contents": "read", "pull-requests": "write"}
    base = [s for s in job["steps"] if s.get("with", {}).get("path") == "base"]
    assert [s["with"]["ref"] for s in base] == ["${{ github.event.pull_request.base.sha }}"]
    script = "\n".join(s.get("run", "") for s in job["steps"])
    assert "for stack in staging production; do" in script
    assert '.venv/bin/python -m ops cost --stack "$stack" --json >"cost-$stack.json"' in script
    assert '(cd base && ../.venv/bin/python -m ops cost --stack "$stack" --json >"../base-$stack.json")' in script
    assert '--compare "cost-$stack.json" "base-$stack.json" --comment-body "comment-$stack.md"' in script


def test_rehearse_prints_the_estimate_under_the_plan(staging):
    assert cost_cli.cost_summary("staging", staging) == (
        "estimated cost: $233.08/month (python -m ops cost --stack staging lists it)"
    )


def test_log_groups_the_stack_declares_for_rds_are_priced_there_at_their_steady_state():
    """A disposable stack creates RDS's export log groups itself, with a retention: the instance
    no longer prices them (never twice), and the upgrade log's group takes in what an upgrade
    writes, nothing by default; Enhanced Monitoring's documents go to RDSOSMetrics (30 days)."""
    database = {
        **DATABASE,
        "identifier": "swipesavvy-pr-7-postgres",
        "enabledCloudwatchLogsExports": ["postgresql", "upgrade"],
    }
    groups = [
        PlannedResource(
            "aws:cloudwatch/logGroup:LogGroup",
            f"{log}-log",
            {"name": f"/aws/rds/instance/swipesavvy-pr-7-postgres/{log}", "retentionInDays": 7.0},
            "c",
        )
        for log in ("postgresql", "upgrade")
    ]
    plan = [resource("aws:rds/instance:Instance", "db", **{**database, "monitoringInterval": 60.0}), *groups]
    assert [what for what, _, _ in lines_of(plan, "db") if "logs" in what] == [
        "logs ingestion (Enhanced Monitoring, 60 s)",
        "logs storage (Enhanced Monitoring, 60 s, 30 days kept)",
    ]
    gb = 730 * 3600 / 60 * 10 / 1024**2  # a 10 KB document a minute
    assert [q for what, q, _ in lines_of(plan, "db") if "logs" in what] == [round(gb, 6), round(gb, 6)]
    assert lines_of(plan, "postgresql-log") == [
        ("ingestion", 2, 1.0),
        ("storage, 7 days kept", round(2 * 7 / 30, 6), 0.014),
    ]
    assert lines_of(plan, "upgrade-log") == [("ingestion", 0, 0.0), ("storage, 7 days kept", 0, 0.0)]
