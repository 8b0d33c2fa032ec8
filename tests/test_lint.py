"""ruff, as configured in pyproject.toml, runs with the tests so the README's one test
command is also the lint gate (CI runs exactly that command)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pulumi_program import PROJECT_ROOT


@pytest.mark.parametrize("command", [["check", "."], ["format", "--check", "."]], ids=["check", "format"])
def test_ruff(command):
    result = subprocess.run(
        [sys.executable, "-m", "ruff", *command], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
