"""Folders of this project a stack ships (the backend's release, the site's build): inside
the project, and holding nothing a release must not carry."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

from components.config.section import NAMESPACE, ConfigError, _fail, _Section


def _project_path(s: _Section, name: str, project_root: Path, allowed: str, example: str) -> str:
    """A required path setting, relative to the project root; it must exist and, symlinks
    followed, stay under the root (checked at preview)."""
    value = s.get(name, None)
    if not isinstance(value, str) or not value or not (project_root / value).exists():
        raise _fail(s.path(name), value, allowed, example)
    if not (project_root / value).resolve().is_relative_to(project_root.resolve()):
        raise _fail(s.path(name), value, f"must be under the project root {project_root} (symlinks followed)", example)
    return value


def _dotfiles(s: _Section) -> tuple[str, ...]:
    """``dotfiles``: relative paths in the folder (a folder admits what is under it)."""

    def relative(path: str) -> bool:
        parts = path.split("/")
        return bool(path) and not path.startswith("/") and all(part not in ("", ".", "..") for part in parts)

    return s.strings("dotfiles", relative, "must be a list of paths relative to the folder, like .well-known", [".env"])


# Installed dependencies (npm ci from a lockfile) carry their packages' own dotfiles
# (.eslintrc, .npmignore): files a registry published, not the project's secrets.
DEPENDENCY_FOLDER = "node_modules"


def _listed(relative: str, dotfiles: tuple[str, ...]) -> bool:
    """Whether a dotfile may ship: listed (or under a listed folder), or inside an installed
    package (``node_modules/<package>/...``; not loose in ``node_modules`` itself)."""
    parts = relative.split("/")
    return DEPENDENCY_FOLDER in parts[:-2] or any(
        relative == listed or relative.startswith(f"{listed}/") for listed in dotfiles
    )


def _shipped_problem(folder: Path, project_root: Path, dotfiles: tuple[str, ...]) -> str | None:
    """What in a release or site build must not ship: a dotfile (``.env``, ``.git``: often a
    secret) not listed in ``dotfiles``, or a symlink leading outside the project. None if nothing."""
    if folder.is_file():  # a .tar.gz release: its member names
        with tarfile.open(folder) as archive:
            names = sorted(name.removeprefix("./") for name in archive.getnames())
        hidden = (
            n for n in names if any(p.startswith(".") for p in n.split("/") if p != ".") and not _listed(n, dotfiles)
        )
        return next((f"{name}, a dotfile" for name in hidden), None)
    root = project_root.resolve()
    for directory, folders, files in os.walk(folder):
        for name in sorted(folders + files):
            path = Path(directory, name)
            relative = path.relative_to(folder).as_posix()
            if path.is_symlink() and not path.resolve().is_relative_to(root):
                return f"{relative}, a symlink to {path.resolve()}, outside the project"
            if name.startswith(".") and not _listed(relative, dotfiles):
                return f"{relative}, a dotfile"
    return None


def _refuse_unshippable(s: _Section, name: str, value: str, project_root: Path, dotfiles: tuple[str, ...]) -> None:
    try:
        problem = _shipped_problem(project_root / value, project_root, dotfiles)
    except (tarfile.TarError, OSError) as error:
        raise _fail(
            s.path(name), value, f"must be a readable .tar.gz archive ({error})", "examples/backend-release"
        ) from None
    if problem is None:
        return
    if problem.endswith("a dotfile"):
        item = problem.removesuffix(", a dotfile")  # its path, commas and all
        why = f"{problem} (often a secret, so never shipped unless listed)"
        fix = f"remove it from {value}, or if it must ship: pulumi config set --path '{NAMESPACE}:{s.key}.dotfiles[0]' {item}"
    else:
        why, fix = problem, f"remove it from {value}, or copy its target in"
    raise ConfigError(f"{NAMESPACE}:{s.path(name)} = {value!r} is invalid: it holds {why} (fix: {fix})")
