"""How long ``python -m ops rehearse`` takes, end to end, as a newcomer runs it (a benchmark, not a test).

Runs the command RUNS times in fresh processes (each starts its own PostgreSQL, the backend
and the site, and imports Pulumi anew: all seven phases) and reports each wall time, the
median, the load average it ran under (other work on the machine slows it), and the issue's
target: under 30 s on a 2-core machine. Usage: .venv/bin/python bench/rehearse_bench.py [RUNS]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 30.0
GRAPH = Path(tempfile.gettempdir()) / "rehearse-bench.svg"


def one_run() -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "ops", "rehearse", "--graph", str(GRAPH)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"rehearse failed (exit {done.returncode}): {done.stderr.strip().splitlines()[-1]}")
    return elapsed


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    times = [one_run() for _ in range(runs)]
    median = statistics.median(times)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"cpus {os.cpu_count()}, load average {load}, runs (s): {' '.join(f'{t:.2f}' for t in times)}, median {median:.2f} s"
    )
    print(
        f"{'PASS' if median < TARGET_S else 'FAIL'}  python -m ops rehearse --graph < {TARGET_S:g} s   {median:.2f} s"
    )


if __name__ == "__main__":
    main()
