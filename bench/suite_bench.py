"""How long the test suite and the quick loop take, here and at a baseline commit.

    .venv/bin/python bench/suite_bench.py                       # the suite and the quick loop, once each
    .venv/bin/python bench/suite_bench.py --baseline 12547f5    # each also at that commit, alternately
    .venv/bin/python bench/suite_bench.py --selection quick --baseline 12547f5 --rounds 3
    .venv/bin/python bench/suite_bench.py --selection tests/test_schema.py --baseline 12547f5 -- -n 0

Selections: ``suite`` is the README's test command, ``.venv/bin/python -m pytest``, as
``.ci/run`` runs it (each tree its own tests and its own pytest.ini); ``quick`` is
``.venv/bin/python -m pytest -m "not slow"`` (README "Performance"); anything else is a
list of test paths. At the baseline, which has no markers, ``quick`` runs the very tests the
quick loop selects here, named one by one, and those in this tree only (none at the
baseline) are named beside the figures. Arguments after ``--`` go to every pytest run.

The baseline is the commit's files (``git archive``) in a temporary directory with this
tree's .venv linked and its .build and the example release's node_modules copied, as the
README's set-up leaves them. Runs alternate (current, baseline, current, ...) so that a
machine whose load changes treats both alike. Per run: wall time, and the CPU time of pytest
and every process it waited for (getrusage of the children: the PostgreSQL servers run
detached and are not counted). With several rounds the medians and the ratio baseline /
current are printed. Exit status: pytest's worst.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTEST = [".venv/bin/python", "-m", "pytest", "-p", "no:cacheprovider"]
QUICK = ["-m", "not slow"]
SUMMARY = re.compile(r"^=*\s*(?P<text>(\d+ \w+(, )?)+.* in [\d.]+s.*?)\s*=*$")


@dataclass
class Run:
    tree: str
    wall_s: float
    cpu_s: float
    summary: str
    exit_code: int
    failed: list[str]


def baseline_tree(commit: str, into: Path) -> Path:
    """The commit's files, set up as the README's install leaves a clone (venv linked)."""
    into.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    (into / ".venv").symlink_to((ROOT / ".venv").resolve())
    if (ROOT / ".build").is_dir():
        shutil.copytree(ROOT / ".build", into / ".build")
    modules = Path("examples/backend-release/node_modules")
    if (ROOT / modules).is_dir() and not (into / modules).exists():
        shutil.copytree(ROOT / modules, into / modules, symlinks=True)
    return into


def collected_ids(tree: Path, args: list[str]) -> list[str]:
    result = subprocess.run(
        [*PYTEST, "--collect-only", "-q", "-n", "0", *args], cwd=tree, capture_output=True, text=True, check=False
    )
    return [line for line in result.stdout.splitlines() if "::" in line]


def timed(tree: Path, label: str, args: list[str]) -> Run:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    result = subprocess.run([*PYTEST, *args], cwd=tree, capture_output=True, text=True, check=False)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    lines = [m["text"] for line in result.stdout.splitlines() if (m := SUMMARY.match(line.strip()))]
    failed = [line for line in result.stdout.splitlines() if line.startswith(("FAILED ", "ERROR "))]
    return Run(label, wall, cpu, lines[-1] if lines else result.stdout.strip()[-200:], result.returncode, failed)


def argsfile(ids: list[str], directory: Path, name: str) -> str:
    path = directory / name
    path.write_text("\n".join(ids) + "\n")
    return f"@{path}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--selection", nargs="+", default=["suite", "quick"], help="suite, quick, or test paths")
    parser.add_argument("--baseline", metavar="COMMIT", help="also run each selection at this commit")
    parser.add_argument("--rounds", type=int, default=1, help="runs of each tree, alternating (default 1)")
    parser.add_argument("pytest_args", nargs="*", help="after --: passed to every pytest run")
    args = parser.parse_args(argv)

    named = [s for s in args.selection if s not in ("suite", "quick")]
    selections = [s for s in args.selection if s in ("suite", "quick")] + ([named] if named else [])
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start")
    worst = 0
    with tempfile.TemporaryDirectory(prefix="swipesavvy-suite-bench-") as scratch:
        base = baseline_tree(args.baseline, Path(scratch) / "baseline") if args.baseline else None
        for selection in selections:
            if selection == "suite":
                title, here, there = "suite: .venv/bin/python -m pytest", [], []
            elif selection == "quick":
                title, here = 'quick loop: .venv/bin/python -m pytest -m "not slow"', QUICK
                there = []
                if base:
                    quick = collected_ids(ROOT, QUICK)
                    known = set(collected_ids(base, []))
                    there = [argsfile([i for i in quick if i in known], Path(scratch), "quick-ids.txt")]
                    new = [i for i in quick if i not in known]
                    title += (
                        f" ({len(quick) - len(new)} tests at both; {len(new)} new here: {', '.join(new) or 'none'})"
                    )
            else:
                title, here, there = f"paths: {' '.join(selection)}", list(selection), list(selection)
            print(f"\n{title}")
            runs: list[Run] = []
            for _ in range(args.rounds):
                runs.append(timed(ROOT, "current", [*here, *args.pytest_args]))
                if base:
                    runs.append(timed(base, f"baseline {args.baseline}", [*there, *args.pytest_args]))
                for run in runs[-2 if base else -1 :]:
                    print(f"  {run.tree:<20} wall {run.wall_s:7.1f} s  cpu {run.cpu_s:7.1f} s  {run.summary}")
                    for line in run.failed:
                        print(f"      {line}")
                    worst = max(worst, run.exit_code)
            if args.rounds > 1 or base:
                trees = {run.tree for run in runs}
                medians = {
                    tree: (
                        statistics.median(r.wall_s for r in runs if r.tree == tree),
                        statistics.median(r.cpu_s for r in runs if r.tree == tree),
                    )
                    for tree in trees
                }
                for tree, (wall, cpu) in sorted(medians.items(), reverse=True):
                    print(f"  median {tree:<13} wall {wall:7.1f} s  cpu {cpu:7.1f} s")
                if base:
                    (cw, cc), (bw, bc) = medians["current"], medians[f"baseline {args.baseline}"]
                    print(f"  baseline / current: wall {bw / cw:.2f}x, cpu {bc / cc:.2f}x")
    return worst


if __name__ == "__main__":
    sys.exit(main())
