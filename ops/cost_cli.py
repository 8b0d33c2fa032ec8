"""``python -m ops cost``: the subcommand's arguments and handler (``ops/cli.py`` registers it).

    python -m ops cost [--stack NAME] [--json]        a stack's monthly estimate from its plan
    python -m ops cost --compare HEAD.json BASE.json  the pull-request line: staging: $X/month (+$Y)
        [--comment-body FILE]                     ... set as the cost section of the comment in FILE
    python -m ops cost --refresh-prices [--region R]  rebuild the AWS prices from the Price List API

Failures are one line on stderr: 2 for bad arguments, stack settings or price tables, 1 when
the Price List API cannot be read (no credentials, no network).
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
from ops.cost import (
    CostError,
    comment_line,
    comment_with_cost,
    estimate_for_stack,
    money,
    price_table_path,
    render_text,
)


def _fail(message: str, code: int) -> int:
    print(f"error: {' '.join(message.split())}", file=sys.stderr)
    return code


def _read_estimate(path: str) -> dict[str, Any] | None:
    """A ``--json`` estimate, or None when there is none (main before this command existed)."""
    try:
        document = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) and "total" in document and "stack" in document else None


def cmd_cost(args: argparse.Namespace) -> int:
    if args.compare:
        head_path, base_path = args.compare
        head = _read_estimate(head_path)
        if head is None:
            return _fail(
                f"{head_path} is not an estimate (fix: python -m ops cost --stack NAME --json > {head_path})",
                EXIT_USAGE,
            )
        line = comment_line(head, _read_estimate(base_path))
        if args.comment_body:
            body = Path(args.comment_body).read_text() if Path(args.comment_body).is_file() else ""
            line = comment_with_cost(body, line).rstrip("\n")
        print(line)
        return 0
    if args.refresh_prices:
        try:
            region = args.region or _stack_region(args.stack)
        except ConfigError as error:  # the stack file is missing or unreadable: one line naming it
            return _fail(str(error), EXIT_USAGE)
        return refresh_prices(region)
    if not (PROJECT_ROOT / f"Pulumi.{args.stack}.yaml").is_file():
        return _fail(
            f"no stack config Pulumi.{args.stack}.yaml in {PROJECT_ROOT} (fix: --stack NAME of a Pulumi.NAME.yaml)",
            EXIT_USAGE,
        )
    try:
        estimate = estimate_for_stack(args.stack)
    except (ConfigError, CostError) as error:
        return _fail(str(error), EXIT_USAGE)
    print(json.dumps(estimate.to_json(), indent=2) if args.json else render_text(estimate))
    return 0


def cost_summary(stack: str, run: Any) -> str:
    """The line ``rehearse`` prints under the plan."""
    try:
        estimate = estimate_for_stack(stack, run)
    except (ConfigError, CostError) as error:
        return f"estimated cost: not available ({error})"
    missing = f", {len(estimate.no_price)} charges without a price" if estimate.no_price else ""
    return f"estimated cost: {money(estimate.total)}/month{missing} (python -m ops cost --stack {stack} lists it)"


def _stack_region(stack: str) -> str:
    from ops.mock_program import stack_config

    return stack_config(stack).get("aws:region", "us-east-1")


def refresh_prices(region: str) -> int:
    import boto3
    import botocore.exceptions

    from ops.aws_credentials import credentials_problem
    from ops.price_list import PRICING_REGION, refresh_table

    path = price_table_path(region)
    if not path.is_file():
        return _fail(
            f"no price table {path.name} to refresh (fix: copy ops/prices/us-east-1.json to {path.name})", EXIT_USAGE
        )
    try:
        client = boto3.client("pricing", region_name=PRICING_REGION)
        document, report = refresh_table(
            json.loads(path.read_text()), client, datetime.datetime.now(datetime.UTC).date()
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
    print(f"wrote {path.relative_to(PROJECT_ROOT)}")
    return 0


def add_cost_parser(commands: argparse._SubParsersAction) -> None:
    cost = commands.add_parser("cost", help="a stack's monthly cost from its plan (no cloud account)")
    cost.add_argument("--stack", default="staging", metavar="NAME", help="Pulumi.NAME.yaml (default: %(default)s)")
    cost.add_argument("--json", action="store_true", help="one JSON document (lines, subtotals, total, assumptions)")
    cost.add_argument("--compare", nargs=2, metavar=("HEAD.json", "BASE.json"), help="print the pull-request line")
    cost.add_argument(
        "--comment-body", metavar="FILE", help="with --compare: print FILE (a PR comment) with its cost section set"
    )
    cost.add_argument("--refresh-prices", action="store_true", help="rebuild the AWS prices from the Price List API")
    cost.add_argument("--region", help="the price table to refresh (default: the stack's aws:region)")
    cost.set_defaults(handler=cmd_cost)
