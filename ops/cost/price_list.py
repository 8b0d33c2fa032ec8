"""``python -m ops cost --refresh-prices``: the AWS part of a region's price table, rebuilt from
the AWS Price List Query API (``pricing`` ``GetProducts``), for a user with AWS credentials.

Each AWS price key of ``ops/cost/prices/<region>.json`` has a query (service code and
``TERM_MATCH`` filters on the product attributes); an instance key's class is read from the
key itself, so every class the table prices, and every class a stack's plan uses (``keys``),
is fetched. A region without a table gets one built from a template table's keys (its
Datadog prices, which are the same everywhere, copied). ``GetProducts`` answers
with ``PriceList``: one JSON document per product (as a string), whose
``terms.OnDemand.<offer>.priceDimensions.<rate>.pricePerUnit.USD`` is the price per the
product's own unit; ``scale`` turns that into the table's unit (per 10,000 calls...). The
first tier (``beginRange`` 0) is taken, and the entry's ``kind`` becomes ``price-list-api``.
A key that matches no product, or products with different prices, keeps its committed entry
(a new one: ``usd`` null, so lines using it say ``no price``) and is reported. Datadog's prices are kept as
they are (they are not in AWS's price list).
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

PRICING_REGION = "us-east-1"  # the Price List Query API's endpoint (also eu-central-1, ap-south-1)
SOURCE = "AWS Price List Query API (pricing GetProducts {service}: {filters})"
# Usage types carry a region prefix everywhere but us-east-1.
USAGE_PREFIX = {
    "us-east-1": "",
    "us-east-2": "USE2-",
    "us-west-2": "USW2-",
    "eu-west-1": "EU-",
    "eu-central-1": "EUC1-",
}


@dataclass(frozen=True)
class Query:
    service: str
    filters: Mapping[str, str]  # product attribute -> value ({prefix} is the region's usage type prefix)
    scale: float = 1  # the API's price per its unit x scale = the table's price
    regional: bool = True  # filtered on regionCode


def _fixed_queries() -> dict[str, Query]:
    return {
        "rds.storage:gp3": Query(
            "AmazonRDS", {"usagetype": "{prefix}RDS:GP3-Storage", "deploymentOption": "Single-AZ"}
        ),
        "ebs.volume:gp3": Query("AmazonEC2", {"productFamily": "Storage", "volumeApiName": "gp3"}),
        "vpc.nat-gateway.hour": Query("AmazonEC2", {"usagetype": "{prefix}NatGateway-Hours"}),
        "vpc.nat-gateway.gb": Query("AmazonEC2", {"usagetype": "{prefix}NatGateway-Bytes"}),
        "vpc.public-ipv4.hour": Query("AmazonVPC", {"usagetype": "{prefix}PublicIPv4:InUseAddress"}),
        "vpc.interface-endpoint.hour": Query("AmazonVPC", {"usagetype": "{prefix}VpcEndpoint-Hours"}),
        "vpc.interface-endpoint.gb": Query("AmazonVPC", {"usagetype": "{prefix}VpcEndpoint-Bytes"}),
        "elb.application.hour": Query(
            "AWSELB", {"usagetype": "{prefix}LoadBalancerUsage", "productFamily": "Load Balancer-Application"}
        ),
        "elb.application.lcu-hour": Query(
            "AWSELB", {"usagetype": "{prefix}LCUUsage", "productFamily": "Load Balancer-Application"}
        ),
        "secretsmanager.secret": Query("AWSSecretsManager", {"usagetype": "{prefix}AWSSecretsManager-Secrets"}),
        "secretsmanager.api-calls-10k": Query(
            "AWSSecretsManager", {"usagetype": "{prefix}AWSSecretsManager-APIRequest"}, 10_000
        ),
        "logs.ingest.gb": Query("AmazonCloudWatch", {"usagetype": "{prefix}DataProcessing-Bytes"}),
        "logs.storage.gb-month": Query("AmazonCloudWatch", {"usagetype": "{prefix}TimedStorage-ByteHrs"}),
        "logs.vended-delivery.gb": Query("AmazonCloudWatch", {"usagetype": "{prefix}S3-Egress-Bytes"}),
        "cloudwatch.metric.month": Query("AmazonCloudWatch", {"usagetype": "{prefix}CW:MetricMonitorUsage"}),
        "cloudwatch.alarm.month": Query("AmazonCloudWatch", {"usagetype": "{prefix}CW:AlarmMonitorUsage"}),
        "s3.standard.gb-month": Query("AmazonS3", {"usagetype": "{prefix}TimedStorage-ByteHrs"}),
        "s3.put-requests-1k": Query("AmazonS3", {"usagetype": "{prefix}Requests-Tier1"}, 1_000),
        "s3.get-requests-1k": Query("AmazonS3", {"usagetype": "{prefix}Requests-Tier2"}, 1_000),
        "cloudfront.data-out.gb": Query("AmazonCloudFront", {"usagetype": "US-DataTransfer-Out-Bytes"}, regional=False),
        "cloudfront.https-requests-10k": Query(
            "AmazonCloudFront", {"usagetype": "US-Requests-Tier2-HTTPS"}, 10_000, regional=False
        ),
        "cloudfront.function-invocations-1m": Query(
            "AmazonCloudFront", {"usagetype": "Executions-CloudFrontFunctions"}, 1e6, regional=False
        ),
        "lambda.requests-1m": Query("AWSLambda", {"usagetype": "{prefix}Request"}, 1e6),
        "lambda.gb-second:arm64": Query("AWSLambda", {"usagetype": "{prefix}Lambda-GB-Second-ARM"}),
        "lambda.gb-second:x86_64": Query("AWSLambda", {"usagetype": "{prefix}Lambda-GB-Second"}),
        "xray.traces-1m": Query("AWSXRay", {"usagetype": "{prefix}XRay-TracesStored"}, 1e6),
        "waf.web-acl.month": Query("awswaf", {"usagetype": "{prefix}WebACLV2"}),
        "waf.rule.month": Query("awswaf", {"usagetype": "{prefix}RuleV2"}),
        "waf.requests-1m": Query("awswaf", {"usagetype": "{prefix}RequestV2-Tier1"}, 1e6),
        "kms.key.month": Query("awskms", {"usagetype": "{prefix}KMS-Keys"}),
    }


ENGINES = {"postgres": "PostgreSQL"}  # RDS engine (Pulumi input) -> the price list's databaseEngine


def query_for(key: str) -> Query | None:
    """The Price List query of a price key, or None when AWS's price list does not hold it."""
    kind, _, rest = key.partition(":")
    if kind == "rds.instance":
        engine, _, instance_class = rest.partition(":")
        filters = {"instanceType": instance_class, "databaseEngine": ENGINES.get(engine, engine)}
        return Query("AmazonRDS", {**filters, "deploymentOption": "Single-AZ"})
    if kind == "ec2.instance":
        filters = {"instanceType": rest, "operatingSystem": "Linux", "tenancy": "Shared", "preInstalledSw": "NA"}
        return Query("AmazonEC2", {**filters, "capacitystatus": "Used"})
    return _fixed_queries().get(key)


def api_filters(query: Query, region: str) -> list[dict[str, str]]:
    prefix = USAGE_PREFIX.get(region, "")
    filters = [{"Type": "TERM_MATCH", "Field": f, "Value": v.format(prefix=prefix)} for f, v in query.filters.items()]
    if query.regional:
        filters.append({"Type": "TERM_MATCH", "Field": "regionCode", "Value": region})
    return filters


def on_demand_prices(price_list: list[str | Mapping[str, Any]]) -> set[float]:
    """The first-tier on-demand USD prices in a ``GetProducts`` ``PriceList`` (JSON strings)."""
    found = set()
    for item in price_list:
        product = json.loads(item) if isinstance(item, str) else item
        for offer in product.get("terms", {}).get("OnDemand", {}).values():
            for dimension in offer.get("priceDimensions", {}).values():
                if str(dimension.get("beginRange", "0")) == "0":
                    found.add(float(dimension["pricePerUnit"]["USD"]))
    return found


def fetch_prices(client: Any, query: Query, region: str) -> set[float]:
    filters = api_filters(query, region)
    prices: set[float] = set()
    token = None
    while True:
        request = {"ServiceCode": query.service, "Filters": filters, "FormatVersion": "aws_v1", "MaxResults": 100}
        answer = client.get_products(**request, **({"NextToken": token} if token else {}))
        prices |= on_demand_prices(answer.get("PriceList", []))
        token = answer.get("NextToken")
        if not token:
            return prices


PER = {  # the unit of a price key added to a table, by its kind
    "rds.instance": "instance-hour (Single-AZ; Multi-AZ bills primary and standby)",
    "ec2.instance": "instance-hour (Linux, shared tenancy)",
}


def refresh_table(
    document: Mapping[str, Any], client: Any, today: datetime.date, keys: Iterable[str] = ()
) -> tuple[dict[str, Any], list[str]]:
    """``document`` (a price table) with every AWS price, and each of ``keys`` AWS's price list
    holds, re-read from the Price List API, and one line per key: its new price, or why it
    kept the committed one."""
    region = document["region"]
    prices = dict(document["prices"])
    for key in keys:
        if key not in prices and query_for(key) is not None:
            per = PER.get(key.partition(":")[0], "unit of the Price List API")
            prices[key] = {
                "usd": None,
                "per": per,
                "source": "not yet read",
                "read": today.isoformat(),
                "kind": "unconfirmed",
            }
    report = []
    for key in sorted(prices):
        query = query_for(key)
        if query is None:
            report.append(f"{key}: kept {prices[key]['usd']} (not in AWS's price list)")
            continue
        every = fetch_prices(client, query, region)
        found = {p for p in every if p > 0} or every  # a free tier is a zero price beside the paid one
        if len(found) != 1:
            why = "no product matched" if not found else f"{len(found)} different prices {sorted(found)}"
            report.append(f"{key}: kept {prices[key]['usd']} ({why})")
            continue
        usd = round(found.pop() * query.scale, 10)
        source = SOURCE.format(service=query.service, filters=", ".join(f"{f}={v}" for f, v in query.filters.items()))
        prices[key] = {
            **prices[key],
            "usd": usd,
            "source": source.format(prefix=USAGE_PREFIX.get(region, "")),
            "read": today.isoformat(),
            "kind": "price-list-api",
        }
        report.append(f"{key}: {usd}")
    return {**document, "prices": prices}, report


def new_table(template: Mapping[str, Any], region: str) -> dict[str, Any]:
    """A table for ``region`` to refresh: ``template``'s keys, its AWS prices not yet read
    (null: ``no price`` until the API answers), its Datadog prices as they are."""
    prices = {
        key: entry
        if query_for(key) is None
        else {**entry, "usd": None, "source": "not yet read", "kind": "unconfirmed"}
        for key, entry in template["prices"].items()
    }
    return {**template, "region": region, "prices": prices}
