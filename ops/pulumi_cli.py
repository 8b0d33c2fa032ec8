"""The Pulumi CLI as the operator commands run it: a stack's outputs for ``--stack``, and any
``pulumi`` command with its output streamed and its one ``error:`` line as the failure
(``rollback``, ``drift``).
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any

from components.config import PROJECT_ROOT
from ops.command import EXIT_UNAVAILABLE, CommandFailed, UsageError

PULUMI_TIMEOUT_S = 120


def pulumi_not_on_path(what: str, alternative: str = "") -> UsageError:
    """The one answer, everywhere, to a missing Pulumi CLI: exit 2, like any missing prerequisite."""
    return UsageError(
        f"{what} the Pulumi CLI, which is not on PATH "
        f"(fix: install it, https://www.pulumi.com/docs/install/{f', or {alternative}' if alternative else ''})"
    )


def stack_outputs(stack: str, alternative: str = "use --dsn") -> dict[str, Any]:
    """``pulumi stack output --json`` of ``stack`` (secrets left masked: none is needed)."""
    command = ["pulumi", "stack", "output", "--json", "--show-secrets=false", "--stack", stack]
    try:
        done = subprocess.run(
            command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=PULUMI_TIMEOUT_S, check=False
        )
    except FileNotFoundError:
        raise pulumi_not_on_path("--stack reads the stack's outputs with", alternative) from None
    except subprocess.TimeoutExpired:
        raise CommandFailed(
            f"`pulumi stack output --stack {stack}` did not answer within {PULUMI_TIMEOUT_S} s "
            "(fix: check the backend with `pulumi whoami`)",
            EXIT_UNAVAILABLE,
        ) from None
    if done.returncode != 0:
        lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
        reason = next((line for line in lines if line.startswith("error:")), lines[-1] if lines else "")
        reason = reason.removeprefix("error:").strip() or f"exit code {done.returncode}"
        if "no stack named" in reason:
            raise UsageError(f"stack {stack!r} not found: {reason} (fix: `pulumi stack ls` lists the stacks)")
        raise CommandFailed(f"cannot read the outputs of stack {stack!r}: {reason}", EXIT_UNAVAILABLE)
    try:
        outputs = json.loads(done.stdout)
    except ValueError:
        outputs = None
    if not isinstance(outputs, dict):
        raise CommandFailed(
            f"`pulumi stack output --json --stack {stack}` did not print a JSON object", EXIT_UNAVAILABLE
        )
    return outputs


# The Pulumi CLI is called directly rather than through the Automation API (``pulumi.automation``),
# with the same commands it runs (``stack history --json``, ``preview``, ``up --yes --skip-preview``):
# - ``Stack.preview()`` fails unless the engine's summary event arrives over ``--event-log``, which
#   from CLI 3.206 on is a gRPC Events service the SDK starts; a fake ``pulumi`` for the tests would
#   have to speak that protocol, or claim an older version so the tests take a path production does not;
# - ``LocalWorkspace`` selects the stack (``pulumi stack select``), changing the operator's current
#   stack as a side effect, and ``Stack.up()`` follows with ``stack output --show-secrets``,
#   decrypting every secret output, which a rollback does not need.


def run_pulumi(command: list[str], cwd: Path, stream: bool = False) -> tuple[int, str, list[str]]:
    """Run ``pulumi COMMAND`` in ``cwd``: its exit code, stdout (also printed as it comes when
    ``stream``) and stderr lines."""
    try:
        # Its own session: Ctrl-C reaches this command only, which hands pulumi exactly one SIGINT
        # (its graceful cancel; a second one would make it stop at once, mid-operation).
        process = subprocess.Popen(
            ["pulumi", *command],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
    except FileNotFoundError:
        raise pulumi_not_on_path("this command runs") from None
    stderr: list[str] = []
    reader = threading.Thread(target=lambda: stderr.extend(process.stderr), daemon=True)
    reader.start()
    stdout = []
    try:
        for line in process.stdout:
            stdout.append(line)
            if stream:
                print(line, end="", flush=True)
        code = process.wait()
    except KeyboardInterrupt:
        process.send_signal(signal.SIGINT)
        process.wait()  # pulumi ends its operations and the update before its worktree goes
        raise
    reader.join()
    return code, "".join(stdout), stderr


def pulumi_reason(code: int, stdout: str, stderr: list[str]) -> str:
    """Pulumi's own ``error:`` line (stderr first), else its last line, else the exit code."""
    lines = [line.strip() for line in [*stderr, *stdout.splitlines()] if line.strip()]
    reason = next((line for line in lines if line.lower().startswith("error:")), lines[-1] if lines else "")
    reason = reason.split(":", 1)[1].strip() if reason.lower().startswith("error:") else reason
    return reason or f"exit code {code}"


def pulumi_command(command: list[str], cwd: Path, what: str, stream: bool = False, after: str = "") -> str:
    """Run ``pulumi COMMAND`` in ``cwd``; its stdout (also printed as it comes when ``stream``).
    A failure is a CommandFailed: ``what`` failed, pulumi's own ``error:`` line, then ``after``."""
    code, stdout, stderr = run_pulumi(command, cwd, stream)
    if code != 0:
        raise CommandFailed(f"{what} failed: {pulumi_reason(code, stdout, stderr)}{after}")
    return stdout
