"""``python -m ops rehearse``: the whole deployment on this machine; the steps are ``ops/rehearsal/rehearse.py``'s."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from components.config import PROJECT_ROOT, ConfigError, StackConfig, parse_stack_config
from ops.command import EXIT_INTERRUPTED, EXIT_UNAVAILABLE, CommandFailed, UsageError, print_rows, verdict
from ops.cost_cli import cost_summary
from ops.db_cli import seed_parameters
from ops.preflight_cli import mocked_preflight
from ops.rehearsal.local_postgres import ServerUnavailable, announced_scratch, terminate_on_sigterm
from ops.rehearsal.plan import architecture_dot, plan_dot, plan_groups, plan_lines
from ops.rehearsal.rehearse import (
    BackgroundProgram,
    Criterion,
    Rehearsal,
    phase_lines,
    rehearsal_steps,
    run_steps,
    start_database,
)


class _Progress:
    """Prints each step as it starts, and remembers it: an interrupt names what it stopped."""

    def __init__(self) -> None:
        self.doing = ""

    def __call__(self, index: int, total: int, text: str) -> None:
        self.doing = text
        print(f"[{index}/{total}] {text}..." if total else f"{text}...", file=sys.stderr, flush=True)


GRAPH_FORMATS = ("svg", "png", "pdf")


def _check_rehearse_arguments(args: argparse.Namespace) -> StackConfig:
    """Everything that can be refused before a server starts: the stack, its config, the tools."""
    config_file = PROJECT_ROOT / f"Pulumi.{args.stack}.yaml"
    if not config_file.is_file():
        raise UsageError(
            f"no stack config {config_file.name} in {PROJECT_ROOT} (fix: --stack NAME of a Pulumi.NAME.yaml)"
        )
    if args.graph:
        fmt = Path(args.graph).suffix.lstrip(".").lower()
        if fmt not in GRAPH_FORMATS:
            raise UsageError(f"--graph {args.graph}: the file must end in .{', .'.join(GRAPH_FORMATS)}")
        if not shutil.which("dot"):
            raise UsageError("--graph draws with Graphviz's dot, which is not on PATH (fix: ./install.sh installs it)")
    if not shutil.which("node"):
        raise UsageError(
            "rehearse runs the backend and the site with Node.js, which is not on PATH (fix: ./install.sh)"
        )
    raw = yaml.safe_load(config_file.read_text())["config"]
    try:
        config = parse_stack_config(
            args.stack, {k.split(":", 1)[1]: v for k, v in raw.items() if k.startswith("swipesavvy:")}
        )
    except ConfigError as error:
        raise UsageError(f"{config_file.name}: {error}") from None
    if config.backend is None or config.frontend is None:
        raise UsageError(
            f"{config_file.name} deploys no backend or no site: rehearse runs both (fix: set swipesavvy:backend"
            " and swipesavvy:frontend)"
        )
    return config


def cmd_rehearse(args: argparse.Namespace) -> int:
    params = seed_parameters(args)
    config = _check_rehearse_arguments(args)
    from ops.rehearsal.mock_program import run_program, stack_config  # Pulumi is imported only for this command

    terminate_on_sigterm()
    state = Rehearsal(config, announced_scratch("rehearse"))
    # The program under mocks takes longest (imports included) and needs nothing from the
    # database: it runs in a thread from the start, while PostgreSQL starts and phases 1-2 run.
    program = BackgroundProgram(lambda: run_program(stack_config(args.stack), stack=args.stack))
    progress = _Progress()
    try:
        progress(0, 0, "database: starting a throwaway PostgreSQL over TLS")
        started = time.perf_counter()
        try:
            detail = start_database(state)
        except ServerUnavailable as error:
            raise CommandFailed(f"cannot start the local PostgreSQL: {error}", EXIT_UNAVAILABLE) from None
        first = Criterion(1, "database", True, time.perf_counter() - started, detail)
        criteria = [first, *run_steps(rehearsal_steps(params, program), state, progress)]
    except KeyboardInterrupt:  # the program's thread is a daemon: the exit does not wait for it
        raise CommandFailed(
            f'interrupted during "{progress.doing}": this run\'s local PostgreSQL, processes and scratch directory were '
            "removed; nothing outside this machine was touched",
            EXIT_INTERRUPTED,
        ) from None
    except BaseException:
        program.finish()  # nothing of this run keeps running in this process
        raise
    finally:
        if state.statsd:
            state.statsd.close()
        state.scratch.close()
    program.finish()
    if state.program:
        print(f"plan for stack {args.stack} (under mocks, as `pulumi preview` would list the creates):")
        print("\n".join(plan_lines(plan_groups(state.program))))
        print(cost_summary(args.stack, state.program))
        print("\n".join(mocked_preflight(args.stack, state.program)))
        print()
        if args.graph:
            title = f"swipesavvy-{args.stack}: " + (
                "planned resources" if args.graph_detail == "resources" else "architecture"
            )
            dot = (
                plan_dot(state.program, title)
                if args.graph_detail == "resources"
                else architecture_dot(state.program, title)
            )
            _draw(dot, args.graph)
    print("runbook phases and success criteria:")
    rows = phase_lines(criteria)
    print_rows(rows)
    checks = [(c.name, c.passed, c.detail) for c in criteria]
    return verdict(checks, f"stack {args.stack}, all seven phases rehearsed on this machine", "rehearse")


def _draw(dot_source: str, path: str) -> None:
    """Render the DOT source with Graphviz into ``path`` (format from its extension)."""
    fmt = Path(path).suffix.lstrip(".").lower()
    try:
        subprocess.run(
            ["dot", f"-T{fmt}", "-o", path], input=dot_source, text=True, capture_output=True, check=True, timeout=120
        )
    except subprocess.CalledProcessError as error:
        reason = (error.stderr.strip().splitlines() or [f"exit code {error.returncode}"])[0]
        raise CommandFailed(f"cannot draw {path}: {reason}") from None
    print(f"plan drawn in {path}")
