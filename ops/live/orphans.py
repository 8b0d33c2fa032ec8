"""Orphaned review stacks: ``pr-<N>`` stacks whose pull request is closed (or merged) but which
still exist, because the pull request's own destroy could not run (review stacks switched off
by then, the keys missing, staging's outputs unavailable). The scheduled workflow
``.github/workflows/review-orphans.yml`` destroys what this selects.

Pure: ``pulumi stack ls --json`` and each candidate's pull-request state in, the pull requests
whose stacks to destroy out. Only a state GitHub reported as CLOSED or MERGED selects a
stack: an open pull request, one whose state could not be read, and every stack that is not
``pr-<N>`` (staging, production) are kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from components.config import REVIEW_STACK

ENDED = ("CLOSED", "MERGED")  # `gh pr view --json state`: OPEN, CLOSED or MERGED


def review_stack_prs(stacks: Iterable[Mapping[str, Any]]) -> list[int]:
    """The pull requests of the ``pr-<N>`` stacks in ``pulumi stack ls --json`` (names may be
    qualified: ``org/pr-12``, ``org/project/pr-12``)."""
    names = (str(stack.get("name", "")).rsplit("/", 1)[-1] for stack in stacks)
    return sorted({int(name.removeprefix("pr-")) for name in names if REVIEW_STACK.match(name)})


def orphaned(prs: Iterable[int], states: Mapping[int, str | None]) -> list[int]:
    """The pull requests among ``prs`` that GitHub says have ended."""
    return [pr for pr in prs if states.get(pr) in ENDED]


def decision_lines(prs: Iterable[int], states: Mapping[int, str | None]) -> list[str]:
    """One line per review stack: what happens to it and why."""
    lines = []
    for pr in prs:
        state = states.get(pr)
        if state in ENDED:
            lines.append(f"pr-{pr}: pull request {state.lower()}: destroy")
        elif state is None:
            lines.append(f"pr-{pr}: pull request state unknown: kept (the next run tries again)")
        else:
            lines.append(f"pr-{pr}: pull request {state.lower()}: kept")
    return lines
