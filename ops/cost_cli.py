"""``python -m ops cost``: the subcommand's arguments and handler (``ops/cli.py`` registers it).

    python -m ops cost [--stack NAME] [--json]        a stack's monthly estimate from its plan
    python -m ops cost --compare HEAD.json BASE.json  the pull-request comment: the totals' line,
        [--comment-body FILE]                     the per-resource difference, the budget verdict
                                                  ... set as the cost section of the comment in FILE
    python -m ops cost --refresh-prices [--stack NAME | --region R]
                                                  the AWS prices of a region's table (and every class
                                                  the stack uses) from the Price List API

Failures are one line on stderr: 2 for bad arguments, stack settings, usage files or price
tables; 3 when the Price List API cannot be reached or the AWS credentials are missing; 1 when
it refuses the request, and for ``--compare`` when the branch is over its budget (the comment
is printed first).
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path
from typing import Any

from components.config import PROJECT_ROOT, ConfigError
from ops.command import EXIT_FAILED, EXIT_UNAVAILABLE, EXIT_USAGE
from ops.cost.estimate import estimate_for_stack
from ops.cost.price_tables import CostError, PriceTable, check_region, price_table_path, read_table_document, shown
from ops.cost.report import comment_details, comment_line, comment_with_cost, money, render_text

DEFAULT_STACK = "staging"
TEMPLATE_REGION = "us-east-1"  # a new region's table starts from this one's keys


def _fail(message: str, code: int) -> int:
    print(f"error: {' '.join(message.split())}", file=sys.stderr)
    return code


def _read_estimate(path: str) -> dict[str, Any] | None:
    """A ``--json`` estimate, or None when there is none (main before this command existed)."""
    try:
        document = json.loads(Path(path).read_bytes().decode("utf-8"))
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) and "total" in document and "stack" in document else None


def _usage_error(args: argparse.Namespace) -> str | None:
    if args.comment_body and not args.compare:
        return "--comment-body takes effect only with --compare (fix: add --compare HEAD.json BASE.json, or drop it)"
    if args.region and not args.refresh_prices:
        return (
            "--region takes effect only with --refresh-prices; an estimate is priced in its stack's own aws:region"
            " (fix: add --refresh-prices, or drop --region)"
        )
    if args.compare and (args.refresh_prices or args.json):
        return "--compare prints the pull-request comment only (fix: drop --refresh-prices and --json)"
    if args.refresh_prices and args.json:
        return "--refresh-prices prints the keys it read, not an estimate (fix: drop --json)"
    return None


def cmd_cost(args: argparse.Namespace) -> int:
    if problem := _usage_error(args):
        return _fail(problem, EXIT_USAGE)
    if args.compare:
        return compare(*args.compare, args.comment_body)
    stack = args.stack or DEFAULT_STACK
    try:
        if args.refresh_prices:  # --region alone: that table's keys; else the stack's region and classes too
            return refresh_prices(args.region, None if args.region and not args.stack else stack)
        if not (PROJECT_ROOT / f"Pulumi.{stack}.yaml").is_file():
            return _fail(
                f"no stack config Pulumi.{stack}.yaml in {PROJECT_ROOT} (fix: --stack NAME of a Pulumi.NAME.yaml)",
                EXIT_USAGE,
            )
        estimate = estimate_for_stack(stack)
    except (ConfigError, CostError) as error:
        return _fail(str(error), EXIT_USAGE)
    print(json.dumps(estimate.to_json(), indent=2) if args.json else render_text(estimate))
    return 0


def compare(head_path: str, base_path: str, comment_body: str | None) -> int:
    head = _read_estimate(head_path)
    if head is None:
        return _fail(
            f"{head_path} is not an estimate (fix: python -m ops cost --stack NAME --json > {head_path})", EXIT_USAGE
        )
    base = _read_estimate(base_path)
    line = comment_line(head, base)
    over, details = comment_details(head, base)
    if comment_body:
        path = Path(comment_body)
        body = path.read_bytes().decode("utf-8", errors="replace") if path.is_file() else ""
        print(comment_with_cost(body, line, details).rstrip("\n"))
    else:
        print(f"{line}\n\n{details}" if details else line)
    return EXIT_FAILED if over else 0


def cost_summary(stack: str, run: Any) -> str:
    """The line ``rehearse`` prints under the plan."""
    try:
        estimate = estimate_for_stack(stack, run)
    except (ConfigError, CostError) as error:
        return f"estimated cost: not available ({error})"
    missing = f", {len(estimate.no_price)} charges without a price" if estimate.no_price else ""
    return f"estimated cost: {money(estimate.total)}/month{missing} (python -m ops cost --stack {stack} lists it)"


def _stack_plan_keys(stack: str | None, region: str) -> list[str]:
    """The price keys the stack's plan uses, when it is in ``region`` (else none)."""
    from ops.rehearsal.mock_program import stack_config

    if stack is None or stack_config(stack).get("aws:region", TEMPLATE_REGION) != region:
        return []
    empty = PriceTable(region, {})
    return sorted({line.price_key for line in estimate_for_stack(stack, table=empty).lines if line.price_key})


def refresh_prices(region: str | None, stack: str | None) -> int:
    """Rebuild the AWS prices of ``region``'s table (``region`` None: the stack's), adding every
    price key ``stack``'s plan uses."""
    import boto3
    import botocore.exceptions

    from dbops.aws_credentials import credentials_problem
    from ops.cost.price_list import PRICING_REGION, new_table, refresh_table

    if region is None:
        from ops.rehearsal.mock_program import stack_config

        where = f"Pulumi.{stack}.yaml: aws:region"
        region = check_region(stack_config(stack).get("aws:region", TEMPLATE_REGION), where, "--region us-east-1")
    region = check_region(region, "--region", "--region us-east-1")
    path = price_table_path(region)
    if path.is_file():
        document = read_table_document(path, region)
        if document.get("region") != region:  # refreshing it would write another region's prices here
            return _fail(
                f"{shown(path)} holds {document.get('region')}'s prices, not {region}'s (fix: delete it;"
                f" python -m ops cost --refresh-prices --region {region} then builds {region}'s)",
                EXIT_USAGE,
            )
    else:
        document = new_table(read_table_document(price_table_path(TEMPLATE_REGION), TEMPLATE_REGION), region)
    keys = _stack_plan_keys(stack, region)
    endpoint = f"https://api.pricing.{PRICING_REGION}.amazonaws.com"
    try:
        client = boto3.client("pricing", region_name=PRICING_REGION)
        document, report = refresh_table(document, client, datetime.datetime.now(datetime.UTC).date(), keys)
    except botocore.exceptions.ConnectionError as error:  # no network, a proxy, DNS: not the credentials
        return _fail(
            f"cannot reach the AWS Price List API at {endpoint}: {error} (fix: check the network, a proxy"
            " (HTTPS_PROXY) or DNS; nothing was written)",
            EXIT_UNAVAILABLE,
        )
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
        if problem := credentials_problem(error):
            return _fail(f"cannot read the AWS Price List API: {problem}", EXIT_UNAVAILABLE)
        return _fail(
            f"cannot read the AWS Price List API: {error} (fix: AWS credentials allowed pricing:GetProducts)",
            EXIT_FAILED,
        )
    path.write_text(json.dumps(document, indent=2) + "\n")
    print("\n".join(report))
    print(f"wrote {shown(path)}")
    return 0


def add_cost_parser(commands: argparse._SubParsersAction) -> None:
    cost = commands.add_parser("cost", help="a stack's monthly cost from its plan (no cloud account)")
    cost.add_argument("--stack", metavar="NAME", help=f"Pulumi.NAME.yaml (default: {DEFAULT_STACK})")
    cost.add_argument("--json", action="store_true", help="one JSON document (lines, subtotals, total, assumptions)")
    cost.add_argument(
        "--compare", nargs=2, metavar=("HEAD.json", "BASE.json"),
        help="print the pull-request comment: the line, the per-resource difference, the budget verdict (exit 1 over it)",
    )  # fmt: skip
    cost.add_argument(
        "--comment-body", metavar="FILE", help="with --compare: print FILE (a PR comment) with its cost section set"
    )
    cost.add_argument(
        "--refresh-prices", action="store_true",
        help="the AWS prices of the stack's region (every class it uses too) from the Price List API",
    )  # fmt: skip
    cost.add_argument("--region", help="with --refresh-prices: the region whose table to refresh or build")
    cost.set_defaults(handler=cmd_cost)
