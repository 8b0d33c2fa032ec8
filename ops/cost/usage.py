"""A stack's usage file for ``python -m ops cost``: ``usage/<stack>.yml``, modelled on
Infracost's ``infracost-usage.yml``.

    version: 0.1
    monthlyBudgetUsd: 300            # the pull request that would cross it fails
    resource_usage:                  # per planned resource (its Pulumi name), as in Infracost
      swipesavvy-cdn:
        cdnGbPerMonth: 40
        cdnRequestsPerMonth: 5000000

The keys under a resource are the ``swipesavvy:cost`` settings its type's pricer reads
(``USAGE_KEYS``), with the same bounds; a resource without a value keeps the stack's
(``swipesavvy:cost``, or the default), and a usage shared by several resources of a type is
split over those without a value of their own. The file is optional; every mistake in it is
one line naming the file, the key and the fix. Pure logic, no Pulumi.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components.config import COST_INTEGERS, COST_NUMBERS, MAX_EXACT_INTEGER, load_yaml
from ops.cost.price_tables import PROJECT_ROOT, CostError, shown

USAGE_DIR = PROJECT_ROOT / "usage"
VERSION = "0.1"
MAX_BUDGET = 1e9

_BUCKET = ("s3GbPerBucket", "s3PutRequestsPerBucket", "s3GetRequestsPerBucket")
_LOGS = ("logGbPerMonth", "upgradeLogGbPerMonth")
_BALANCER = ("loadBalancerCapacityUnits",)
USAGE_KEYS: dict[str, tuple[str, ...]] = {  # type token: the usage settings its pricer reads
    "aws:ec2/natGateway:NatGateway": ("natGbPerMonth",),
    "aws:cloudfront/distribution:Distribution": ("cdnGbPerMonth", "cdnRequestsPerMonth"),
    "aws:cloudfront/function:Function": ("cdnRequestsPerMonth",),
    "aws:wafv2/webAcl:WebAcl": ("cdnRequestsPerMonth",),
    "aws:lb/loadBalancer:LoadBalancer": _BALANCER,
    "aws:alb/loadBalancer:LoadBalancer": _BALANCER,
    "aws:ec2/vpcEndpoint:VpcEndpoint": ("endpointGbPerMonth",),
    "aws:cloudwatch/logGroup:LogGroup": _LOGS,
    "aws:rds/instance:Instance": (*_LOGS, "enhancedMonitoringKbPerSample"),
    "aws:cloudwatch/logDelivery:LogDelivery": ("accessLogGbPerMonth",),
    "aws:s3/bucket:Bucket": _BUCKET,
    "aws:s3/bucketV2:BucketV2": _BUCKET,
    "aws:secretsmanager/secret:Secret": ("secretApiCallsPerMonth",),
    "aws:lambda/function:Function": ("lambdaInvocationsPerMonth", "lambdaAverageSeconds"),
    "datadog:index/apiKey:ApiKey": ("customMetrics",),
}


@dataclass(frozen=True)
class UsageFile:
    path: str = ""  # as shown to the user; empty: the stack has none
    budget: float | None = None  # US dollars a month
    overrides: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # resource -> CostConfig field -> value


def usage_path(stack: str) -> Path:
    return USAGE_DIR / f"{stack}.yml"


def load_usage_file(path: Path, resources: Iterable[tuple[str, str]]) -> UsageFile:
    """The usage file at ``path`` (none there: no budget, no per-resource usage), checked
    against the plan's ``(type, name)`` pairs."""
    if not path.is_file():
        return UsageFile()
    where = shown(path)
    document = _read(path, where)
    fix_top = "version, monthlyBudgetUsd and resource_usage are the only keys"
    for key in document:
        if key not in ("version", "monthlyBudgetUsd", "resource_usage"):
            raise CostError(f"{where}: {key} is not a usage file key (fix: {fix_top})")
    if str(document.get("version", VERSION)) != VERSION:
        raise CostError(
            f"{where}: version = {document['version']!r} is invalid: must be {VERSION} (fix: version: {VERSION})"
        )
    budget = document.get("monthlyBudgetUsd")
    if budget is not None and not (_is_number(budget) and 0 < budget <= MAX_BUDGET):
        raise CostError(
            f"{where}: monthlyBudgetUsd = {budget!r} is invalid: must be a number of US dollars above 0"
            " (fix: monthlyBudgetUsd: 300, or remove it for no budget)"
        )
    per_resource = document.get("resource_usage") or {}
    if not isinstance(per_resource, dict):
        raise CostError(f"{where}: resource_usage must map resource names to their usage (fix: resource_usage: {{}})")
    types = {name: typ for typ, name in resources}
    overrides = {name: _resource_usage(where, name, values, types) for name, values in per_resource.items()}
    return UsageFile(where, float(budget) if budget is not None else None, overrides)


def _read(path: Path, where: str) -> dict[str, Any]:
    document = load_yaml(path, where, CostError)
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise CostError(f"{where} holds a {type(document).__name__}, not a mapping (fix: version: {VERSION} ...)")
    return document


def _resource_usage(where: str, name: str, values: Any, types: Mapping[str, str]) -> dict[str, float]:
    if name not in types:
        raise CostError(
            f"{where}: resource_usage.{name} is not a resource of the plan"
            " (fix: a name python -m ops cost --stack NAME lists, or remove it)"
        )
    accepted = USAGE_KEYS.get(types[name], ())
    if not accepted:
        raise CostError(f"{where}: resource_usage.{name} ({types[name]}) takes no usage (fix: remove it)")
    if not isinstance(values, dict):
        raise CostError(f"{where}: resource_usage.{name} must map settings to values (fix: {accepted[0]}: ...)")
    found = {}
    for key, value in values.items():
        path = f"resource_usage.{name}.{key}"
        if key not in accepted:
            raise CostError(f"{where}: {path}: {types[name]} reads {', '.join(accepted)} (fix: one of them)")
        found[_field(key)] = _value(where, path, key, value)
    return found


def _field(key: str) -> str:
    return COST_NUMBERS[key][0] if key in COST_NUMBERS else COST_INTEGERS[key]


def _value(where: str, path: str, key: str, value: Any) -> float:
    if key in COST_NUMBERS:
        high = COST_NUMBERS[key][1]
        if _is_number(value) and 0 <= value <= high:
            return float(value)
        must = f"a number from 0 to {high:g}"
    else:
        if _is_number(value) and value == int(value) and 0 <= value <= MAX_EXACT_INTEGER:
            return int(value)
        must = f"an integer from 0 to {MAX_EXACT_INTEGER}"
    raise CostError(f"{where}: {path} = {value!r} is invalid: must be {must} (fix: {key}: a value in that range)")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
