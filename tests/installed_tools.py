"""The command-line tools the tests run, found as install.sh leaves them: the interpreter's own
bin directory first (PyPI ships shellcheck, actionlint, zizmor and ruff into ``.venv/bin``,
which ``.venv/bin/python -m pytest`` does not put on PATH), then PATH (Debian's packages).

A missing tool skips its test on a developer's machine; in CI (``CI=true``, as GitHub sets it),
which has just run install.sh, it fails instead: a skip there would hide a broken install."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

INTERPRETER_BIN = Path(sys.executable).parent  # not resolved: a venv's python links outside it


def find_tool(name: str) -> str | None:
    return shutil.which(name, path=os.pathsep.join([str(INTERPRETER_BIN), os.environ.get("PATH", os.defpath)]))


def require_tool(name: str, why: str = "install.sh installs it") -> str:
    path = find_tool(name)
    if path is None:
        missing = f"{name} is not installed on this machine ({why})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{missing}; CI has just run install.sh, so this is a broken install", pytrace=False)
        pytest.skip(missing)
    return path
