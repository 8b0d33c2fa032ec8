"""The layout (docs/layout.md "Layout"): every package says what lives in it, the imports go one way
(``ops`` -> ``components`` -> ``dbops``; the operator function's ``dbops`` imports no Pulumi and
none of the program; each of ``ops``'s sub-packages only what its docstring allows), no module
of ``ops`` is over 700 lines, ``python -m ops`` is its parser and dispatch only, and a module
that moved is still importable at its old path as the very same module."""

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


def _imported(path: Path) -> set[str]:
    """Every module a file imports, wherever the statement is (top level, in a function, behind
    a condition): ``import a.b`` gives ``a.b``, ``from a import b`` gives ``a.b``."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: a relative import"  # absolute imports only: the walk can check them
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _within(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == package or name.startswith(package + ".") for package in packages)


def _modules(*packages: str) -> list[str]:
    return sorted(
        str(path.relative_to(ROOT))
        for package in packages
        for path in (ROOT / package).rglob("*.py")
        if "__pycache__" not in path.parts
    )


@pytest.mark.parametrize("module", _modules("components", "dbops"))
def test_neither_the_program_nor_the_function_s_package_imports_the_command_line(module):
    assert not {name for name in _imported(ROOT / module) if _within(name, ("ops",))}


@pytest.mark.parametrize("module", _modules("dbops"))
def test_the_function_s_package_imports_neither_pulumi_nor_the_program(module):
    # what the operator function runs: its archive holds dbops/ and seed/, no Pulumi, no program
    assert not {name for name in _imported(ROOT / module) if name.split(".")[0].startswith("pulumi")}
    assert not {name for name in _imported(ROOT / module) if _within(name, ("components",))}


# What each of ops/'s sub-packages may import of ops (its __init__ says so); the command line at
# ops/'s top imports them all, never the other way round.
OPS_ALLOWED = {
    "live": ("ops.live", "ops.command"),
    "rehearsal": ("ops.rehearsal", "ops.live", "ops.command"),
    "cost": ("ops.cost", "ops.rehearsal", "ops.command"),
}


@pytest.mark.parametrize("module", _modules(*(f"ops/{package}" for package in OPS_ALLOWED)))
def test_an_ops_sub_package_imports_only_what_its_docstring_allows(module):
    allowed = OPS_ALLOWED[Path(module).parts[1]]
    imported = {name for name in _imported(ROOT / module) if _within(name, ("ops",))}
    assert {name for name in imported if not _within(name, allowed)} == set()


@pytest.mark.parametrize("module", _modules("ops"))
def test_no_module_under_ops_is_over_700_lines(module):
    assert len((ROOT / module).read_text().splitlines()) <= 700
