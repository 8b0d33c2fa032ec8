"""What every ``python -m ops`` command shares: the exit codes docs/operations.md lists, the one-line
failure a command raises, the checklist it prints, and the argument types several share.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

EXIT_OK = 0  # success
EXIT_FAILED = 1  # a check, migration, seed, preview or up failed, or the login lacks a privilege
EXIT_USAGE = 2  # bad arguments (a malformed DSN, a bad URL...) or a missing prerequisite (pulumi, dot)
EXIT_UNAVAILABLE = 3  # the database, AWS (credentials), the Pulumi backend or embedded PostgreSQL unavailable
EXIT_LOCKED = 4  # gave up waiting for another migrate/seed run's lock; nothing changed
EXIT_NOT_RESTORED = 5  # smoke left an admin change the API did not confirm restored (the message says how)
EXIT_REFUSED = 6  # rollback refused (commit missing or dirty, no config, no such version, declined): nothing deployed
EXIT_DRIFT = 7  # drift: the stack's resources or database differ from what it declares
EXIT_INTERRUPTED = 130  # Ctrl-C: the message says what that left (the exit-code table in docs/operations.md)


class CommandFailed(Exception):
    """A command that ran and failed; the message is the one line the operator sees."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED):
        super().__init__(message)
        self.exit_code = exit_code


class UsageError(CommandFailed):
    def __init__(self, message: str):
        super().__init__(message, EXIT_USAGE)


def print_rows(results: list[tuple[str, bool, str]]) -> None:
    width = max(len(name) for name, _, _ in results)
    for name, passed, detail in results:
        print(f"{'✓' if passed else '✗'} {name:<{width}}  {detail}")


def print_checklist(results: list[tuple[str, bool, str]], target: str, command: str = "verify") -> int:
    print_rows(results)
    return verdict(results, target, command)


def verdict(results: list[tuple[str, bool, str]], target: str, command: str, quiet: bool = False) -> int:
    """EXIT_OK when every check passed; else the one line naming the failed ones."""
    failed = [name for name, passed, _ in results if not passed]
    if failed:
        raise CommandFailed(f"{command} failed: {', '.join(failed)}")
    if not quiet:
        print(f"all {len(results)} checks passed on {target}")
    return EXIT_OK


def bounded_int(low: int, high: int) -> Callable[[str], int]:
    """An argparse ``type``: an integer from ``low`` to ``high``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be an integer from {low} to {high}, got {text!r}")
        return value

    return parse
