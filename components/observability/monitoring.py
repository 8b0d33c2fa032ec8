"""``Monitoring``: runbook phase 6 as Datadog resources, beside what they watch; and
``AgentApiKey``, the agent's API key in Secrets Manager.

- Monitors for every alert of the runbook (database health, API error rate and p95 latency,
  host memory, the backend down, feature-flag check latency, ingestion throughput), each
  with warning and critical levels, a message saying what is wrong, how bad and what to
  check first (with the dashboard's link), the notification handle and the
  ``env:<stack>``/``service:swipesavvy-backend`` tags.
- Synthetic API tests on the public URLs (the smoke checks of phase 7, kept running).
- One dashboard with the runbook's five groups, on the same queries as the monitors
  (components/observability/datadog_queries.py), templated by ``env``; an availability SLO and its
  burn-rate alert.
- Datadog's AWS integration (the ``aws.rds.*`` metrics of every instance in the account)
  with its read-only IAM role, only with ``monitoring.awsIntegration``: Datadog keeps one per
  AWS account, so exactly one stack per account owns it (production, in the committed
  files; never a review stack, which the config refuses). Its role has one account-wide
  name: ``refuse_second_integration_owner`` looks it up while the program is read, before
  any resource, and refuses a stack that would be its second owner, so the preview fails
  and nothing (no external ID from Datadog, no policy) is created. Inside, each piece waits
  for the one before (external ID, role, policies, attachments, integration), so a role
  that still fails at apply leaves no policy behind. Stacks without it (staging) read the
  owner's ``aws.rds.*`` metrics: their RDS monitors alert on no data, naming it.

The Datadog resources use the default provider: ``datadog:apiKey``, ``datadog:appKey``
(secrets) and ``datadog:apiUrl``. Without keys the provider stops the preview ("api_key and
app_key must be set unless validate = false") before anything is created.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_datadog as datadog

from components import datadog_queries as q
from components.aws_shared import allow_document, secret_recovery_days, split_actions
from components.config import NAMESPACE, ConfigError, MonitoringConfig, Threshold
from components.observability.agent_config import app_url
from components.observability.datadog_queries import SERVICE, Series

DATADOG_AWS_ACCOUNT = "464622532012"  # Datadog's account that assumes the integration role
# One name per AWS account, like the integration itself: a second owner cannot be created.
INTEGRATION_ROLE_NAME = "swipesavvy-datadog-integration"
STACK_TAG = "stack"  # every resource's tag naming the stack that declared it (StackConfig.tags)
# The aws.rds.* monitors of a stack without the integration hear nothing if the owner's is gone.
NO_DATA_MINUTES = 60
# CloudWatch metrics reach Datadog 10-20 minutes late: evaluate them 15 minutes behind.
CLOUDWATCH_DELAY_SECONDS = 900
RENOTIFY_MINUTES = 60
SLO_TIMEFRAME = "30d"
# Google SRE workbook's fast burn: 2% of a 30-day budget in one hour pages; 6 warns.
BURN_RATE = Threshold(warning=6, critical=14.4)


@dataclass(frozen=True)
class Alert:
    """One monitor: its query and levels in the query's units, and what the message says."""

    key: str
    title: str
    query: pulumi.Input[str]
    thresholds: Threshold
    unit: str  # how the levels read in the message, in the setting's unit
    shown: Threshold  # the levels as configured (percent, ms ...), for the message
    first_check: str
    silence_is_outage: bool = False  # notify when the data stops
    no_data_minutes: int = 20
    no_data_check: str = ""  # what to check first when the data stopped, if not first_check
    delay_seconds: int = 0
    priority: str = "3"
    kind: str = "query alert"


def alert_message(alert: Alert, stack: str, dashboard_url: str, notify: str) -> str:
    """What is wrong, how bad (the level crossed and the value), the first thing to check."""

    def level(shown: float, measured: float) -> str:
        # The value Datadog reports is in the query's unit (a fraction, seconds, bytes): say both.
        as_measured = q.threshold_text(measured)
        return f"{shown:g}{alert.unit}" + ("" if as_measured == f"{shown:g}" else f" (= {as_measured})")

    levels = (
        f"warning {level(alert.shown.warning, alert.thresholds.warning)}, "
        f"critical {level(alert.shown.critical, alert.thresholds.critical)}"
    )
    return "\n".join(
        line
        for line in (
            f"{alert.title} on {stack}: {{{{#is_alert}}}}CRITICAL{{{{/is_alert}}}}"
            f"{{{{#is_warning}}}}WARNING{{{{/is_warning}}}}{{{{#is_no_data}}}}NO DATA{{{{/is_no_data}}}}"
            f" (value {{{{value}}}}; {levels}).",
            f"First check: {alert.first_check}",
            f"{{{{#is_no_data}}}}No data: {alert.no_data_check}{{{{/is_no_data}}}}" if alert.no_data_check else "",
            f"Dashboard: {dashboard_url}",
            notify,
        )
        if line
    )


def integration_owner_refusal(stack: str, role_tags: Mapping[str, str] | None) -> str | None:
    """Why ``stack`` may not declare the account's Datadog AWS integration, given the tags of
    the role ``INTEGRATION_ROLE_NAME`` as it exists in the account (None: no such role); None
    when it may (no role yet, or the role is this stack's own)."""
    if role_tags is None:
        return None
    owner = role_tags.get(STACK_TAG)
    if owner == stack:
        return None
    held_by = f"by stack {owner!r} (its {STACK_TAG} tag)" if owner else f"outside this project (no {STACK_TAG} tag)"
    return (
        f"{NAMESPACE}:monitoring.awsIntegration: IAM role {INTEGRATION_ROLE_NAME} already exists in this AWS account,"
        f" created {held_by}, and Datadog keeps one AWS integration per account; nothing was created"
        f" (fix: pulumi config set --path '{NAMESPACE}:monitoring.awsIntegration' false on stack {stack})"
    )


def refuse_second_integration_owner(stack: str) -> None:
    """Looks the integration's role up by name (IAM, while the program is read: at preview,
    before any resource) and raises ConfigError when ``stack`` would be its second owner."""
    found = aws.iam.get_roles(name_regex=f"^{re.escape(INTEGRATION_ROLE_NAME)}$")
    tags = aws.iam.get_role(name=INTEGRATION_ROLE_NAME).tags if INTEGRATION_ROLE_NAME in found.names else None
    refusal = integration_owner_refusal(stack, tags)
    if refusal:
        raise ConfigError(refusal)


@dataclass
class AgentApiKeyArgs:
    stack: str
    tags: Mapping[str, str]
    keep_on_destroy: bool = True
    """The secret stays recoverable for 7 days after a destroy; False (review stacks): deleted at once."""


class AgentApiKey(pulumi.ComponentResource):
    """A Datadog API key for this stack's agents, stored in Secrets Manager for the instances.

    Its own key (revocable alone, rotated by replacing this resource), never the deployer's:
    the value exists only in Datadog, in the secret and, encrypted, in Pulumi state."""

    secret_arn: pulumi.Output[str]
    version: pulumi.Output[str]
    """The secret's version: new whenever the key is (``--replace`` on the key rotates it)."""

    def __init__(self, name: str, args: AgentApiKeyArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("swipesavvy:monitoring:AgentApiKey", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        key = datadog.ApiKey(name, name=f"swipesavvy-{args.stack}-agents", opts=child)
        secret = aws.secretsmanager.Secret(
            name,
            name_prefix=f"swipesavvy/{args.stack}/datadog/agent-api-key-",
            description=f"SwipeSavvy {args.stack}: the Datadog agent's API key",
            recovery_window_in_days=secret_recovery_days(args.keep_on_destroy),
            tags=dict(args.tags),
            opts=child,
        )
        version = aws.secretsmanager.SecretVersion(name, secret_id=secret.id, secret_string=key.key, opts=child)
        self.secret_arn = secret.arn
        self.version = version.version_id
        self.register_outputs({"secret_arn": self.secret_arn, "version": self.version})


@dataclass
class MonitoringArgs:
    config: MonitoringConfig
    stack: str
    site: str
    """The Datadog site (datadoghq.com, datadoghq.eu ...), from ``datadog:apiUrl``."""
    db_instance_identifier: pulumi.Input[str]
    tags: Mapping[str, str]
    """AWS tags, for the integration's IAM role."""
    site_url: pulumi.Input[str] | None = None
    """The public site (https://...), whose /api the synthetic tests call; None: no tests."""


class Monitoring(pulumi.ComponentResource):
    dashboard_url: pulumi.Output[str]

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("swipesavvy:monitoring:Monitoring", name, None, opts)
        self._name, self._args = name, args
        self._child = pulumi.ResourceOptions(parent=self)
        self._tags = [f"env:{args.stack}", f"service:{SERVICE}", "managed-by:pulumi"]
        self._service_scope = q.scope(f"env:{args.stack}", f"service:{SERVICE}")

        if args.config.aws_integration:
            self._aws_integration()
        slo = self._slo()
        dashboard = self._dashboard(slo)
        self.dashboard_url = pulumi.Output.concat(app_url(args.site), dashboard.url)
        db_scope = pulumi.Output.from_input(args.db_instance_identifier).apply(lambda i: f"dbinstanceidentifier:{i}")
        for alert in self._alerts(db_scope):
            self._monitor(alert)
        self._burn_rate_alert(slo)
        if args.config.synthetics and args.site_url is not None:
            self._synthetics(pulumi.Output.from_input(args.site_url))
        self.register_outputs({"dashboard_url": self.dashboard_url})

    # --- monitors -------------------------------------------------------------------------

    def _alerts(self, db_scope: pulumi.Output[str]) -> list[Alert]:
        t, stack, service = self._args.config.thresholds, self._args.stack, self._service_scope

        def converted(name: str, unit: Callable[[float], float]) -> Threshold:
            return Threshold(unit(t[name].warning), unit(t[name].critical))

        def on_db(series: Series, comparator: str, threshold: float) -> pulumi.Output[str]:
            return db_scope.apply(lambda scope: q.threshold_query(series, scope, "15m", comparator, threshold))

        def free_storage_query(threshold: float) -> pulumi.Output[str]:
            return db_scope.apply(
                lambda scope: q.ratio_query(
                    q.RDS_FREE_STORAGE, q.RDS_TOTAL_STORAGE, scope, "15m", "<", threshold, time_aggregation="min"
                )
            )

        free_storage = converted("dbFreeStoragePercent", q.fraction)
        connections = converted("dbConnectionsPercent", q.fraction)
        errors = converted("apiErrorRatePercent", q.fraction)
        latency = converted("apiLatencyP95Ms", q.seconds)
        usable = converted("hostMemoryPercent", lambda p: 1 - q.fraction(p))  # used above x% = usable below
        ingested = converted("ingestionRecordsPerMinute", lambda per_minute: 15 * per_minute)  # per 15m window
        failed_checks = Threshold(1, 2)  # of the last 3 runs
        # aws.rds.* reach Datadog only through the account's one AWS integration, which
        # this stack may not own (staging reads production's): its absence must be heard.
        from_cloudwatch = {
            "delay_seconds": CLOUDWATCH_DELAY_SECONDS,
            "silence_is_outage": True,
            "no_data_minutes": NO_DATA_MINUTES,
            "no_data_check": (
                "aws.rds.* come from the account's Datadog AWS integration, declared by the one stack with"
                f" {NAMESPACE}:monitoring.awsIntegration true"
                + (
                    " (this one)"
                    if self._args.config.aws_integration
                    else " (not this one; production in the committed files)"
                )
                + ": is it still installed in Datadog (Integrations, Amazon Web Services) and does its role"
                f" {INTEGRATION_ROLE_NAME} still exist?"
            ),
        }
        return [
            Alert(
                "db-cpu",
                "Database CPU high",
                on_db(q.RDS_CPU, ">", t["dbCpuPercent"].critical),
                t["dbCpuPercent"],
                "%",
                t["dbCpuPercent"],
                "RDS Performance Insights (top SQL by load) for a runaway query or a missing index",
                **from_cloudwatch,
                priority="2",
            ),
            Alert(
                "db-free-storage",
                "Database storage running out",
                free_storage_query(free_storage.critical),
                free_storage,
                "% free",
                t["dbFreeStoragePercent"],
                "table and index sizes (pg_total_relation_size), and whether storage autoscaling hit its ceiling",
                **from_cloudwatch,
                priority="2",
            ),
            Alert(
                "db-connections",
                "Database connections near the limit",
                q.threshold_query(q.DB_CONNECTIONS_USED, service, "10m", ">", connections.critical),
                connections,
                "% of max_connections",
                t["dbConnectionsPercent"],
                "pg_stat_activity by usename and state: a leaking pool (DB_POOL_SIZE x instances) or idle sessions",
                silence_is_outage=True,  # the agent's check stops reporting when the database is unreachable
                priority="2",
            ),
            Alert(
                "api-error-rate",
                "API error rate high",
                q.ratio_query(q.API_ERRORS, q.API_HITS, service, "10m", ">", errors.critical),
                errors,
                "% 5xx",
                t["apiErrorRatePercent"],
                "the error traces of swipesavvy-backend in APM, then the last release (backend_release_uri)",
                priority="1",
            ),
            Alert(
                "api-latency-p95",
                "API p95 latency high",
                q.threshold_query(q.API_LATENCY_P95, service, "10m", ">", latency.critical),
                latency,
                " ms",
                t["apiLatencyP95Ms"],
                "the slowest endpoints in APM, then database CPU and connections on the dashboard",
                priority="2",
            ),
            Alert(
                "host-memory",
                "Backend host memory high",
                q.threshold_query(q.HOST_MEMORY_USABLE, service, "10m", "<", usable.critical, by=("host",)),
                usable,
                "% used",
                t["hostMemoryPercent"],
                "the node process's memory on that host (Session Manager: systemctl status swipesavvy-backend)",
                silence_is_outage=True,  # a host whose agent went silent is gone or hung
                priority="2",
            ),
            Alert(
                "backend-down",
                "Backend down (/api/health failing)",
                q.service_check_query(
                    "http.can_connect", (f"env:{stack}", f"instance:{q.HEALTH_CHECK_INSTANCE}"), ("host",), 3
                ),
                failed_checks,
                " failed of the last 3 checks",
                failed_checks,
                "journalctl -u swipesavvy-backend on the host, then whether the database is reachable",
                silence_is_outage=True,  # no check result at all: the host or its agent is down
                priority="1",
                kind="service check",
            ),
            Alert(
                "flag-check-latency",
                "Feature-flag check latency high",
                q.threshold_query(q.FLAG_CHECK_LATENCY_P95, service, "10m", ">", t["flagCheckLatencyP95Ms"].critical),
                t["flagCheckLatencyP95Ms"],
                " ms",
                t["flagCheckLatencyP95Ms"],
                "the flag cache (FEATURE_FLAGS_CACHE_TTL) and the feature_flags queries in APM",
                priority="3",
            ),
            Alert(
                "ingestion-throughput",
                "Data ingestion slow",
                q.threshold_query(q.RECORDS_INGESTED, service, "15m", "<", ingested.critical),
                ingested,
                " records/min",
                t["ingestionRecordsPerMinute"],
                "the ingestion job's log and database locks (no data just means no ingestion is running)",
                priority="3",
            ),
        ]

    def _monitor(self, alert: Alert) -> datadog.Monitor:
        thresholds = {
            "warning": q.threshold_text(alert.thresholds.warning),
            "critical": q.threshold_text(alert.thresholds.critical),
        }
        if alert.kind == "service check":
            thresholds["ok"] = "1"  # one passing run recovers
        metric = alert.kind == "query alert"
        return datadog.Monitor(
            f"{self._name}-{alert.key}",
            name=f"[swipesavvy {self._args.stack}] {alert.title}",
            type=alert.kind,
            query=alert.query,
            message=self._message(alert),
            monitor_thresholds=thresholds,
            notify_no_data=alert.silence_is_outage,
            no_data_timeframe=alert.no_data_minutes if alert.silence_is_outage else None,
            evaluation_delay=alert.delay_seconds or None,
            # Late (CloudWatch) or sparse data: judge what arrived rather than wait for a full window.
            require_full_window=False if metric else None,
            new_group_delay=300 if alert.kind != "slo alert" else None,  # a new instance gets five minutes
            renotify_interval=RENOTIFY_MINUTES,
            renotify_statuses=["alert", "no data"],
            priority=alert.priority,
            include_tags=True,
            tags=self._tags,
            opts=self._child,
        )

    def _message(self, alert: Alert) -> pulumi.Output[str]:
        return self.dashboard_url.apply(
            lambda url: alert_message(alert, self._args.stack, url, self._args.config.notify)
        )

    # --- the SLO and its burn rate ----------------------------------------------------------

    def _slo(self) -> datadog.ServiceLevelObjective:
        target = self._args.config.slo_target_percent
        numerator, denominator = q.good_and_total(q.API_ERRORS, q.API_HITS, self._service_scope)
        return datadog.ServiceLevelObjective(
            f"{self._name}-api-availability",
            name=f"[swipesavvy {self._args.stack}] API availability",
            description="Requests to swipesavvy-backend answered without a 5xx (APM).",
            type="metric",
            query={"numerator": numerator, "denominator": denominator},
            # Floats, not strings (unlike monitor thresholds); the warning sits halfway to 100%.
            thresholds=[{"timeframe": SLO_TIMEFRAME, "target": target, "warning": round((target + 100) / 2, 3)}],
            tags=self._tags,
            opts=self._child,
        )

    def _burn_rate_alert(self, slo: datadog.ServiceLevelObjective) -> datadog.Monitor:
        alert = Alert(
            "api-availability-burn-rate",
            "API error budget burning fast",
            slo.id.apply(lambda slo_id: q.burn_rate_query(slo_id, SLO_TIMEFRAME, "1h", "5m", BURN_RATE.critical)),
            BURN_RATE,
            "x the sustainable rate",
            BURN_RATE,
            "the API error rate and the backend-down monitor: at this rate the month's error budget lasts days",
            priority="1",
            kind="slo alert",
        )
        return self._monitor(alert)

    # --- the dashboard -----------------------------------------------------------------------

    def _dashboard(self, slo: datadog.ServiceLevelObjective) -> datadog.Dashboard:
        service = q.scope("$env", f"service:{SERVICE}")  # the template variable: env:<value>
        db = pulumi.Output.from_input(self._args.db_instance_identifier).apply(lambda i: f"dbinstanceidentifier:{i}")

        def db_widget(title: str, series: Series) -> pulumi.Output[dict]:
            return db.apply(lambda scope: _timeseries(title, {"q1": series.render(scope)}, "q1"))

        def db_free_storage_widget() -> pulumi.Output[dict]:
            return db.apply(
                lambda scope: _timeseries(
                    "RDS free storage (fraction of the volume)",
                    {"free": q.RDS_FREE_STORAGE.render(scope), "total": q.RDS_TOTAL_STORAGE.render(scope)},
                    q.ratio_formula("free", "total"),
                )
            )

        groups = {
            "Database health": [
                db_widget("RDS CPU (%)", q.RDS_CPU),
                db_free_storage_widget(),
                db_widget("RDS connections", q.RDS_CONNECTIONS),
                _timeseries(
                    "Connections used (fraction of max_connections)",
                    {"q1": q.DB_CONNECTIONS_USED.render(service)},
                    "q1",
                ),
            ],
            "API performance": [
                _timeseries(
                    "Latency p50 / p95 / p99 (s)",
                    {p: q.API_LATENCY_P95.percentile(p).render(service) for p in ("p50", "p95", "p99")},
                    "p50",
                    "p95",
                    "p99",
                ),
                _timeseries("Requests", {"hits": q.API_HITS.render(service)}, "hits"),
                _timeseries(
                    "Host memory usable (fraction)", {"q1": q.HOST_MEMORY_USABLE.render(service, ("host",))}, "q1"
                ),
                _timeseries("Host CPU user (%)", {"q1": q.HOST_CPU_USER.render(service, ("host",))}, "q1"),
                {
                    "service_level_objective_definition": {
                        "title": "API availability",
                        "slo_id": slo.id,
                        "view_type": "detail",
                        "view_mode": "overall",
                        "time_windows": ["7d", "30d"],
                    }
                },
            ],
            "Error tracking": [
                _timeseries(
                    "Error rate (5xx / requests)",
                    {"errors": q.API_ERRORS.render(service), "hits": q.API_HITS.render(service)},
                    q.ratio_formula("errors", "hits"),
                ),
                _timeseries("Errors", {"errors": q.API_ERRORS.render(service)}, "errors"),
            ],
            "Feature-flag metrics": [
                _timeseries("Flag check latency p95 (ms)", {"q1": q.FLAG_CHECK_LATENCY_P95.render(service)}, "q1"),
            ],
            "Data pipeline status": [
                _timeseries("Records ingested", {"q1": q.RECORDS_INGESTED.render(service)}, "q1"),
            ],
        }
        return datadog.Dashboard(
            f"{self._name}-dashboard",
            title=f"SwipeSavvy {self._args.stack}",
            description="Runbook phase 6: the five groups of the staging guide. Managed by Pulumi: edits are overwritten.",
            layout_type="ordered",
            template_variables=[{"name": "env", "prefix": "env", "defaults": [self._args.stack]}],
            widgets=[
                {"group_definition": {"title": title, "layout_type": "ordered", "widgets": widgets}}
                for title, widgets in groups.items()
            ],
            tags=["team:swipesavvy"],
            opts=self._child,
        )

    # --- synthetic tests ---------------------------------------------------------------------

    def _synthetics(self, site_url: pulumi.Output[str]) -> None:
        config = self._args.config
        token = config.api_token_variable
        variable = (
            datadog.get_synthetics_global_variable_output(name=token, opts=pulumi.InvokeOutputOptions(parent=self))
            if token
            else None
        )
        for check in _smoke_checks(token):
            datadog.SyntheticsTest(
                f"{self._name}-{check.key}",
                name=f"[swipesavvy {self._args.stack}] {check.title}",
                type="api",
                subtype="http",
                status="live",
                locations=list(config.synthetics_locations),
                request_definition={
                    "method": "GET",
                    "url": site_url.apply(lambda u, p=check.path: u + p),
                    "timeout": 10,
                },
                request_headers=check.headers or None,
                config_variables=[{"type": "global", "name": token, "id": variable.id}] if check.headers else None,
                assertions=check.assertions,
                options_list={
                    "tick_every": 300,
                    "min_location_failed": 1,
                    "retry": {"count": 1, "interval": 1000},  # one retry before alerting: a blip is not an outage
                    "monitor_options": {"renotify_interval": RENOTIFY_MINUTES},
                    "monitor_priority": check.priority,
                },
                message=self.dashboard_url.apply(
                    lambda url, c=check: "\n".join(
                        filter(
                            None,
                            (
                                f"{c.title} failed on {self._args.stack}.",
                                f"First check: {c.first_check}",
                                f"Dashboard: {url}",
                                config.notify,
                            ),
                        )
                    )
                ),
                tags=self._tags,
                opts=self._child,
            )

    # --- the AWS integration ------------------------------------------------------------------

    def _aws_integration(self) -> None:
        """Datadog's crawler reads CloudWatch (aws.rds.*) through a role it assumes with an
        external ID; the permissions are the list Datadog publishes for the integration.
        A second owner was refused before (``refuse_second_integration_owner``); here each
        piece waits for the one before: external ID (the role's trust names it), role,
        policies, attachments, then the integration."""
        invoke = pulumi.InvokeOutputOptions(parent=self)
        account = aws.get_caller_identity_output(opts=invoke).account_id
        partition = aws.get_partition_output(opts=invoke).partition
        external_id = datadog.aws.IntegrationExternalId(f"{self._name}-aws", opts=self._child)
        role_name = INTEGRATION_ROLE_NAME
        role = aws.iam.Role(
            f"{self._name}-datadog-integration",
            name=role_name,
            description="Datadog's AWS integration: read-only metrics and resource metadata",
            assume_role_policy=pulumi.Output.json_dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": "sts:AssumeRole",
                            "Principal": {
                                "AWS": pulumi.Output.concat("arn:", partition, f":iam::{DATADOG_AWS_ACCOUNT}:root")
                            },
                            "Condition": {"StringEquals": {"sts:ExternalId": external_id.id}},
                        }
                    ],
                }
            ),
            tags=dict(self._args.tags),
            opts=self._child,
        )
        # Datadog's list is longer than one role's inline policies may be (10,240 characters):
        # managed policies of at most 6,144 each, as Datadog's own Terraform guide splits it
        # (IAM user guide, "IAM and AWS STS quotas"). Read while planning, so the preview
        # shows how many there are.
        permissions = datadog.aws.get_integration_iam_permissions(
            opts=pulumi.InvokeOptions(parent=self)
        ).iam_permissions
        attachments = []
        for index, actions in enumerate(split_actions(permissions)):
            policy = aws.iam.Policy(
                f"{self._name}-datadog-integration-{index}",
                description=f"Datadog AWS integration permissions, part {index + 1}",
                policy=json.dumps(allow_document(actions)),
                tags=dict(self._args.tags),
                # Only once the role exists: a role that fails at apply leaves no policy behind.
                opts=pulumi.ResourceOptions(parent=self, depends_on=[role]),
            )
            attachments.append(
                aws.iam.RolePolicyAttachment(
                    f"{self._name}-datadog-integration-{index}",
                    role=role.name,
                    policy_arn=policy.arn,
                    opts=self._child,
                )
            )
        datadog.aws.IntegrationAccount(
            f"{self._name}-aws",
            aws_account_id=account,
            aws_partition=partition,
            auth_config={"aws_auth_config_role": {"role_name": role_name, "external_id": external_id.id}},
            aws_regions={"include_all": True},
            metrics_config={"namespace_filters": {"include_onlies": ["AWS/RDS", "AWS/ApplicationELB", "AWS/EC2"]}},
            logs_config={"lambda_forwarder": {}},
            # Extended resource collection is on unless switched off ("Defaults to `true`",
            # pulumi-datadog IntegrationAccount resources_config.extended_collection) and needs
            # Datadog's separate resource-collection permissions (Datadog API reference, "Get
            # resource collection IAM permissions", which its Terraform guide grants with the
            # SecurityAudit managed policy): not granted, since the monitors read metrics only.
            resources_config={"extended_collection": False, "cloud_security_posture_management_collection": False},
            traces_config={"xray_services": {}},
            # Not env:<stack>: the integration reads every stack's metrics in the account.
            account_tags=[f"integration-owner:{self._args.stack}", "managed-by:pulumi"],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[role, *attachments]),
        )


@dataclass(frozen=True)
class SmokeCheck:
    """A phase 7 smoke check as a synthetic test."""

    key: str
    title: str
    path: str
    assertions: list[dict]
    first_check: str
    priority: int = 2
    headers: dict[str, str] | None = None


# /api/features/all answers the 10 flags, as a list or as {"flags": [...]}.
TEN_FLAGS_SCHEMA = {
    "anyOf": [
        {"type": "array", "minItems": 10, "maxItems": 10},
        {
            "type": "object",
            "required": ["flags"],
            "properties": {"flags": {"type": "array", "minItems": 10, "maxItems": 10}},
        },
    ]
}


def _status_200() -> dict:
    return {"type": "statusCode", "operator": "is", "target": "200"}


def _faster_than(milliseconds: int) -> dict:
    return {"type": "responseTime", "operator": "lessThan", "target": str(milliseconds)}


def _smoke_checks(token_variable: str | None) -> list[SmokeCheck]:
    return [
        SmokeCheck(
            "health",
            "API health",
            "/api/health",
            [
                _status_200(),
                {
                    "type": "body",
                    "operator": "validatesJSONPath",
                    "targetjsonpath": {"jsonpath": "$.status", "operator": "is", "targetvalue": "healthy"},
                },
                _faster_than(300),
            ],
            "the backend-down monitor and the load balancer's target health",
            priority=1,
        ),
        SmokeCheck(
            "features",
            "Feature flags served (10)",
            "/api/features/all",
            [
                _status_200(),
                {
                    "type": "body",
                    "operator": "validatesJSONSchema",
                    "targetjsonschema": {"jsonschema": json.dumps(TEN_FLAGS_SCHEMA), "metaschema": "draft-07"},
                },
            ],
            "python -m ops verify --stack <stack> (the flags), then the API's logs",
            headers={"Authorization": f"Bearer {{{{ {token_variable} }}}}"} if token_variable else None,
        ),
        SmokeCheck(
            "site",
            "Reporting dashboard loads",
            "/",
            [
                _status_200(),
                {"type": "body", "operator": "contains", "target": "Reporting Dashboard"},
                _faster_than(500),
            ],
            "the CloudFront distribution and the site bucket's last release",
        ),
    ]


def _timeseries(title: str, queries: dict[str, str], *formulas: str) -> dict:
    """A timeseries widget: named metric queries and the formulas drawn from them."""
    return {
        "timeseries_definition": {
            "title": title,
            "requests": [
                {
                    "queries": [{"metric_query": {"name": name, "query": query}} for name, query in queries.items()],
                    "formulas": [{"formula_expression": formula} for formula in formulas],
                    "display_type": "line",
                }
            ],
        }
    }
