"""``python -m ops smoke``: the runbook's smoke, admin and latency checks (``ops/live/smoke.py``) against
the URLs given or the stack's outputs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict

from ops.command import EXIT_INTERRUPTED, EXIT_NOT_RESTORED, CommandFailed, UsageError, print_rows, verdict
from ops.live.smoke import ADMIN_TOKEN_ENV, API_TOKEN_ENV, Http, Limits, Undo, run_smoke, url_problem
from ops.pulumi_cli import stack_outputs

APP_URL_OUTPUTS = ("api_url", "site_url")
_URL_RULE = "is not an http:// or https:// URL with a host and no user or password"


def smoke_urls(args: argparse.Namespace) -> tuple[str, str]:
    """--api-url/--site-url, or the stack's api_url/site_url outputs; each checked before any request."""
    if args.stack and (args.api_url or args.site_url):
        raise UsageError("--stack and --api-url/--site-url are alternatives: give one")
    if not args.stack:
        if not (args.api_url and args.site_url):
            raise UsageError("give --api-url and --site-url, or --stack NAME to read them from the stack's outputs")
        for option, url, example in (
            ("--api-url", args.api_url, "https://d111.cloudfront.net/api"),
            ("--site-url", args.site_url, "https://d111.cloudfront.net/"),
        ):
            if shown := url_problem(url):
                raise UsageError(f"{option} {shown} {_URL_RULE} (fix: e.g. {option} {example})")
        return args.api_url, args.site_url
    outputs = stack_outputs(args.stack, "give --api-url and --site-url")
    missing = [name for name in APP_URL_OUTPUTS if not isinstance(outputs.get(name), str)]
    if missing:
        raise UsageError(
            f"stack {args.stack!r} has no {' or '.join(missing)} output (fix: configure swipesavvy:backend and "
            "swipesavvy:frontend and `pulumi up`, or give --api-url and --site-url)"
        )
    for name in APP_URL_OUTPUTS:
        if shown := url_problem(outputs[name]):
            raise UsageError(
                f"stack {args.stack!r} output {name} {shown} {_URL_RULE} (fix: `pulumi up` with this version of the "
                f"program, or give --{name.replace('_', '-')})"
            )
    return outputs["api_url"], outputs["site_url"]


def warn_of_token_options(args: argparse.Namespace) -> None:
    """Tokens given as options are readable in ``ps`` and kept in shell history: say so, once."""
    options = {"--token": (args.token, API_TOKEN_ENV), "--admin-token": (args.admin_token, ADMIN_TOKEN_ENV)}
    given = {option: env for option, (value, env) in options.items() if value}
    if given:
        print(
            f"warning: {' and '.join(given)} put tokens in ps and shell history "
            f"(fix: set {' and '.join(given.values())} instead)",
            file=sys.stderr,
            flush=True,
        )


def _token(value: str | None, env: str, option: str) -> str:
    token = value or os.environ.get(env)
    if not token:
        raise UsageError(f"{option} is required (or set {env})")
    return token


def _restored(undo: Undo) -> str:
    if left := undo.left_in_place():
        return f"NOT restored: {'; '.join(left)}"
    return "every admin change was restored"


def cmd_smoke(args: argparse.Namespace) -> int:
    if not args.timeout:
        raise UsageError("--timeout must be more than 0 seconds")
    warn_of_token_options(args)
    try:
        api_url, site_url = smoke_urls(args)
    except KeyboardInterrupt:
        raise CommandFailed("interrupted before any request: nothing was changed", EXIT_INTERRUPTED) from None
    http = Http(
        api_url,
        site_url,
        _token(args.token, API_TOKEN_ENV, "--token"),
        _token(args.admin_token, ADMIN_TOKEN_ENV, "--admin-token"),
        args.timeout,
    )
    undo = Undo(http)
    try:
        results = run_smoke(http, Limits(args.requests, args.concurrency, args.timeout), undo)
    except KeyboardInterrupt:  # the restores ran in run_smoke's finally, unless this interrupted them
        code = EXIT_NOT_RESTORED if undo.left_in_place() else EXIT_INTERRUPTED
        raise CommandFailed(f"interrupted: {_restored(undo)}", code) from None
    rows = [(r.name, r.passed, f"{r.figure:>7}  {r.detail}") for r in results]
    if args.json:
        passed = all(r.passed for r in results) and not undo.not_restored
        document = {"api_url": api_url, "site_url": site_url, "passed": passed, "not_restored": undo.not_restored}
        print(json.dumps({**document, "checks": [asdict(r) for r in results]}, indent=2))
    else:
        print_rows(rows)
    if undo.not_restored:
        raise CommandFailed(f"smoke left admin changes in place: {_restored(undo)}", EXIT_NOT_RESTORED)
    return verdict(rows, api_url, "smoke", quiet=args.json)
