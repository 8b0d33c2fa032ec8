"""``python -m ops.rehearsal.guardian``: stops what a run started once that run is gone, however it ended.

``rehearse`` and ``sandbox`` start one at the beginning, in its own session (Ctrl-C and a
signal to the run's process group do not reach it), with a pipe on its stdin. The run
writes ``pid N SIGNAL`` for every process it starts and ``dir PATH`` for its scratch directory.
When the pipe closes, because the run exited, was interrupted or was killed (SIGKILL
included: the kernel closes the pipe), it stops those processes (SIGTERM, then SIGKILL
after a grace period) and removes the directories. A run that cleaned up after itself
leaves nothing for it to do.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time

GRACE_S = 5.0


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists (one of another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop(processes: list[tuple[int, signal.Signals]], grace_s: float = GRACE_S) -> None:
    """Each process its stop signal, newest first; SIGKILL for those still running after ``grace_s``."""
    pids = [pid for pid, _ in processes]
    for pid, stop_signal in reversed(processes):
        if alive(pid):
            os.kill(pid, stop_signal)
    deadline = time.monotonic() + grace_s
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in pids:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # only the pipe's end ends it
    processes: list[tuple[int, signal.Signals]] = []
    directories: list[str] = []
    for line in sys.stdin:
        kind, _, value = line.strip().partition(" ")
        if kind == "pid":
            pid, _, name = value.partition(" ")
            processes.append((int(pid), signal.Signals[name]))
        elif kind == "dir":
            directories.append(value)
    stop(processes)
    for directory in directories:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
