"""A fake ``pulumi`` executable for the rollback and drift tests (``tests/test_rollback.py`` and
``tests/test_drift.py`` put it first on PATH).

It answers what ``python -m ops rollback`` and ``python -m ops drift`` ask, as the real CLI does:
- ``pulumi version``: a version line (what the Automation API asks first, should the command move to it);
- ``pulumi stack history --json ...``: replays the recorded output in ``$FAKE_PULUMI_HISTORY``;
- ``pulumi stack output --json ...``: replays ``$FAKE_PULUMI_OUTPUTS``;
- ``pulumi stack export ...``: replays ``$FAKE_PULUMI_EXPORT`` (a checkpoint, pending operations and all);
- ``pulumi preview --json ...``: replays the preview digest in ``$FAKE_PULUMI_PREVIEW``; with
  ``--expect-no-changes`` and a change summary counting anything but ``same``/``read*`` (Pulumi's
  ``ResourceChanges.HasChanges``), the CLI's error line after the JSON and its exit code 7;
- ``pulumi install``, ``pulumi preview``, ``pulumi up``: a few lines of output and success, or,
  for the command named in ``$FAKE_PULUMI_FAIL``, pulumi's ``error:`` line on stderr and exit 255;
  the one named in ``$FAKE_PULUMI_WAIT`` waits after its first line for a SIGINT, logged as
  ``{"interrupted": command}``, then exits 255.
Anything else is an error, as an unknown command is.

Every call is appended to ``$FAKE_PULUMI_LOG`` as one JSON line: its arguments, its working
directory, the git commit checked out there and whether that tree had changes (``git status
--porcelain``), the text of the file ``--config-file`` named (the rollback deletes it after), and
the migration files in its ``sql/``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

VERSION = "v3.272.0"
UNCHANGED = ("same", "read", "read-discard", "read-replacement")


def put_on_path(bin_dir: Path, monkeypatch) -> None:
    """Install this fake as ``pulumi`` in ``bin_dir`` and put that first on PATH (for a test)."""
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / "pulumi"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{Path(__file__).resolve()}" "$@"\n')
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


def _git(*command: str) -> str:
    done = subprocess.run(["git", *command], capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else ""


def _option(args: list[str], name: str) -> str | None:
    for index, arg in enumerate(args):
        if arg == name and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith(f"{name}="):
            return arg.partition("=")[2]
    return None


def main(args: list[str]) -> int:
    config_file = _option(args, "--config-file")
    call = {
        "args": args,
        "cwd": os.getcwd(),
        "head": _git("rev-parse", "HEAD"),
        "changes": _git("status", "--porcelain"),
        "config_file": Path(config_file).read_text() if config_file and os.path.exists(config_file) else None,
        "sql": sorted(path.name for path in Path("sql").glob("*.sql")),  # the migrations the program would read
    }
    with open(os.environ["FAKE_PULUMI_LOG"], "a") as log:
        log.write(json.dumps(call) + "\n")
    words = [arg for arg in args if not arg.startswith("-")]
    command = " ".join(words[:2]) if words[:1] == ["stack"] else (words[0] if words else "")
    if command == os.environ.get("FAKE_PULUMI_WAIT"):
        _on_interrupt(command)  # before its first line: the test interrupts on that line
    if command == os.environ.get("FAKE_PULUMI_FAIL"):
        sys.stderr.write(f"error: {os.environ.get('FAKE_PULUMI_FAIL_REASON', 'preview failed')}\n")
        return 255
    if command == "version":
        print(VERSION)
    elif command == "stack history":
        with open(os.environ["FAKE_PULUMI_HISTORY"]) as history:
            sys.stdout.write(history.read())
    elif command == "stack export":
        with open(os.environ["FAKE_PULUMI_EXPORT"]) as exported:
            sys.stdout.write(exported.read())
    elif command == "stack output":
        with open(os.environ["FAKE_PULUMI_OUTPUTS"]) as outputs:
            sys.stdout.write(outputs.read())
    elif command == "preview" and "--json" in args:
        with open(os.environ["FAKE_PULUMI_PREVIEW"]) as preview:
            text = preview.read()
        sys.stdout.write(text)
        summary = json.loads(text).get("changeSummary") or {}
        if "--expect-no-changes" in args and any(n for op, n in summary.items() if op not in UNCHANGED):
            sys.stderr.write("error: no changes were expected for preview but changes were proposed\n")
            return 7
    elif command == "install":
        print("Installing dependencies...\nFinished installing dependencies")
    elif command in ("preview", "up"):
        stack = _option(args, "--stack")
        verb = "Previewing update" if command == "preview" else "Updating"
        print(
            f"{verb} ({stack})\n\n    pulumi:pulumi:Stack  swipesavvy-{stack}\n ~  aws:rds:Instance  database  update"
        )
        if command == os.environ.get("FAKE_PULUMI_WAIT"):
            sys.stdout.flush()
            time.sleep(600)  # until the SIGINT (see main) ends it: a guard, never reached when it works
        print("\nResources:\n    ~ 1 to update\n    41 unchanged")
    else:
        sys.stderr.write(f"error: unknown command {' '.join(args)!r} for 'pulumi'\n")
        return 255
    return 0


def _on_interrupt(command: str) -> None:
    """As pulumi on SIGINT: cancel gracefully, say so in the log, exit 255."""

    def cancelled(*_):
        with open(os.environ["FAKE_PULUMI_LOG"], "a") as log:
            log.write(json.dumps({"interrupted": command}) + "\n")
        sys.exit(255)

    signal.signal(signal.SIGINT, cancelled)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
