"""``python -m ops drift``: what changed outside the stack; the report is ``ops/live/drift.py``'s.

``pulumi preview --refresh --expect-no-changes --json`` reads every resource back (the dynamic
providers read the database through the stack's read-only function) and prints what an update
would change; then ``verify`` checks the database through that function too. Nothing here, nor
in the role the drift workflow assumes, can change the stack: a preview saves no state.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from components.config import PROJECT_ROOT
from ops.command import EXIT_DRIFT, EXIT_OK, EXIT_UNAVAILABLE, CommandFailed, UsageError
from ops.pulumi_cli import pulumi_reason, run_pulumi, stack_outputs
from ops.stack_target import OPERATOR_OUTPUT, READER_OUTPUT, stack_operation, stack_target

# pulumi's --expect-no-changes error, which it raises after printing the JSON (exit 7 in recent CLIs, 255 before)
NO_CHANGES_EXPECTED = "no changes were expected"


def _drift_preview(stack: str) -> dict[str, Any]:
    """The preview digest of ``stack`` after a refresh; a preview that fails is a CommandFailed."""
    from ops.live.drift import preview_failed

    command = ["preview", "--refresh", "--expect-no-changes", "--json", "--non-interactive", "--stack", stack]
    print(f"reading stack {stack} back: pulumi {' '.join(command)}", file=sys.stderr, flush=True)
    code, stdout, stderr = run_pulumi(command, PROJECT_ROOT)
    try:
        digest = json.loads(stdout)
    except ValueError:
        digest = None
    changes_proposed = any(NO_CHANGES_EXPECTED in line for line in stderr)
    if code != 0 and not (changes_proposed and isinstance(digest, dict)):
        reason = (preview_failed(digest) or [pulumi_reason(code, stdout, stderr)])[0]
        if "no stack named" in reason:
            raise UsageError(f"stack {stack!r} not found: {reason} (fix: `pulumi stack ls` lists the stacks)")
        raise CommandFailed(f"`pulumi preview --refresh --stack {stack}` failed, so drift is unknown: {reason}")
    if not isinstance(digest, dict):
        raise CommandFailed(f"`pulumi preview --json --stack {stack}` did not print a JSON object", EXIT_UNAVAILABLE)
    return digest


def _drift_checks(args: argparse.Namespace) -> tuple[list[tuple[str, str]], list[str]]:
    """The failed checks of ``verify`` (the master checklist, a read), run through the stack's
    read-only function and never through the operator that can change the database; and what
    was not checked. The application logins' checks are not run: they probe writes."""
    outputs = stack_outputs(args.stack)
    reader = outputs.get(READER_OUTPUT)
    notes = [
        f"the application logins' access checks (they probe writes; `python -m ops verify --stack {args.stack}` "
        "with deploy credentials runs them)"
    ]
    if outputs.get(OPERATOR_OUTPUT) and not reader:
        return [], [
            f"the database checks (verify): stack {args.stack!r} has no {READER_OUTPUT} output, and drift "
            f"detection does not use the operator that can change the database (fix: `pulumi up` with a "
            f"program that exports {READER_OUTPUT}; the refresh above still read the flags, seed, logins and schema)",
            *notes,
        ]
    # The reader takes the operator's place: nothing below can reach the function that writes.
    target = stack_target(args, {**outputs, OPERATOR_OUTPUT: reader} if reader else outputs)
    results = stack_operation(args, target, "verify", {"require_seed": False})["results"]
    return [(r["name"], r["detail"]) for r in results if not r["passed"]], notes


def cmd_drift(args: argparse.Namespace) -> int:
    from ops.live.drift import (
        DriftReport,
        drift_lines,
        drifted_resources,
        report_document,
        summary_line,
        unchanged_count,
    )

    digest = _drift_preview(args.stack)
    failed_checks, notes = _drift_checks(args)
    report = DriftReport(
        args.stack, tuple(drifted_resources(digest)), unchanged_count(digest), tuple(failed_checks), tuple(notes)
    )
    if args.json:
        print(json.dumps(report_document(report), indent=2, ensure_ascii=False))
    else:
        print("\n".join([*drift_lines(report), *(f"not checked: {note}" for note in notes), summary_line(report)]))
    if report.drifted:
        raise CommandFailed(
            f"{summary_line(report)} (fix: `pulumi up --stack {args.stack}` restores what it declares; or adopt the "
            f"change in Pulumi.{report.short_name}.yaml or the program)",
            EXIT_DRIFT,
        )
    return EXIT_OK
