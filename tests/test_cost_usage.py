"""A stack's usage file (issue 30 item 6, Infracost's ``infracost-usage.yml`` as the model):
per-resource usage changes the estimate and is named on the lines it moves, the defaults are
printed, usage-based lines are marked, and a bad file is one line with its key and fix. Also
what the price table's kinds of source add up to."""

from __future__ import annotations

import json

import pytest

from ops.cost import estimate
from ops.cost.estimate import estimate_for_stack
from ops.cost.price_tables import CostError
from ops.cost.report import price_sources, render_text
from ops.cost.usage import load_usage_file
from ops.rehearsal.mock_program import PROJECT_ROOT

PLAN = [("aws:cloudfront/distribution:Distribution", "cdn"), ("aws:ec2/natGateway:NatGateway", "nat")]


def by_what(result, name: str) -> dict[str, tuple[float, float, str]]:
    return {
        line.what: (line.quantity, round(line.monthly, 4), line.usage)
        for line in result.lines
        if line.resource.endswith(f" {name}")
    }


def test_the_usage_file_changes_the_estimate_and_names_itself_on_the_lines_it_moves(staging, tmp_path, monkeypatch):
    before = estimate_for_stack("staging", staging)
    path = tmp_path / "staging.yml"
    path.write_text(
        "version: 0.1\nresource_usage:\n"
        "  swipesavvy-frontend-cdn: {cdnGbPerMonth: 200}\n"
        "  swipesavvy-nat: {natGbPerMonth: 150}\n"
    )
    monkeypatch.setattr(estimate, "usage_path", lambda stack: path)
    after = estimate_for_stack("staging", staging)
    # CloudFront 180 GB more at $0.085, the NAT gateway 100 GB more at $0.045
    assert round(after.total - before.total, 2) == round(180 * 0.085 + 100 * 0.045, 2) == 19.80
    assert by_what(after, "swipesavvy-frontend-cdn")["data out to viewers"] == (
        200,
        17.0,
        f"cdnGbPerMonth 200 ({path})",
    )
    assert by_what(before, "swipesavvy-frontend-cdn")["data out to viewers"] == (20, 1.7, "cdnGbPerMonth 20 (default)")
    assert by_what(after, "swipesavvy-nat")["data processed"] == (150, 6.75, f"natGbPerMonth 150 ({path})")
    assert by_what(after, "swipesavvy-nat")["NAT gateway"][2] == ""  # from the plan alone: not usage-based


def test_usage_based_lines_are_marked_and_the_defaults_printed(staging):
    text = render_text(estimate_for_stack("staging", staging)).splitlines()
    nat = [line.split(None, 1)[1] for line in text if line.strip().startswith("swipesavvy-nat ")]
    assert [" ".join(line.split()) for line in nat] == [
        "public IPv4 address 730 hours x $0.005 $3.65",
        "NAT gateway 730 hours x $0.045 $32.85",
        "* data processed 50 GB x $0.045 $2.25",
    ]
    usage = text[next(i for i, line in enumerate(text) if line.startswith("* usage-based")) :]
    assert [line.strip() for line in usage] == [
        "* usage-based; usage assumed (defaults unless marked): natGbPerMonth 50, cdnGbPerMonth 20,"
        " cdnRequestsPerMonth 2,000,000, loadBalancerCapacityUnits 1,",
        "endpointGbPerMonth 1, logGbPerMonth 1, upgradeLogGbPerMonth 0, enhancedMonitoringKbPerSample 10,"
        " accessLogGbPerMonth 1, s3GbPerBucket 1,",
        "s3PutRequestsPerBucket 10,000, s3GetRequestsPerBucket 100,000, secretApiCallsPerMonth 10,000,"
        " lambdaInvocationsPerMonth 1,000,",
        "lambdaAverageSeconds 5, customMetrics 50",
    ]  # wrapped at 150 characters, never inside a setting and its value
    assert " ".join(line.strip() for line in usage) == (
        "* usage-based; usage assumed (defaults unless marked): natGbPerMonth 50, cdnGbPerMonth 20,"
        " cdnRequestsPerMonth 2,000,000, loadBalancerCapacityUnits 1, endpointGbPerMonth 1, logGbPerMonth 1,"
        " upgradeLogGbPerMonth 0, enhancedMonitoringKbPerSample 10, accessLogGbPerMonth 1, s3GbPerBucket 1,"
        " s3PutRequestsPerBucket 10,000, s3GetRequestsPerBucket 100,000, secretApiCallsPerMonth 10,000,"
        " lambdaInvocationsPerMonth 1,000, lambdaAverageSeconds 5, customMetrics 50"
    )


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "resource_usage:\n  swipesavvy-cdn: {cdnGbPerMonth: 5}\n",
            "resource_usage.swipesavvy-cdn is not a resource of the plan"
            " (fix: a name python -m ops cost --stack NAME lists, or remove it)",
        ),
        (
            "resource_usage:\n  nat: {cdnGbPerMonth: 5}\n",
            "resource_usage.nat.cdnGbPerMonth: aws:ec2/natGateway:NatGateway reads natGbPerMonth (fix: one of them)",
        ),
        (
            "resource_usage:\n  cdn: {cdnRequestsPerMonth: -1}\n",
            "resource_usage.cdn.cdnRequestsPerMonth = -1 is invalid: must be an integer from 0 to 9007199254740991"
            " (fix: cdnRequestsPerMonth: a value in that range)",
        ),
        (
            "resource_usage:\n  cdn: {cdnGbPerMonth: lots}\n",
            "resource_usage.cdn.cdnGbPerMonth = 'lots' is invalid: must be a number from 0 to 1e+07"
            " (fix: cdnGbPerMonth: a value in that range)",
        ),
        (
            "monthlyBudgetUsd: -5\n",
            "monthlyBudgetUsd = -5 is invalid: must be a number of US dollars above 0"
            " (fix: monthlyBudgetUsd: 300, or remove it for no budget)",
        ),
        ("budget: 5\n", "budget is not a usage file key (fix: version, monthlyBudgetUsd and resource_usage are the only keys)"),
        ("version: 2\n", "version = 2 is invalid: must be 0.1 (fix: version: 0.1)"),
    ],
    ids=["unknown-resource", "key-of-another-type", "negative", "not-a-number", "budget", "unknown-key", "version"],
)  # fmt: skip
def test_a_bad_usage_file_is_one_line_with_its_key_and_fix(tmp_path, text, message):
    path = tmp_path / "staging.yml"
    path.write_text(text)
    with pytest.raises(CostError) as raised:
        load_usage_file(path, PLAN)
    assert str(raised.value) == f"{path}: {message}"


@pytest.mark.parametrize(
    "content, message",
    [
        (b"resource_usage: [\n", "is not valid YAML: line 2, column 1: expected the node content, but found '<stream end>'"),
        (b"\xff\xfe", "is not UTF-8 text (byte 0)"),
        (b"- 1\n", "holds a list, not a mapping"),
    ],
    ids=["cut-off", "not-utf8", "a-list"],
)  # fmt: skip
def test_a_usage_file_that_is_not_a_mapping_is_one_line(tmp_path, content, message):
    path = tmp_path / "staging.yml"
    path.write_bytes(content)
    with pytest.raises(CostError, match=r"^" + str(path).replace(".", r"\.") + r" \w") as raised:
        load_usage_file(path, PLAN)
    assert str(raised.value).startswith(f"{path} {message} (fix: ")


def test_the_budget_comes_from_the_usage_file(staging, production):
    assert estimate_for_stack("staging", staging).budget == 300
    assert estimate_for_stack("production", production).budget == 800


def test_the_output_shows_the_share_of_the_total_the_provider_has_not_confirmed():
    shares = {"provider": 10.0, "price-list-api": 30.0, "third-party": 45.0, "unconfirmed": 15.0}
    assert price_sources(shares, 100.0) == (
        "prices: $10.00 the provider's pages, $30.00 the Price List API, $45.00 third-party pages only,"
        " $15.00 no page found; unconfirmed by the provider: $60.00 (60%)"
        " (fix: python -m ops cost --refresh-prices, with AWS credentials, confirms AWS's)"
    )


def test_each_committed_price_is_marked_with_the_kind_of_its_source():
    """``provider``: AWS's or Datadog's own page; ``unconfirmed``: no page found shows it;
    ``third-party``: any other page (issue 30 item 10)."""
    prices = json.loads((PROJECT_ROOT / "ops/cost/prices/us-east-1.json").read_text())["prices"]
    for key, entry in prices.items():
        source = entry["source"]
        if source.startswith("not found"):
            expected = "unconfirmed"
        elif source.startswith(("https://aws.amazon.com/", "https://docs.datadoghq.com/")):
            expected = "provider"
        else:
            expected = "third-party"
        assert entry["kind"] == expected, key
    kinds = [entry["kind"] for entry in prices.values()]
    assert (kinds.count("provider"), kinds.count("third-party"), kinds.count("unconfirmed")) == (3, 16, 21)
