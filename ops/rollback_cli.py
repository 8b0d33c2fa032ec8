"""``python -m ops rollback``: the stack's history, a worktree at the chosen update's commit, its
preview and ``pulumi up``; the decisions are ``ops/live/rollback.py``'s, the ``pulumi`` runs
``ops/pulumi_cli.py``'s.

The recorded config goes to a ``--config-file`` beside the worktree, not into it: the worktree stays
exactly the commit, so the rollback's own update records that commit as clean and is itself a
version a later rollback can return to. The one exception is ``sql/``: the schema is forward-only,
so the worktree gets this checkout's migrations (``keep_current_schema``); the earlier program then
sees the database's ledger as its own and changes no schema, and the update is recorded as dirty.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from components.config import PROJECT_ROOT
from ops.command import EXIT_INTERRUPTED, EXIT_OK, EXIT_REFUSED, EXIT_UNAVAILABLE, CommandFailed, UsageError
from ops.pulumi_cli import pulumi_command

SCHEMA_DIR = "sql"  # the migrations (dbops/migrations.py MIGRATIONS_DIR), relative to the project


def _git(repo: Path, *command: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(repo), *command], capture_output=True, text=True, check=False)


def stack_history(stack: str) -> list[dict[str, Any]]:
    """``pulumi stack history --json`` of ``stack``, secrets left masked."""
    command = ["stack", "history", "--json", "--show-secrets=false", "--non-interactive", "--stack", stack]
    try:
        text = pulumi_command(command, PROJECT_ROOT, f"`pulumi stack history --stack {stack}`")
    except UsageError:
        raise
    except CommandFailed as error:
        if "no stack named" in str(error):
            raise UsageError(f"{error} (fix: `pulumi stack ls` lists the stacks)") from None
        raise CommandFailed(str(error), EXIT_UNAVAILABLE) from None
    from ops.live.rollback import HistoryUnreadable, parse_history

    try:
        return parse_history(json.loads(text))
    except (ValueError, RecursionError) as error:  # not JSON at all, or HistoryUnreadable
        problem = str(error) if isinstance(error, HistoryUnreadable) else "it is not JSON"
        raise CommandFailed(
            f"`pulumi stack history --json --stack {stack}` printed a history this command cannot read: {problem} "
            "(fix: `pulumi version` should be 3.x; redeploy by hand as docs/operations.md 'Rolling back' says)",
            EXIT_UNAVAILABLE,
        ) from None


@contextmanager
def commit_worktree(repo: Path, commit: str) -> Iterator[Path]:
    """A detached git worktree of ``repo`` at ``commit`` in a temporary directory, removed on the way out."""
    with tempfile.TemporaryDirectory(prefix="swipesavvy-rollback-") as directory:
        tree = Path(directory) / "tree"
        added = _git(repo, "worktree", "add", "--detach", str(tree), commit)
        if added.returncode != 0:
            reason = (added.stderr.strip().splitlines() or [f"exit code {added.returncode}"])[-1]
            raise CommandFailed(f"cannot create a worktree at {commit[:12]}: {reason}")
        try:
            yield tree
        finally:
            _git(repo, "worktree", "remove", "--force", str(tree))
            _git(repo, "worktree", "prune")


def keep_current_schema(tree_project: Path, current_project: Path) -> list[str]:
    """Replace the worktree's ``sql/`` with this checkout's: migrations are never undone, and an
    earlier program whose ``sql/`` lacks one the database applied would refuse its preview
    ("... was applied but is missing from sql/"). The names of the files that differ from the
    commit's (the migrations newer than it); nothing is changed when there are none."""
    current, tree = current_project / SCHEMA_DIR, tree_project / SCHEMA_DIR
    if not current.is_dir():
        return []
    differing = sorted(
        path.name
        for path in current.glob("*.sql")
        if not (tree / path.name).is_file() or (tree / path.name).read_bytes() != path.read_bytes()
    )
    if differing:
        shutil.rmtree(tree, ignore_errors=True)
        shutil.copytree(current, tree)
    return differing


def _confirmed(prompt: str) -> bool:
    print(prompt, end="", flush=True)
    answer = sys.stdin.readline()
    return answer.strip().lower() in ("y", "yes")


def cmd_rollback(args: argparse.Namespace) -> int:
    try:
        return _rollback(args)
    except KeyboardInterrupt:  # one during `pulumi up` is answered there
        raise CommandFailed("interrupted before `pulumi up`: nothing was deployed", EXIT_INTERRUPTED) from None


def _rollback(args: argparse.Namespace) -> int:
    import yaml  # only this command reads stack settings files

    from ops.live.rollback import (
        RollbackRefused,
        config_lines,
        history_rows,
        keep_counters,
        newest_config,
        plan_rollback,
        rollback_settings,
    )

    if not args.yes and not sys.stdin.isatty():
        raise UsageError(
            "rollback asks for confirmation on a terminal and there is none "
            "(fix: run it in a terminal, or pass --yes, as CI does, once the preview has been read)"
        )
    history = stack_history(args.stack)
    print(f"stack {args.stack}: updates, newest first (version, started, result, git commit)")
    print("\n".join(history_rows(history)) or "  (none)")
    try:
        plan = plan_rollback(history, args.stack, args.to)
    except RollbackRefused as error:
        raise CommandFailed(str(error), EXIT_REFUSED) from None
    print(f"\nrolling back to version {plan.version}: started {plan.started}, {plan.result}, commit {plan.commit}")
    print(f"  message: {plan.message}" if plan.message else "  (no message)")
    print("config recorded for that update:")
    print("\n".join(config_lines(plan.config)) or "  (none)")

    top = _git(PROJECT_ROOT, "rev-parse", "--show-toplevel")
    if top.returncode != 0:
        raise UsageError(f"{PROJECT_ROOT} is not in a git repository (fix: run rollback from a clone of the project)")
    repo = Path(top.stdout.strip())
    if _git(repo, "cat-file", "-e", f"{plan.commit}^{{commit}}").returncode != 0:
        raise CommandFailed(
            f"--to {plan.version}: commit {plan.commit[:12]} is not in the repository at {repo} "
            f"(fix: git fetch --all, or choose another version with --to)",
            EXIT_REFUSED,
        )
    with commit_worktree(repo, plan.commit) as tree:
        project = tree / PROJECT_ROOT.resolve().relative_to(repo.resolve())
        committed_file = project / f"Pulumi.{args.stack}.yaml"
        try:
            committed = yaml.safe_load(committed_file.read_text()) if committed_file.is_file() else {}
        except yaml.YAMLError as error:
            raise CommandFailed(
                f"--to {plan.version}: {committed_file.name} at {plan.commit[:12]} is not valid YAML "
                f"({' '.join(str(error).split())[:120]}), so its secrets cannot be recovered "
                "(fix: choose another version with --to)",
                EXIT_REFUSED,
            ) from None
        try:
            settings = rollback_settings(plan, committed, args.stack)
        except RollbackRefused as error:
            raise CommandFailed(str(error), EXIT_REFUSED) from None
        for change in keep_counters(settings["config"], newest_config(history)):
            print(f"keeping the rotation counter at the stack's newest value: {change} (it never goes back)")
        newer = keep_current_schema(project, PROJECT_ROOT)
        kept = ""
        if newer:
            head = _git(repo, "rev-parse", "--short=12", "HEAD").stdout.strip() or "this checkout"
            kept = f"; sql/ kept from {head}"
            print(
                f"\nkeeping the schema: sql/ as in this checkout ({head}), {len(newer)} migration file(s) newer than"
                f" {plan.commit[:12]}: {', '.join(newer)}; migrations are forward-only, so the rollback restores the"
                " application and its config and leaves the database's schema as it is"
            )
        config_file = tree.parent / f"Pulumi.{args.stack}.yaml"
        config_file.write_text(yaml.safe_dump(settings, sort_keys=False))
        common = ["--non-interactive", "--stack", args.stack, "--cwd", str(project), "--config-file", str(config_file)]
        if (project / "policy" / "PulumiPolicy.yaml").is_file():
            common += ["--policy-pack", str(project / "policy")]
        print(f"\ninstalling the program's dependencies at {plan.commit[:12]} (pulumi install)...", flush=True)
        pulumi_command(["install", "--cwd", str(project)], project, f"`pulumi install` at {plan.commit[:12]}")
        print(f"preview of version {plan.version} (commit {plan.commit[:12]}) on stack {args.stack}:", flush=True)
        pulumi_command(
            ["preview", *common],
            project,
            f"the preview of version {plan.version}",
            True,
            "; nothing was deployed (fix: the preview's output above says why; choose another version with --to)",
        )
        if not args.yes and not _confirmed(f"deploy this to stack {args.stack}? [y/N] "):
            raise CommandFailed(
                f"rollback of stack {args.stack!r} to version {plan.version} declined; nothing was deployed "
                "(fix: rerun and answer y once the preview is what you want)",
                EXIT_REFUSED,
            )
        message = f"rollback to version {plan.version} (commit {plan.commit[:12]}{kept})"
        try:
            pulumi_command(
                ["up", "--yes", "--skip-preview", "--message", message, *common],
                project,
                f"`pulumi up` of version {plan.version}",
                True,
                "; the stack may be partly updated (fix: `pulumi stack history` shows it; rerun the rollback, "
                "or fix forward)",
            )
        except KeyboardInterrupt:
            raise CommandFailed(
                f"interrupted during `pulumi up` of version {plan.version}: the stack may be partly updated "
                f"(fix: `pulumi stack history --stack {args.stack}` shows the update; `pulumi cancel --stack "
                f"{args.stack}` if it is still marked in progress; rerun the rollback, or fix forward)",
                EXIT_INTERRUPTED,
            ) from None
    print(f"stack {args.stack} rolled back to version {plan.version} (commit {plan.commit[:12]})")
    return EXIT_OK
