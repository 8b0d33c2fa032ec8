"""``python -m ops cost``'s bad inputs, each one line naming the file, the key and the fix
(issue 30 item 1, issue 32 item 4): stack values of the wrong type or refused by the program,
a stack file that is not UTF-8, price tables cut off, empty, of another region or with
prices that are not positive numbers, and options that would be ignored."""

from __future__ import annotations

import json

import pytest
from test_ops_stack_cli import run

from ops import cost_cli
from ops.cost import price_tables
from ops.cost.estimate import estimate
from ops.cost.price_tables import CostError, load_price_table, price_table_from_json
from ops.cost.pricers import PlannedResource
from ops.rehearsal.mock_program import stack_config

ENTRY = {"usd": 0.045, "per": "NAT gateway-hour", "source": "https://x", "read": "2026-11-30", "kind": "provider"}
FIX = "git checkout -- {path}, or python -m ops cost --refresh-prices --region us-east-1 rebuilds it from the Price List API"


def last_line(err: str) -> str:
    """The error line (the program's warnings may precede it on stderr), never a traceback."""
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert lines[-1].startswith("error: "), err
    return lines[-1]


@pytest.fixture
def bad_stack(tmp_path, monkeypatch):
    """Run ``ops cost --stack bad`` with the staging settings changed by ``change``."""

    def cost(capsys, change: dict) -> tuple[int, str, str]:
        config = {**stack_config("staging"), **change}
        (tmp_path / "Pulumi.bad.yaml").write_text("config: {}\n")
        monkeypatch.setattr(cost_cli, "PROJECT_ROOT", tmp_path)
        monkeypatch.setattr("ops.rehearsal.mock_program.stack_config", lambda stack: config)
        return run(capsys, "cost", "--stack", "bad")

    return cost


@pytest.mark.parametrize(
    "change, message",
    [
        (
            {"swipesavvy:database": "notamap"},
            "error: Pulumi.bad.yaml: swipesavvy:database = 'notamap' is invalid: must be an object"
            " (fix: pulumi config set --path 'swipesavvy:database' '{...}')",
        ),
        (
            {"swipesavvy:database": {**stack_config("staging")["swipesavvy:database"], "instanceClass": "foo"}},
            "error: Pulumi.bad.yaml: swipesavvy:database.instanceClass = 'foo' is invalid: must be an RDS instance"
            " class like db.t4g.medium (fix: pulumi config set --path 'swipesavvy:database.instanceClass' db.t4g.medium)",
        ),
        (
            {"swipesavvy:region": 5},
            "error: Pulumi.bad.yaml: swipesavvy:region is not a setting of this program; known settings: environment,"
            " network, database, seed, featureFlags, backend, frontend, monitoring, cost"
            " (fix: pulumi config rm swipesavvy:region)",
        ),
        (
            {"aws:region": 5},
            "error: Pulumi.bad.yaml: aws:region = 5 is invalid: must be an AWS region like us-east-1"
            " (fix: pulumi config set aws:region us-east-1 --stack bad)",
        ),
    ],
    ids=["database-not-a-map", "instance-class", "swipesavvy-region", "aws-region-number"],
)
def test_a_stack_value_of_the_wrong_type_is_one_line(bad_stack, capsys, change, message):
    code, out, err = bad_stack(capsys, change)
    assert (code, out) == (2, "")
    assert last_line(err) == message


def test_a_stack_file_that_is_not_utf8_is_one_line(tmp_path, monkeypatch, capsys):
    (tmp_path / "Pulumi.bad.yaml").write_bytes(b"config:\n  aws:region: \xff\n")
    monkeypatch.setattr(cost_cli, "PROJECT_ROOT", tmp_path)
    monkeypatch.setattr("ops.rehearsal.mock_program.PROJECT_ROOT", tmp_path)
    code, out, err = run(capsys, "cost", "--stack", "bad")
    assert (code, out) == (2, "")
    assert (
        last_line(err) == f"error: {tmp_path / 'Pulumi.bad.yaml'} is not UTF-8 text (byte 22) (fix: save it as UTF-8)"
    )


def table_file(tmp_path, text: str | bytes):
    path = tmp_path / "us-east-1.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def document(**changes) -> dict:
    return {"region": "us-east-1", "hoursPerMonth": 730, "prices": {"vpc.nat-gateway.hour": ENTRY}, **changes}


@pytest.mark.parametrize(
    "text, problem",
    [
        ('{"region": "us-east-1", "prices": {"vpc.nat', "is not valid JSON: line 1, column 36: Unterminated string"
         " starting at"),
        ("[]", "holds a JSON list, not a price table (an object with region, hoursPerMonth and prices)"),
        (b'{"region": "\xff"}', "is not UTF-8 text (byte 12)"),
    ],
    ids=["cut-off", "empty-list", "not-utf8"],
)  # fmt: skip
def test_a_price_file_that_is_not_a_table_is_one_line(tmp_path, text, problem):
    path = table_file(tmp_path, text)
    with pytest.raises(CostError) as raised:
        load_price_table("us-east-1", path)
    assert str(raised.value) == f"{path} {problem} (fix: {FIX.format(path=path)})"


@pytest.mark.parametrize(
    "changes, message",
    [
        (
            {"prices": None},
            "prices = None is invalid: must be an object of price entries"
            " (fix: python -m ops cost --refresh-prices --region us-east-1 rebuilds it from the Price List API)",
        ),
        (
            {"prices": {"vpc.nat-gateway.hour": {**ENTRY, "usd": -24e12}}},
            "prices.vpc.nat-gateway.hour.usd = -24000000000000.0 is invalid: must be a positive number of US dollars,"
            " or null when not found (fix: the price per NAT gateway-hour from https://x)",
        ),
        (
            {"prices": {"vpc.nat-gateway.hour": {**ENTRY, "usd": "0.045"}}},
            "prices.vpc.nat-gateway.hour.usd = '0.045' is invalid: must be a positive number of US dollars,"
            " or null when not found (fix: the price per NAT gateway-hour from https://x)",
        ),
        (
            {"prices": {"vpc.nat-gateway.hour": {k: v for k, v in ENTRY.items() if k != "per"}}},
            "prices.vpc.nat-gateway.hour.per = None is invalid: must be a non-empty text"
            " (fix: correct it from its source (every entry has usd, per, source, read and kind))",
        ),
        (
            {"prices": {"vpc.nat-gateway.hour": {**ENTRY, "kind": "blog"}}},
            "prices.vpc.nat-gateway.hour.kind = 'blog' is invalid: must be one of provider, price-list-api,"
            " third-party, unconfirmed (fix: correct it from its source (every entry has usd, per, source, read and kind))",
        ),
        (
            {"hoursPerMonth": "730"},
            "hoursPerMonth = '730' is invalid: must be a number of hours from 672 to 744 (fix: 730, AWS's calculator)",
        ),
    ],
    ids=["no-prices", "negative", "not-a-number", "no-per", "unknown-kind", "hours-text"],
)
def test_a_bad_price_entry_is_one_line_naming_the_file_and_key(tmp_path, changes, message):
    path = table_file(tmp_path, json.dumps(document(**changes)))
    with pytest.raises(CostError) as raised:
        load_price_table("us-east-1", path)
    assert str(raised.value) == f"{path}: {message}"


def test_the_price_files_hours_per_month_is_the_month_every_hourly_price_is_multiplied_by():
    table = price_table_from_json(document(hoursPerMonth=744))
    nat = PlannedResource("aws:ec2/natGateway:NatGateway", "nat", {}, "c")
    (hours, _) = estimate("s", [nat], table).lines
    assert (hours.what, hours.quantity, round(hours.monthly, 4)) == ("NAT gateway", 744, round(744 * 0.045, 4))


def test_a_stack_is_priced_in_its_own_region_and_never_with_another_regions_table(
    tmp_path, monkeypatch, bad_stack, capsys
):
    monkeypatch.setattr(price_tables, "PRICES_DIR", tmp_path)
    code, _, err = bad_stack(capsys, {"aws:region": "eu-west-1"})
    assert code == 2
    assert last_line(err) == (
        f"error: no price table for eu-west-1: {tmp_path / 'eu-west-1.json'} does not exist"
        " (fix: python -m ops cost --refresh-prices --region eu-west-1 rebuilds it from the Price List API)"
    )
    (tmp_path / "eu-west-1.json").write_text(json.dumps(document()))  # us-east-1's, copied as the old advice said
    code, _, err = bad_stack(capsys, {"aws:region": "eu-west-1"})
    assert code == 2
    assert last_line(err) == (
        f"error: {tmp_path / 'eu-west-1.json'} holds us-east-1's prices, not eu-west-1's: its region is 'us-east-1'"
        " (fix: python -m ops cost --refresh-prices --region eu-west-1 rebuilds it from the Price List API;"
        " never copy another region's table)"
    )


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["--comment-body", "comment.md"],
            "error: --comment-body takes effect only with --compare"
            " (fix: add --compare HEAD.json BASE.json, or drop it)",
        ),
        (
            ["--region", "eu-west-1"],
            "error: --region takes effect only with --refresh-prices; an estimate is priced in its stack's own"
            " aws:region (fix: add --refresh-prices, or drop --region)",
        ),
        (
            ["--compare", "head.json", "base.json", "--json"],
            "error: --compare prints the pull-request comment only (fix: drop --refresh-prices and --json)",
        ),
        (
            ["--refresh-prices", "--json"],
            "error: --refresh-prices prints the keys it read, not an estimate (fix: drop --json)",
        ),
    ],
    ids=["comment-body", "region", "compare-json", "refresh-json"],
)
def test_an_option_that_would_be_ignored_is_a_usage_error(capsys, argv, message):
    code, out, err = run(capsys, "cost", *argv)
    assert (code, out, err) == (2, "", message + "\n")
