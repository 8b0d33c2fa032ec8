"""Monitoring (runbook phase 6) under mocks, with no Datadog keys configured: the monitors,
synthetic tests, dashboard, SLO and AWS integration the staging stack declares; every query
parsed against the forms the project relies on; the config's one-line refusals."""

from __future__ import annotations

import json
import re

import pulumi
import pytest
from pulumi_program import (
    DATADOG_AGENT_KEY,
    DATADOG_IAM_PERMISSIONS,
    DATADOG_TOKEN_VARIABLE_ID,
    RecordingMocks,
    is_secret,
    plain_values,
    run_program,
    stack_config,
    unwrap_all,
)

from components import backend_boot, datadog_queries
from components.config import ConfigError, parse_monitoring
from components.observability.agent_config import app_url, datadog_site

MONITOR = "datadog:index/monitor:Monitor"
SYNTHETIC = "datadog:index/syntheticsTest:SyntheticsTest"
DASHBOARD_URL = "https://app.datadoghq.com/dashboard/abc-def-ghi/swipesavvy-monitoring-dashboard"
TAGS = ["env:staging", "service:swipesavvy-backend", "managed-by:pulumi"]

# The query forms the project relies on, written independently of the builders: a typo in a
# metric, scope, aggregation, window, comparator or threshold fails to match.
METRICS = {
    "aws.rds.cpuutilization",
    "aws.rds.free_storage_space",
    "aws.rds.total_storage_space",
    "aws.rds.database_connections",
    "postgresql.percent_usage_connections",
    "trace.express.request",
    "trace.express.request.hits",
    "trace.express.request.errors",
    "system.mem.pct_usable",
    "system.cpu.user",
    "swipesavvy.feature_flags.check_latency",
    "swipesavvy.ingestion.records",
}
TAG = r"(?:\$env|[a-z_]+:[A-Za-z0-9_.\-]+)"


def series(n: int) -> str:
    """One series, its groups numbered ``n``: aggregation:metric{scope}[ by {tags}][.as_count()]."""
    return (
        rf"(?P<agg{n}>avg|min|max|sum|p50|p95|p99):(?P<metric{n}>[a-z_.]+)"
        rf"\{{(?P<scope{n}>{TAG}(?:,{TAG})*)\}}(?: by \{{(?P<by{n}>[a-z]+(?:,[a-z]+)*)\}})?(?:\.as_count\(\))?"
    )


NUMBER = r"(?P<threshold>\d+(?:\.\d+)?)"
WINDOW = r"(?P<time>avg|min|max|sum|percentile)\(last_(?P<window>\d+[mh])\):"
FORMS = {
    "threshold": re.compile(rf"^{WINDOW}{series(1)} (?P<cmp>[<>]) {NUMBER}$"),
    "ratio": re.compile(rf"^{WINDOW}{series(1)} / {series(2)} (?P<cmp>[<>]) {NUMBER}$"),
    "service check": re.compile(
        r'^"(?P<check>[a-z_.]+)"\.over\((?P<over>"[a-z_]+:[A-Za-z0-9_.\-]+"(?:,"[a-z_]+:[A-Za-z0-9_.\-]+")*)\)'
        r'\.by\("[a-z]+"\)\.last\((?P<last>\d)\)\.count_by_status\(\)$'
    ),
    "burn rate": re.compile(
        r'^burn_rate\("(?P<slo>[^"]+)"\)\.over\("30d"\)\.long_window\("1h"\)\.short_window\("5m"\) > ' + NUMBER + "$"
    ),
}
SERIES_ONLY = re.compile(rf"^{series(1)}$")


def parse(query: str) -> tuple[str, re.Match]:
    for kind, form in FORMS.items():
        match = form.match(query)
        if match:
            for n in (1, 2):
                if match.groupdict().get(f"metric{n}") is not None:
                    assert match[f"metric{n}"] in METRICS, query
            return kind, match
    raise AssertionError(f"not a query form the project relies on: {query}")


def monitors(run) -> dict[str, dict]:
    return {r.name.removeprefix("swipesavvy-monitoring-"): unwrap_all(r.inputs) for r in run.of_type(MONITOR)}


def widget_queries(run) -> list[str]:
    dashboard = unwrap_all(run.one("datadog:index/dashboard:Dashboard").inputs)
    return [
        query["metricQuery"]["query"]
        for group in dashboard["widgets"]
        for widget in group["groupDefinition"]["widgets"]
        if "timeseriesDefinition" in widget
        for request in widget["timeseriesDefinition"]["requests"]
        for query in request["queries"]
    ]


# --- queries -----------------------------------------------------------------------------------


def test_every_monitor_query_parses_and_its_threshold_is_the_critical_level(staging):
    kinds = {}
    for key, monitor in monitors(staging).items():
        kind, match = parse(monitor["query"])
        kinds[key] = kind
        if kind != "service check":
            assert match["threshold"] == monitor["monitorThresholds"]["critical"], key
    assert kinds == {
        "db-cpu": "threshold",
        "db-free-storage": "ratio",
        "db-connections": "threshold",
        "api-error-rate": "ratio",
        "api-latency-p95": "threshold",
        "host-memory": "threshold",
        "backend-down": "service check",
        "flag-check-latency": "threshold",
        "ingestion-throughput": "threshold",
        "api-availability-burn-rate": "burn rate",
    }


def test_a_typo_in_a_query_does_not_parse():
    good = "avg(last_15m):avg:aws.rds.cpuutilization{dbinstanceidentifier:db-1} > 85"
    parse(good)
    for typo in (
        good.replace("cpuutilization", "cpu_utilization"),  # unknown metric
        good.replace("last_15m", "last15m"),
        good.replace("avg:aws", "average:aws"),
        good.replace("{db", "{ db"),
        good.replace(" > ", " >> "),
        good.replace("85", "1e+10"),
    ):
        with pytest.raises(AssertionError):
            parse(typo)


def test_widgets_draw_the_monitors_series(staging):
    """One definition per query: each monitor's series (scope aside) is on the dashboard."""

    def unscoped(series: str) -> str:
        return re.sub(r"\{[^}]*\}", "{}", series)

    widgets = set()
    for query in widget_queries(staging):
        match = SERIES_ONLY.match(query)
        assert match and match["metric1"] in METRICS, query
        assert match["scope1"].startswith(("$env,service:swipesavvy-backend", "dbinstanceidentifier:")), query
        widgets.add(unscoped(query))
    for key, monitor in monitors(staging).items():
        kind, match = parse(monitor["query"])
        if kind in ("threshold", "ratio"):
            series = re.findall(r"[a-z0-9]+:[a-z_.]+\{[^}]*\}(?: by \{[a-z,]+\})?(?:\.as_count\(\))?", monitor["query"])
            assert {unscoped(s) for s in series} <= widgets, key


def test_thresholds_are_in_the_metrics_units():
    assert datadog_queries.threshold_text(0.05) == "0.05"
    assert datadog_queries.threshold_text(100 * 2**30 * 0.1) == "10737418240"  # bytes, never 1e+10
    assert datadog_queries.threshold_text(14.4) == "14.4"


# --- monitors ----------------------------------------------------------------------------------


def test_each_monitor_has_levels_tags_a_useful_message_and_renotifies(staging):
    for key, monitor in monitors(staging).items():
        levels = monitor["monitorThresholds"]
        assert isinstance(levels["warning"], str) and isinstance(levels["critical"], str), key
        assert monitor["tags"] == TAGS, key
        assert isinstance(monitor["priority"], str), key
        assert monitor["renotifyInterval"] == 60 and monitor["renotifyStatuses"] == ["alert", "no data"], key
        message = monitor["message"]
        assert message.startswith(f"{monitor['name'].removeprefix('[swipesavvy staging] ')} on staging:"), key
        assert "{{value}}" in message and "warning " in message and "critical " in message, key
        assert "\nFirst check: " in message and f"\nDashboard: {DASHBOARD_URL}\n" in message, key
        assert message.endswith("\n@slack-swipesavvy-staging"), key


def test_monitor_levels_types_and_missing_data(staging):
    m = monitors(staging)
    expected = {  # key: (type, warning, critical, notify when silent)
        "db-cpu": ("query alert", "70", "85", True),  # no data: the AWS integration is gone
        "db-free-storage": ("query alert", "0.2", "0.1", True),  # free over the volume's size, a fraction
        "db-connections": ("query alert", "0.7", "0.85", True),
        "api-error-rate": ("query alert", "0.02", "0.05", False),  # 5xx over all requests, a fraction
        "api-latency-p95": ("query alert", "0.3", "0.5", False),  # seconds
        "host-memory": ("query alert", "0.3", "0.2", True),  # usable fraction: used above 70% / 80%
        "backend-down": ("service check", "1", "2", True),
        "flag-check-latency": ("query alert", "50", "100", False),
        "ingestion-throughput": ("query alert", "30000", "15000", False),  # per 15 minutes
        "api-availability-burn-rate": ("slo alert", "6", "14.4", False),
    }
    for key, (kind, warning, critical, silent) in expected.items():
        monitor = m[key]
        assert (monitor["type"], monitor["monitorThresholds"]["warning"], monitor["monitorThresholds"]["critical"]) == (
            kind,
            warning,
            critical,
        ), key
        assert monitor["notifyNoData"] is silent, key
        late = "aws.rds." in monitor["query"]  # CloudWatch's, through the integration: an hour
        assert monitor.get("noDataTimeframe") == ((60 if late else 20) if silent else None), key
    assert m["backend-down"]["monitorThresholds"]["ok"] == "1"
    assert '"instance:swipesavvy-backend-health"' in m["backend-down"]["query"]
    assert m["api-latency-p95"]["query"].startswith("percentile(last_10m):p95:trace.express.request{env:staging,")


def test_cloudwatch_fed_monitors_wait_for_late_data(staging):
    for key, monitor in monitors(staging).items():
        late = "aws.rds." in monitor["query"]
        assert monitor.get("evaluationDelay") == (900 if late else None), key
        if monitor["type"] == "query alert":
            assert monitor["requireFullWindow"] is False, key
    assert "dbinstanceidentifier:swipesavvy-db-postgres-1a2b3c4" in monitors(staging)["db-cpu"]["query"]


def test_free_storage_alerts_on_the_fraction_of_the_volume_as_it_is_now(staging):
    """Storage autoscaling grows the volume past allocatedStorage: the level is a fraction of
    the size CloudWatch reports now (Datadog's aws.rds.total_storage_space), not of the config."""
    db = "dbinstanceidentifier:swipesavvy-db-postgres-1a2b3c4"
    assert monitors(staging)["db-free-storage"]["query"] == (
        f"min(last_15m):min:aws.rds.free_storage_space{{{db}}} / min:aws.rds.total_storage_space{{{db}}} < 0.1"
    )
    message = monitors(staging)["db-free-storage"]["message"]
    assert "(value {{value}}; warning 20% free (= 0.2), critical 10% free (= 0.1))." in message


def test_the_slo_and_its_burn_rate_alert(staging):
    slo = unwrap_all(staging.one("datadog:index/serviceLevelObjective:ServiceLevelObjective").inputs)
    assert slo["type"] == "metric"
    assert slo["thresholds"] == [{"timeframe": "30d", "target": 99.9, "warning": 99.95}]
    scope = "{env:staging,service:swipesavvy-backend}"
    hits, errors = (
        f"sum:trace.express.request.hits{scope}.as_count()",
        f"sum:trace.express.request.errors{scope}.as_count()",
    )
    assert slo["query"] == {"numerator": f"{hits} - {errors}", "denominator": hits}
    _, match = parse(monitors(staging)["api-availability-burn-rate"]["query"])
    assert match["slo"] == "swipesavvy-monitoring-api-availability-id"  # the SLO's id, over its own 30d


# --- synthetic tests ---------------------------------------------------------------------------


def synthetics(run) -> dict[str, dict]:
    return {r.name.removeprefix("swipesavvy-monitoring-"): unwrap_all(r.inputs) for r in run.of_type(SYNTHETIC)}


def test_synthetic_tests_call_the_public_urls_with_the_smoke_checks_assertions(staging):
    site = dict(staging.outputs)["site_url"][0]
    tests = synthetics(staging)
    assert set(tests) == {"health", "features", "site"}
    for key, path in {"health": "/api/health", "features": "/api/features/all", "site": "/"}.items():
        test = tests[key]
        assert (test["type"], test["subtype"], test["status"]) == ("api", "http", "live")
        assert test["requestDefinition"]["method"] == "GET" and test["requestDefinition"]["url"] == site + path
        assert test["locations"] == ["aws:us-east-1", "aws:eu-central-1"]
        assert test["tags"] == TAGS
        assert test["message"].endswith(f"Dashboard: {DASHBOARD_URL}\n@slack-swipesavvy-staging")
        options = test["optionsList"]
        assert options["tickEvery"] == 300 and options["monitorOptions"]["renotifyInterval"] == 60
        assert test["assertions"][0] == {"type": "statusCode", "operator": "is", "target": "200"}
    health = tests["health"]["assertions"]
    assert health[1]["targetjsonpath"] == {"jsonpath": "$.status", "operator": "is", "targetvalue": "healthy"}
    assert health[2] == {"type": "responseTime", "operator": "lessThan", "target": "300"}
    schema = json.loads(tests["features"]["assertions"][1]["targetjsonschema"]["jsonschema"])
    assert {"type": "array", "minItems": 10, "maxItems": 10} in schema["anyOf"]
    assert tests["site"]["assertions"][1:] == [
        {"type": "body", "operator": "contains", "target": "Reporting Dashboard"},
        {"type": "responseTime", "operator": "lessThan", "target": "500"},
    ]
    assert "requestHeaders" not in tests["features"]  # no token variable configured


def test_the_api_token_comes_from_a_secure_global_variable():
    config = stack_config("staging")
    config["swipesavvy:monitoring"] = {**config["swipesavvy:monitoring"], "apiTokenVariable": "SWIPESAVVY_API_TOKEN"}
    features = synthetics(run_program(config))["features"]
    assert features["requestHeaders"] == {"Authorization": "Bearer {{ SWIPESAVVY_API_TOKEN }}"}
    assert features["configVariables"] == [
        {"type": "global", "name": "SWIPESAVVY_API_TOKEN", "id": DATADOG_TOKEN_VARIABLE_ID}
    ]


# --- dashboard, integration, keys --------------------------------------------------------------


def test_dashboard_has_the_runbooks_five_groups_templated_by_env(staging):
    dashboard = unwrap_all(staging.one("datadog:index/dashboard:Dashboard").inputs)
    assert [g["groupDefinition"]["title"] for g in dashboard["widgets"]] == [
        "Database health",
        "API performance",
        "Error tracking",
        "Feature-flag metrics",
        "Data pipeline status",
    ]
    assert dashboard["templateVariables"] == [{"name": "env", "prefix": "env", "defaults": ["staging"]}]
    assert all(g["groupDefinition"]["widgets"] for g in dashboard["widgets"])
    assert dict(staging.outputs)["dashboard_url"][0] == DASHBOARD_URL


def test_aws_integration_role_trusts_datadog_with_the_external_id_and_reads_only(production):
    role = production.of_name("aws:iam/role:Role", "swipesavvy-monitoring-datadog-integration").inputs
    (statement,) = json.loads(role["assumeRolePolicy"])["Statement"]
    assert statement["Principal"] == {"AWS": "arn:aws:iam::464622532012:root"}
    assert statement["Condition"] == {"StringEquals": {"sts:ExternalId": "swipesavvy-monitoring-aws-id"}}
    # Datadog's list fits one managed policy here (tests/test_aws_constraints.py splits a long one).
    policy = json.loads(
        production.of_name("aws:iam/policy:Policy", "swipesavvy-monitoring-datadog-integration-0").inputs["policy"]
    )
    assert policy["Statement"] == [{"Effect": "Allow", "Action": sorted(DATADOG_IAM_PERMISSIONS), "Resource": "*"}]
    attachment = production.of_name(
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment", "swipesavvy-monitoring-datadog-integration-0"
    ).inputs
    assert attachment == {
        "role": "swipesavvy-monitoring-datadog-integration",
        "policyArn": "arn:aws:iam::123456789012:policy/swipesavvy-monitoring-datadog-integration-0",
    }
    account = unwrap_all(production.one("datadog:aws/integrationAccount:IntegrationAccount").inputs)
    assert account["authConfig"] == {
        "awsAuthConfigRole": {"roleName": role["name"], "externalId": "swipesavvy-monitoring-aws-id"}
    }
    assert account["awsAccountId"] == "123456789012" and account["awsPartition"] == "aws"
    # It reads every stack's metrics in the account: no env tag of its own on them.
    assert account["accountTags"] == ["integration-owner:production", "managed-by:pulumi"]
    # Extended resource collection (on by default) needs permissions the role does not have
    # (Datadog API reference, "Get resource collection IAM permissions"): off, and so is CSPM.
    assert account["resourcesConfig"] == {
        "extendedCollection": False,
        "cloudSecurityPostureManagementCollection": False,
    }
    attached = [a.inputs["policyArn"] for a in production.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")]
    assert not any(arn.endswith("/SecurityAudit") for arn in attached)


INTEGRATION = "datadog:aws/integrationAccount:IntegrationAccount"


def test_exactly_one_committed_stack_owns_the_accounts_integration(staging, production):
    """Datadog keeps one AWS integration per account: production owns it, staging only uses it."""
    assert len(production.of_type(INTEGRATION)) == 1
    assert staging.of_type(INTEGRATION) == []
    assert staging.of_type("datadog:aws/integrationExternalId:IntegrationExternalId") == []
    assert [r.name for r in staging.of_type("aws:iam/role:Role") if "datadog" in r.name] == []
    assert len(staging.of_type(MONITOR)) == 10  # the aws.rds.* monitors read production's integration


def _staging_owning_the_integration() -> dict:
    config = stack_config("staging")
    config["swipesavvy:monitoring"] = {**config["swipesavvy:monitoring"], "awsIntegration": True}
    return config


PRODUCTION_ROLE_TAGS = {"project": "swipesavvy", "environment": "production", "stack": "production"}


def test_a_second_owner_of_the_integration_is_refused_at_preview_before_any_resource():
    """Production's role exists in the account: staging setting awsIntegration too is refused
    while the program is read, in the preview, so Datadog is never asked for an external ID
    and no policy is created (the role's EntityAlreadyExists at apply came too late)."""
    mocks = RecordingMocks(iam_roles={"swipesavvy-datadog-integration": PRODUCTION_ROLE_TAGS})
    with pytest.raises(Exception) as raised:
        run_program(_staging_owning_the_integration(), preview=True, mocks=mocks)
    assert str(raised.value) == (
        "swipesavvy:monitoring.awsIntegration: IAM role swipesavvy-datadog-integration already exists in this AWS"
        " account, created by stack 'production' (its stack tag), and Datadog keeps one AWS integration per account;"
        " nothing was created (fix: pulumi config set --path 'swipesavvy:monitoring.awsIntegration' false on stack"
        " staging)"
    )
    assert mocks.resources == []


def test_a_role_made_outside_the_project_is_refused_too():
    mocks = RecordingMocks(iam_roles={"swipesavvy-datadog-integration": {}})
    with pytest.raises(Exception) as raised:
        run_program(stack_config("production"), stack="production", preview=True, mocks=mocks)
    assert "created outside this project (no stack tag), and Datadog keeps one AWS integration" in str(raised.value)
    assert mocks.resources == []


def test_the_owner_itself_passes_its_own_role():
    """The owner's next `pulumi up` finds its own role (tagged with its stack) and goes on."""
    mocks = RecordingMocks(iam_roles={"swipesavvy-datadog-integration": PRODUCTION_ROLE_TAGS})
    run = run_program(stack_config("production"), stack="production", preview=True, mocks=mocks)
    assert len(run.of_type(INTEGRATION)) == 1


def test_the_integration_pieces_wait_for_each_other(production):
    """Nothing of the integration is created beside a role that could still fail: the policies
    wait for the role, the attachments for both, the integration for all of them."""
    role = "swipesavvy-monitoring-datadog-integration"
    deps = production.dependencies
    assert "swipesavvy-monitoring-aws" in deps[("aws:iam/role:Role", role)]  # the external ID, in its trust
    assert role in deps[("aws:iam/policy:Policy", f"{role}-0")]
    assert {role, f"{role}-0"} <= set(deps[("aws:iam/rolePolicyAttachment:RolePolicyAttachment", f"{role}-0")])
    assert {role, f"{role}-0"} <= set(deps[(INTEGRATION, "swipesavvy-monitoring-aws")])


@pytest.mark.parametrize("key", ["db-cpu", "db-free-storage"])
def test_rds_monitors_of_a_stack_without_the_integration_alert_on_no_data_naming_it(staging, key):
    """Staging's aws.rds.* arrive only through production's integration: if it goes, the monitors
    say so (no data after an hour) instead of staying silently green."""
    monitor = unwrap_all(staging.of_name(MONITOR, f"swipesavvy-monitoring-{key}").inputs)
    assert (monitor["notifyNoData"], monitor["noDataTimeframe"]) == (True, 60)
    assert (
        "{{#is_no_data}}No data: aws.rds.* come from the account's Datadog AWS integration, declared by the one"
        " stack with swipesavvy:monitoring.awsIntegration true (not this one; production in the committed files):"
        " is it still installed in Datadog (Integrations, Amazon Web Services) and does its role"
        " swipesavvy-datadog-integration still exist?{{/is_no_data}}"
    ) in monitor["message"].splitlines()


def test_a_review_stack_may_not_own_the_integration():
    config = stack_config("staging")
    config["swipesavvy:monitoring"] = {**config["swipesavvy:monitoring"], "awsIntegration": True}
    config["swipesavvy:database"] = {**config["swipesavvy:database"], "deletionProtection": False}
    with pytest.raises(Exception) as raised:
        run_program(config, stack="pr-7")
    assert (
        "swipesavvy:monitoring.awsIntegration is not allowed in review stack pr-7: Datadog's AWS integration is one"
        " per account, owned by one long-lived stack (fix: pulumi config set --path"
        " 'swipesavvy:monitoring.awsIntegration' false, or generate the file with python -m ops review-config)"
    ) in str(raised.value)


def test_the_agents_api_key_is_only_in_a_secret(staging):
    version = staging.of_name("aws:secretsmanager/secretVersion:SecretVersion", "swipesavvy-datadog-agent")
    assert is_secret(version.inputs["secretString"])
    for resource in staging.resources:
        assert all(DATADOG_AGENT_KEY not in value for value in plain_values(resource.inputs)), resource.name


def test_monitoring_off_declares_no_datadog_resource():
    config = stack_config("staging")
    del config["swipesavvy:monitoring"]
    run = run_program(config)
    assert [r.name for r in run.resources if r.typ.startswith("datadog:")] == []
    assert "dashboard_url" not in run.outputs


def test_site_and_app_url_from_the_providers_api_url():
    assert datadog_site(None) == "datadoghq.com" and app_url("datadoghq.com") == "https://app.datadoghq.com"
    assert datadog_site("https://api.datadoghq.eu/") == "datadoghq.eu"
    assert app_url("us5.datadoghq.com") == "https://us5.datadoghq.com"
    with pytest.raises(ConfigError, match=r"^datadog:apiUrl = 'https://example.com/' is invalid: [^\n]*$"):
        datadog_site("https://example.com/")


def test_service_tag_is_the_systemd_units_name():
    assert datadog_queries.SERVICE == backend_boot.SERVICE


# --- config refusals ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "environment", "message"),
    [
        (
            {"apiErrorRatePercent": {"warning": 6}},
            "staging",
            "swipesavvy:monitoring.apiErrorRatePercent.warning = 6.0 is invalid: must be a number from 0 to 100% below"
            " critical (5)",
        ),
        (
            {"dbFreeStoragePercent": {"warning": 5}},
            "staging",
            "swipesavvy:monitoring.dbFreeStoragePercent.warning = 5.0 is invalid: must be a number from 0 to 100%"
            " above critical (10)",
        ),
        ({"hostMemoryPercent": {"critical": 120}}, "staging", "swipesavvy:monitoring.hostMemoryPercent.critical = 120"),
        ({"notify": ""}, "production", "swipesavvy:monitoring.notify = '' is invalid: must name who is paged"),
        ({"notify": "slack-alerts"}, "staging", "swipesavvy:monitoring.notify = 'slack-alerts' is invalid"),
        ({"synthetics": True}, "staging", "swipesavvy:monitoring.synthetics = true is invalid"),
        ({"tresholds": {}}, "staging", "swipesavvy:monitoring.tresholds is not a setting"),
    ],
)
def test_invalid_monitoring_settings_are_one_line(raw, environment, message):
    with pytest.raises(ConfigError) as error:
        parse_monitoring({"enabled": True, **raw}, environment, None, None)
    text = str(error.value)
    assert text.startswith(message) and "\n" not in text and "(fix: pulumi config " in text


def test_a_bad_threshold_stops_the_preview_before_any_resource():
    config = stack_config("staging")
    config["swipesavvy:monitoring"] = {**config["swipesavvy:monitoring"], "apiLatencyP95Ms": {"warning": 900}}
    mocks = RecordingMocks()
    with pytest.raises(pulumi.RunError, match=r"swipesavvy:monitoring\.apiLatencyP95Ms\.warning = 900"):
        run_program(config, mocks=mocks)
    assert mocks.resources == []
