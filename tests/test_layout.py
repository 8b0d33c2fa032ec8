"""The layout (README "Layout"): every package says what lives in it, ``python -m ops`` is its
parser and dispatch only, and a module that moved into a plane is still importable at its old
path as the very same module."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import components
import ops

ROOT = Path(__file__).resolve().parent.parent


PACKAGES = sorted(
    str(init.parent.relative_to(ROOT))
    for top in ROOT.iterdir()
    if top.is_dir() and not top.name.startswith(".")
    for init in top.rglob("__init__.py")
    if "node_modules" not in init.parts
)


@pytest.mark.parametrize("package", PACKAGES)
def test_every_package_says_what_lives_there(package):
    docstring = ast.get_docstring(ast.parse((ROOT / package / "__init__.py").read_text()))
    assert docstring and len(docstring.split()) >= 10, package


def test_the_command_line_module_is_the_parser_and_the_dispatch_only():
    assert len((ROOT / "ops" / "cli.py").read_text().splitlines()) < 400


@pytest.mark.parametrize(("old", "new"), sorted((components.MOVED | ops.MOVED).items()))
def test_a_moved_module_is_the_same_module_at_its_old_path(old, new):
    moved = importlib.import_module(new)
    assert importlib.import_module(old) is moved
    assert moved.__spec__.name == new  # importing the old name leaves the module's own spec
    assert not (ROOT / (old.replace(".", "/") + ".py")).exists()  # one file: no copy at the old path
