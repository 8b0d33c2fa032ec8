"""Mutation scores of the pure modules: how many small changes to the code their own tests catch.

    .venv/bin/python bench/mutation.py              # run mutmut, then print the score per module
    .venv/bin/python bench/mutation.py --report     # print the scores of the last run only
    .venv/bin/python bench/mutation.py --survivors  # also list each surviving mutant (`mutmut show NAME`)

The modules and their tests are configured in pyproject.toml (``[tool.mutmut]``). mutmut
(a maintained mutation tester) flips comparisons, blanks strings, drops calls and the like, one
change at a time, and runs the tests that cover the changed function. A mutant is killed when a
test fails. Every run starts clean (results of earlier runs would be stale once tests change).
A large module is sampled: every k-th of its mutants in name order, at most ``--per-module``
(250), the same sample every time for the same code, so a run stays under 15 minutes on 2
cores. Not part of ``.ci/run``; the last scores are in docs/test-strength.md. Mutants that change no behaviour are excluded at their line with
``# pragma: no mutate`` and a reason beside it. Exit status 1 when a module scores under
``--minimum`` (80%).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MUTMUT = Path(sys.executable).with_name("mutmut")
# `mutmut results --all true` prints "    <module>.x_<function>__mutmut_<n>: <status>"
# (methods: "<module>.xǁ<Class>ǁ<method>__mutmut_<n>").
RESULT_LINE = re.compile(r"^\s*(?P<name>(?P<module>[\w.]+?)\.xǁ?\w.*?__mutmut_\d+): (?P<status>[\w ]+)$")
CAUGHT = {"killed", "timeout"}  # a mutant that hangs the tests is caught too
NOT_COUNTED = {"skipped", "not checked"}  # not checked: outside the sample


def modules() -> list[str]:
    """The mutated modules in the order pyproject.toml lists them, as dotted names."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    return [path.removesuffix(".py").replace("/", ".") for path in config["only_mutate"]]


def sample(names: list[str], per_module: int) -> list[str]:
    """Every k-th name in sorted order, at most ``per_module`` of them: spread over every function."""
    ordered = sorted(names)
    step = max(1, math.ceil(len(ordered) / per_module))
    return ordered[::step]


def generated_mutants() -> dict[str, list[str]]:
    """Mutant names per mutated file, from the metadata mutmut writes next to each copy."""
    return {
        str(meta.relative_to(ROOT / "mutants")).removesuffix(".meta"): list(
            json.loads(meta.read_text())["exit_code_by_key"]
        )
        for meta in sorted((ROOT / "mutants").rglob("*.py.meta"))
    }


def run_mutmut(per_module: int, max_children: int) -> int:
    """A clean run over the sample; mutmut's exit status."""
    shutil.rmtree(ROOT / "mutants", ignore_errors=True)
    # First pass: generate the mutants and the test coverage map. Naming no existing mutant,
    # it stops there (mutmut then refuses the empty selection, which is expected).
    subprocess.run([MUTMUT, "run", "--max-children", str(max_children), "generate-only"], cwd=ROOT, capture_output=True)
    names = [name for found in generated_mutants().values() for name in sample(found, per_module)]
    if not names:
        print("error: mutmut generated no mutants (see `.venv/bin/mutmut run`)", file=sys.stderr)
        return 2
    return subprocess.run([MUTMUT, "run", "--max-children", str(max_children), *names], cwd=ROOT).returncode


def parse_results(text: str) -> dict[str, Counter]:
    """Status counts per module from `mutmut results --all true`."""
    counts: dict[str, Counter] = {}
    for line in text.splitlines():
        match = RESULT_LINE.match(line)
        if match:
            counts.setdefault(match["module"], Counter())[match["status"]] += 1
    return counts


def score(statuses: Counter) -> float:
    counted = sum(n for status, n in statuses.items() if status not in NOT_COUNTED)
    return 100.0 * sum(statuses[s] for s in CAUGHT) / counted if counted else 0.0


def table(counts: dict[str, Counter], order: list[str]) -> list[str]:
    rows = [f"{'module':<34} {'mutants':>7} {'killed':>6} {'survived':>8} {'other':>5} {'score':>6}"]
    for module in order:
        statuses = counts.get(module, Counter())
        total = sum(n for status, n in statuses.items() if status not in NOT_COUNTED)
        caught = sum(statuses[s] for s in CAUGHT)
        other = total - caught - statuses["survived"]  # no tests, suspicious, segfault
        rows.append(
            f"{module:<34} {total:>7} {caught:>6} {statuses['survived']:>8} {other:>5} {score(statuses):>5.1f}%"
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", action="store_true", help="print the last run's scores without running")
    parser.add_argument("--survivors", action="store_true", help="list the surviving mutants")
    parser.add_argument("--minimum", type=float, default=80.0, help="lowest acceptable score per module (percent)")
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 1, help="mutants run at once")
    parser.add_argument("--per-module", type=int, default=250, help="most mutants run per module (a sample)")
    args = parser.parse_args(argv)
    if not MUTMUT.exists():
        print(f"error: {MUTMUT} is missing: run ./install.sh (requirements-dev.txt installs mutmut)", file=sys.stderr)
        return 2
    if not args.report:
        returncode = run_mutmut(args.per_module, args.max_children)
        if returncode != 0:
            print(f"error: mutmut run exited {returncode}", file=sys.stderr)
            return 2
    results = subprocess.run([MUTMUT, "results", "--all", "true"], cwd=ROOT, capture_output=True, text=True)
    counts = parse_results(results.stdout)
    order = modules()
    print("\n".join(table(counts, order)))
    if args.survivors:
        print("\nsurvivors (show one with `.venv/bin/mutmut show NAME`):")
        for line in results.stdout.splitlines():
            match = RESULT_LINE.match(line)
            if match and match["status"] == "survived":
                print(f"  {match['name']}")
    weak = [module for module in order if score(counts.get(module, Counter())) < args.minimum]
    if weak:
        print(f"under {args.minimum:g}%: {', '.join(weak)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
