"""``python -m ops preflight``: the subcommand's arguments and handler (``ops/cli.py`` registers it).

    python -m ops preflight --stack NAME [--region R] [--json]

Counts what the stack's first ``up`` creates (its program under mocks, no cloud call) and reads
what the account allows with the deploying credentials, read-only (ops/live/preflight_aws.py). One
line per item; exit 0 when the account takes the stack, 1 (EXIT_FAILED) when the first ``up``
would fail, 3 (EXIT_UNAVAILABLE) when the account could not be read (no credentials, or a
permission missing: the item's line names it), 2 for a stack file that is missing or invalid.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
from typing import Any

from components.config import PROJECT_ROOT, ConfigError
from ops.command import EXIT_FAILED, EXIT_OK, EXIT_UNAVAILABLE, UsageError
from ops.live.preflight import FAIL, PASS, UNREAD, AccountFacts, Item, StackNeeds, check, verdict
from ops.live.preflight_aws import Clients, boto3_clients, read_account

EXIT_CODES = {PASS: EXIT_OK, FAIL: EXIT_FAILED, UNREAD: EXIT_UNAVAILABLE}


def stack_needs(stack: str, region: str | None = None) -> StackNeeds:
    """What ``Pulumi.<stack>.yaml``'s program creates, counted under mocks."""
    from ops.rehearsal.mock_program import run_program, stack_config

    if not (PROJECT_ROOT / f"Pulumi.{stack}.yaml").is_file():
        raise UsageError(
            f"no stack config Pulumi.{stack}.yaml in {PROJECT_ROOT} (fix: --stack NAME of a Pulumi.NAME.yaml)"
        )
    config = stack_config(stack)
    if region:
        config["aws:region"] = region
    try:
        # The program's own warnings (an unpinned AMI...) are the preview's to show, not preflight's.
        with contextlib.redirect_stderr(io.StringIO()):
            run = run_program(config, stack=stack)
    except ConfigError as error:
        raise UsageError(str(error)) from None
    return StackNeeds.from_run(stack, config, run)


def summary(needs: StackNeeds, items: list[Item]) -> str:
    outcome = verdict(items)
    names = ", ".join(item.name for item in items if item.status == outcome)
    if outcome == FAIL:
        return f"the first pulumi up of stack {needs.stack} would fail: {names}"
    if outcome == UNREAD:
        return f"could not read what stack {needs.stack} needs: {names}"
    return f"account takes stack {needs.stack}: all {len(items)} items pass"


def run_preflight(needs: StackNeeds, as_json: bool, clients: Clients = boto3_clients) -> int:
    facts: AccountFacts = read_account(needs, clients)
    items = check(needs, facts)
    if as_json:
        document = {
            "stack": needs.stack,
            "region": needs.region,
            "account": facts.account,
            "verdict": verdict(items),
            "items": [{**vars(item), "fix": item.fix if item.status == FAIL else ""} for item in items],
        }
        print(json.dumps(document, indent=2))
    else:
        print("\n".join(item.line() for item in items))
        print(summary(needs, items), file=sys.stderr if verdict(items) != PASS else sys.stdout)
    return EXIT_CODES[verdict(items)]


def mocked_preflight(stack: str, run: Any) -> list[str]:
    """The plan's preflight against a mocked new account (ops/rehearsal/preflight_mock.py): what
    ``python -m ops rehearse`` shows under the plan."""
    from ops.rehearsal.mock_program import stack_config
    from ops.rehearsal.preflight_mock import NEW_ACCOUNT

    needs = StackNeeds.from_run(stack, stack_config(stack), run)
    clients, _ = NEW_ACCOUNT.clients(needs)
    items = check(needs, read_account(needs, clients))
    heading = (
        f"preflight against a mocked new account (Lambda concurrency {NEW_ACCOUNT.concurrency};"
        f" python -m ops preflight --stack {stack} reads the real one):"
    )
    return [heading, *(item.line() for item in items), summary(needs, items)]


def cmd_preflight(args: argparse.Namespace) -> int:
    return run_preflight(stack_needs(args.stack, args.region), args.json)


def add_preflight_parser(commands: argparse._SubParsersAction) -> None:
    preflight = commands.add_parser(
        "preflight",
        help="will this AWS account take this stack? its first up's needs against the account's quotas, read-only",
    )
    preflight.add_argument("--stack", required=True, metavar="NAME", help="Pulumi.NAME.yaml")
    preflight.add_argument("--region", help="the account's region to read (default: the stack's aws:region)")
    preflight.add_argument("--json", action="store_true", help="one JSON document (for CI)")
    preflight.set_defaults(handler=cmd_preflight)
