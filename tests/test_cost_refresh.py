"""``python -m ops cost --refresh-prices`` round 2 (issue 30 items 2-4 and 10), on recorded
``GetProducts`` answers (botocore's Stubber): any class a stack's plan uses is fetched, a
region without a table gets one of its own, every AWS entry read becomes a ``price-list-api``
entry, and an unreachable endpoint is said to be one (not blamed on credentials)."""

from __future__ import annotations

import datetime
import json

import boto3
import botocore.exceptions
from botocore.stub import Stubber
from test_cost import pricing_client, product
from test_ops_stack_cli import one_line_error, run

from ops import cost_cli
from ops.cost.price_list import api_filters, query_for, refresh_table
from ops.rehearsal.mock_program import stack_config

TODAY = datetime.date(2026, 12, 6)
NAT = {"usd": 0.045, "per": "NAT gateway-hour", "source": "https://blog", "read": "2026-11-30", "kind": "third-party"}
APM = {"usd": 31.0, "per": "APM host-month", "source": "https://datadog", "read": "2026-11-30", "kind": "provider"}


def request(key: str, region: str) -> dict:
    query = query_for(key)
    return {
        "ServiceCode": query.service,
        "Filters": api_filters(query, region),
        "FormatVersion": "aws_v1",
        "MaxResults": 100,
    }


def test_refresh_fetches_a_class_the_table_does_not_have_yet():
    client = pricing_client()
    key = "rds.instance:postgres:db.x9.huge"
    with Stubber(client) as stub:
        answer = {"FormatVersion": "aws_v1", "PriceList": [product("X9", [("0", "3.2100000000")])]}
        stub.add_response("get_products", answer, request(key, "us-east-1"))
        refreshed, report = refresh_table({"region": "us-east-1", "prices": {}}, client, TODAY, [key])
        stub.assert_no_pending_responses()
    assert refreshed["prices"][key] == {
        "usd": 3.21,
        "per": "instance-hour (Single-AZ; Multi-AZ bills primary and standby)",
        "source": "AWS Price List Query API (pricing GetProducts AmazonRDS: instanceType=db.x9.huge,"
        " databaseEngine=PostgreSQL, deploymentOption=Single-AZ)",
        "read": "2026-12-06",
        "kind": "price-list-api",
    }
    assert report == [f"{key}: 3.21"]


def test_the_classes_a_stack_uses_are_the_ones_refresh_adds(monkeypatch):
    config = stack_config("staging")
    config["swipesavvy:database"] = {**config["swipesavvy:database"], "instanceClass": "db.x9.huge"}
    monkeypatch.setattr("ops.rehearsal.mock_program.stack_config", lambda stack: config)
    keys = cost_cli._stack_plan_keys("staging", "us-east-1")
    assert {"rds.instance:postgres:db.x9.huge", "ec2.instance:t4g.small", "vpc.nat-gateway.hour"} <= set(keys)
    assert cost_cli._stack_plan_keys("staging", "eu-west-1") == []  # another region's table: not this stack's


def test_refresh_builds_a_regions_table_from_the_price_list_api(tmp_path, monkeypatch, capsys):
    (tmp_path / "us-east-1.json").write_text(
        json.dumps(
            {
                "region": "us-east-1",
                "hoursPerMonth": 730,
                "prices": {"vpc.nat-gateway.hour": NAT, "datadog.apm-host.month": APM},
            }
        )
    )
    monkeypatch.setattr(cost_cli, "price_table_path", lambda region: tmp_path / f"{region}.json")
    client = pricing_client()
    monkeypatch.setattr(boto3, "client", lambda *args, **kwargs: client)
    with Stubber(client) as stub:
        answer = {"FormatVersion": "aws_v1", "PriceList": [product("EUNAT", [("0", "0.0480000000")])]}
        stub.add_response("get_products", answer, request("vpc.nat-gateway.hour", "eu-west-1"))
        code, out, _ = run(capsys, "cost", "--refresh-prices", "--region", "eu-west-1")
        stub.assert_no_pending_responses()
    assert api_filters(query_for("vpc.nat-gateway.hour"), "eu-west-1") == [
        {"Type": "TERM_MATCH", "Field": "usagetype", "Value": "EU-NatGateway-Hours"},
        {"Type": "TERM_MATCH", "Field": "regionCode", "Value": "eu-west-1"},
    ]
    built = tmp_path / "eu-west-1.json"
    assert (code, out) == (
        0,
        f"datadog.apm-host.month: kept 31.0 (not in AWS's price list)\nvpc.nat-gateway.hour: 0.048\nwrote {built}\n",
    )
    table = json.loads(built.read_text())
    assert table["region"] == "eu-west-1" and table["hoursPerMonth"] == 730
    assert table["prices"] == {
        "vpc.nat-gateway.hour": {
            "usd": 0.048,
            "per": "NAT gateway-hour",
            "source": "AWS Price List Query API (pricing GetProducts AmazonEC2: usagetype=EU-NatGateway-Hours)",
            "read": datetime.datetime.now(datetime.UTC).date().isoformat(),
            "kind": "price-list-api",
        },
        "datadog.apm-host.month": APM,  # Datadog's prices are the same in every region
    }


class Unreachable:
    def get_products(self, **request):
        raise botocore.exceptions.EndpointConnectionError(endpoint_url="https://api.pricing.us-east-1.amazonaws.com/")


def test_an_unreachable_endpoint_is_said_to_be_one_and_nothing_is_written(tmp_path, monkeypatch, capsys):
    path = tmp_path / "us-east-1.json"
    path.write_text(json.dumps({"region": "us-east-1", "prices": {"vpc.nat-gateway.hour": NAT}}))
    before = path.read_text()
    monkeypatch.setattr(cost_cli, "price_table_path", lambda region: path)
    monkeypatch.setattr(boto3, "client", lambda *args, **kwargs: Unreachable())
    code, out, err = run(capsys, "cost", "--refresh-prices", "--region", "us-east-1")
    assert (code, out) == (3, "")
    assert one_line_error(err) == (
        "error: cannot reach the AWS Price List API at https://api.pricing.us-east-1.amazonaws.com:"
        ' Could not connect to the endpoint URL: "https://api.pricing.us-east-1.amazonaws.com/"'
        " (fix: check the network, a proxy (HTTPS_PROXY) or DNS; nothing was written)"
    )
    assert path.read_text() == before


def test_refresh_refuses_a_table_holding_another_regions_prices(tmp_path, monkeypatch, capsys):
    copied = tmp_path / "eu-west-1.json"
    copied.write_text(json.dumps({"region": "us-east-1", "prices": {"vpc.nat-gateway.hour": NAT}}))
    monkeypatch.setattr(cost_cli, "price_table_path", lambda region: tmp_path / f"{region}.json")
    code, out, err = run(capsys, "cost", "--refresh-prices", "--region", "eu-west-1")
    assert (code, out) == (2, "")
    assert one_line_error(err) == (
        f"error: {copied} holds us-east-1's prices, not eu-west-1's"
        " (fix: delete it; python -m ops cost --refresh-prices --region eu-west-1 then builds eu-west-1's)"
    )
