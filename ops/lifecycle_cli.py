"""``python -m ops review-config`` and ``snapshots prune``: review stacks' settings and retained
snapshots (README "Review stacks"); the rules are ``ops/review.py``'s and ``ops/snapshots.py``'s.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import yaml

from components.config import NAMESPACE, PROJECT_ROOT, ConfigError, parse_stack_config, read_stack_file
from ops import review, snapshots
from ops.command import EXIT_OK, EXIT_REFUSED, EXIT_UNAVAILABLE, CommandFailed, UsageError

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
