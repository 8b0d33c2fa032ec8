"""``python -m ops review-config``, ``review-orphans``, ``snapshots prune`` and ``pending``: review
stacks' settings and their orphans, retained snapshots (docs/operations.md "Review stacks") and an
interrupted update's pending creates (docs/operations.md "Interrupted updates"); the rules are
``ops/live/review.py``'s, ``ops/live/orphans.py``'s, ``ops/live/snapshots.py``'s and ``ops/live/pending_creates.py``'s.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from components.config import NAMESPACE, PROJECT_ROOT, ConfigError, parse_stack_config, read_stack_file
from ops.command import EXIT_FAILED, EXIT_OK, EXIT_REFUSED, EXIT_UNAVAILABLE, CommandFailed, UsageError, bounded_int
from ops.live import orphans, pending_creates, review, snapshots
from ops.pulumi_cli import pulumi_command

OUTPUTS_FIX = "pulumi stack output --stack staging --json > FILE"


def _staging_settings() -> dict:
    """Staging's settings, refused unless they are what staging itself deploys: a review
    stack copies them, and a value of the wrong type would otherwise surface as a traceback."""
    path = PROJECT_ROOT / "Pulumi.staging.yaml"
    try:
        staging = read_stack_file(path)  # its errors name the file
    except ConfigError as error:
        raise UsageError(str(error)) from None
    try:
        region = staging.get("aws:region")
        if region is not None and not isinstance(region, str):
            raise ConfigError(
                f"aws:region = {region!r} is not a region name (fix: pulumi config set --stack staging aws:region "
                "us-east-1)"
            )
        settings = {key.partition(":")[2]: v for key, v in staging.items() if key.startswith(f"{NAMESPACE}:")}
        parse_stack_config("staging", settings, region=region)
    except ConfigError as error:
        raise UsageError(f"{path.name}: {error}") from None
    return staging


def _staging_outputs(name: str) -> dict:
    """``--staging-outputs``: a JSON object, as ``pulumi stack output --json`` prints it."""
    try:
        raw = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
    except OSError as error:
        raise UsageError(f"--staging-outputs {name}: {error.strerror}") from None
    try:
        outputs = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise UsageError(
            f"--staging-outputs {name} is not UTF-8 text (byte {error.start}) (fix: {OUTPUTS_FIX})"
        ) from None
    except json.JSONDecodeError:
        raise UsageError(f"--staging-outputs {name} is not JSON (fix: {OUTPUTS_FIX})") from None
    if not isinstance(outputs, dict):
        raise UsageError(
            f"--staging-outputs {name} holds a JSON {type(outputs).__name__}, not staging's outputs by name "
            f"(fix: {OUTPUTS_FIX})"
        )
    return outputs


def cmd_review_config(args: argparse.Namespace) -> int:
    staging = _staging_settings()
    outputs = _staging_outputs(args.staging_outputs)
    try:
        keys = all(os.environ.get(name) for name in review.DATADOG_KEY_ENV)
        config = review.review_config(staging, outputs, args.pr, datadog_keys=keys)
        stack = review.review_stack_name(args.pr)
        settings = {key.partition(":")[2]: v for key, v in config.items() if key.startswith(f"{NAMESPACE}:")}
        parse_stack_config(stack, settings, region=config.get("aws:region"))
    except (review.ReviewConfigError, ConfigError) as error:
        raise CommandFailed(str(error)) from None
    target = Path(args.output) if args.output else PROJECT_ROOT / f"Pulumi.{stack}.yaml"
    target.write_text(review.header(args.pr) + yaml.safe_dump({"config": config}, sort_keys=False))
    monitored = "on (keys from DD_API_KEY, DD_APP_KEY)" if config[f"{NAMESPACE}:monitoring"].get("enabled") else "off"
    print(f"wrote {target.name} for stack {stack}: staging's network {outputs['vpc_id']}, monitoring {monitored}")
    return EXIT_OK


def cmd_snapshots_prune(args: argparse.Namespace) -> int:
    import boto3
    import botocore.exceptions

    try:
        rds = boto3.client("rds", region_name=args.region)
        kept, doomed = snapshots.prune(rds, args.stack, args.keep, delete=args.yes)
    except snapshots.SnapshotRefused as error:
        raise CommandFailed(str(error), EXIT_REFUSED) from None
    except botocore.exceptions.NoRegionError:
        raise UsageError("no AWS region (fix: --region us-east-1, or AWS_REGION)") from None
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
        raise CommandFailed(f"RDS: {error}", EXIT_UNAVAILABLE) from None
    verb = "deleted" if args.yes else "would delete"
    for snapshot in doomed:
        print(f"{verb} {snapshot.identifier} ({snapshot.kind}, {snapshot.created:%Y-%m-%d %H:%M})")
    print(f"{args.stack}: kept {len(kept)}, {verb} {len(doomed)} (newest {args.keep} of each kind kept)")
    if doomed and not args.yes:
        print("run again with --yes to delete them")
    return EXIT_OK


def cmd_pending(args: argparse.Namespace) -> int:
    """Read-only: ``pulumi stack export`` and what to do about each pending create; exit 1 when any."""
    exported = pulumi_command(["stack", "export", "--stack", args.stack], PROJECT_ROOT, "`pulumi stack export`")
    try:
        document = json.loads(exported)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        raise CommandFailed(f"`pulumi stack export --stack {args.stack}` did not print a JSON object", EXIT_UNAVAILABLE)
    pending = pending_creates.pending_creates(document)
    print("\n".join(pending_creates.recovery_lines(args.stack, pending)))
    return EXIT_FAILED if pending else EXIT_OK


GH_TIMEOUT_S = 60


def _pull_request_state(pr: int) -> str | None:
    """``gh pr view N --json state``: OPEN, CLOSED or MERGED; None when gh could not say."""
    command = ["gh", "pr", "view", str(pr), "--json", "state", "--jq", ".state"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=GH_TIMEOUT_S, check=False)
    except FileNotFoundError:
        raise UsageError("review-orphans reads pull requests with gh, which is not on PATH") from None
    except subprocess.TimeoutExpired:
        return None
    state = done.stdout.strip() if done.returncode == 0 else ""
    return state or None


def cmd_review_orphans(args: argparse.Namespace) -> int:
    """Print (stdout, JSON) the pull requests whose review stacks to destroy; a line per stack on stderr."""
    try:
        stacks = json.loads(Path(args.stacks).read_text())
    except OSError as error:
        raise UsageError(f"--stacks {args.stacks}: {error.strerror}") from None
    except ValueError:
        stacks = None
    if not isinstance(stacks, list):
        raise UsageError(f"--stacks {args.stacks} is not a JSON list (fix: pulumi stack ls --json >{args.stacks})")
    prs = orphans.review_stack_prs(stack for stack in stacks if isinstance(stack, dict))
    states = {pr: _pull_request_state(pr) for pr in prs}
    for line in orphans.decision_lines(prs, states):
        print(line, file=sys.stderr)
    print(json.dumps(orphans.orphaned(prs, states)))
    return EXIT_OK


def add_snapshots_parser(commands: argparse._SubParsersAction) -> None:
    snapshot_commands = commands.add_parser("snapshots", help="a stack's retained RDS snapshots").add_subparsers(
        dest="snapshots_command", required=True, metavar="SNAPSHOTS_COMMAND"
    )
    prune = snapshot_commands.add_parser(
        "prune", help="delete a stack's retained snapshots but the newest of each kind (never production's)"
    )
    prune.add_argument("--stack", required=True, metavar="NAME", help="the stack whose snapshots to prune")
    prune.add_argument(
        "--keep",
        type=bounded_int(0, 100),
        default=snapshots.DEFAULT_KEEP,
        metavar="N",
        help="how many of each kind stay (default: %(default)s; 0 only for a review stack pr-N)",
    )
    prune.add_argument("--region", metavar="REGION", help="the stack's region (default: the AWS environment's)")
    prune.add_argument("--yes", action="store_true", help="delete them (without it: only list them)")
    prune.set_defaults(handler=cmd_snapshots_prune)


def add_review_orphans_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "review-orphans",
        help="the pull requests whose pr-N stacks outlived them (closed or merged), as JSON; read-only",
    )
    parser.add_argument("--stacks", required=True, metavar="FILE", help="pulumi stack ls --json, saved")
    parser.set_defaults(handler=cmd_review_orphans)
