"""The deployment archive of the in-VPC "operator" Lambda function, built reproducibly.

The function (python3.13 on arm64) runs the project's own code: the ``dbops/`` package (the
function's code, nothing else: no Pulumi, no command line), the ``seed/`` generator it loads,
``sql/`` and the RDS CA bundle ``certs/rds-ca-bundle.pem``, plus psycopg 3 with its binary
wheel for that platform, unpacked at the zip root where Lambda imports from. Pulumi hashes a .zip file by the sha256 of its raw bytes, so the same
inputs must give a byte-identical zip or every ``pulumi up`` would redeploy the function:
names are sorted, timestamps and permissions fixed, entries stored uncompressed (deflate
output may differ between zlib builds) and project text files normalised to LF.

Plain Python, no Pulumi: ``install.sh`` prefetches the wheels with
``python -m components.data.operator_package fetch`` so the build (and the tests) work offline.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import re
import stat
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

OPERATOR_RUNTIME = "python3.13"
OPERATOR_ARCHITECTURE = "arm64"
OPERATOR_PYTHON = "3.13"
OPERATOR_PLATFORM = "manylinux_2_28_aarch64"

PROJECT_ROOT = Path(__file__).resolve().parents[2]  # components/data/ is two below the project
# Relative to the project root; .build/ is git-ignored.
WHEELHOUSE = Path(".build/operator-wheels")
ARCHIVE = Path(".build/operator.zip")

# Project code shipped to the function: these packages whole (``tests/test_layout.py`` keeps
# them free of Pulumi and of the program's packages), and the migrations.
FUNCTION_PACKAGES = ("dbops", "seed")
PROJECT_DATA = (("sql", "*.sql"), ("certs", "*.pem"))  # the migrations; RDS's CAs (components/rds_ca.py)
TEXT_SUFFIXES = (".py", ".sql", ".pem")

# 1980-01-01 is the earliest date a zip entry can hold: no build-time clock in the bytes.
ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)
ZIP_FILE_MODE = (stat.S_IFREG | 0o644) << 16
ZIP_SYSTEM_UNIX = 3

_PYTHON_TAG = "cp" + OPERATOR_PYTHON.replace(".", "")
_MANYLINUX_TAG = re.compile(r"manylinux_(\d+)_(\d+)_(\w+)")
# PEP 600 alias: manylinux2014 is glibc 2.17.
_LEGACY_MANYLINUX = {"manylinux2014": (2, 17)}


class OperatorPackageError(Exception):
    """One line naming what is wrong and the fix."""


@dataclass(frozen=True)
class OperatorArchive:
    path: Path
    sha256: str
    size: int
    files: int


def psycopg_pin(requirements: Path) -> str:
    """The exact psycopg version requirements.txt pins, so the function runs the driver the
    program and tests run."""
    for line in requirements.read_text(encoding="utf-8").splitlines():
        requirement = line.split("#", 1)[0].strip()
        name = re.match(r"[A-Za-z0-9._-]*", requirement).group()
        if re.sub(r"[-_.]+", "-", name).lower() != "psycopg":
            continue
        pinned = re.fullmatch(r"psycopg(?:\[[^\]]*\])?\s*==\s*([0-9][0-9A-Za-z.+!-]*)", requirement, re.IGNORECASE)
        if pinned is None:
            raise OperatorPackageError(
                f"{requirements}: psycopg is not pinned with == ({requirement!r}); pin it, e.g. psycopg[binary]==3.3.9"
            )
        return pinned.group(1)
    raise OperatorPackageError(f"{requirements} has no psycopg requirement; add psycopg[binary]==<version>")


def _glibc_of(platform_tag: str) -> tuple[int, int] | None:
    """The glibc version a manylinux aarch64 platform tag needs, None for any other tag."""
    legacy, _, arch = platform_tag.partition("_")
    if legacy in _LEGACY_MANYLINUX:
        return _LEGACY_MANYLINUX[legacy] if arch == "aarch64" else None
    match = _MANYLINUX_TAG.fullmatch(platform_tag)
    if match is None or match.group(3) != "aarch64":
        return None
    return int(match.group(1)), int(match.group(2))


def _fits_operator(wheel: Path, project: str, version: str) -> bool:
    """Whether a wheel file name is ``project`` at ``version`` and runs on the function: pure
    Python, or CPython 3.13 for manylinux aarch64 no newer than the target's glibc."""
    parts = wheel.name.removesuffix(".whl").split("-")
    if len(parts) != 5 or parts[0].lower() != project or parts[1] != version:
        return False
    python_tags, abi_tags, platform_tags = (set(tag.split(".")) for tag in parts[2:])
    if platform_tags == {"any"}:
        return "py3" in python_tags and "none" in abi_tags
    target = _glibc_of(OPERATOR_PLATFORM)
    glibc = [_glibc_of(tag) for tag in platform_tags]
    return _PYTHON_TAG in python_tags and _PYTHON_TAG in abi_tags and any(g and g <= target for g in glibc)


def _wheels_in(wheelhouse: Path, version: str) -> list[Path] | None:
    """The psycopg and psycopg_binary wheels for the function, or None if either is missing."""
    found = []
    for project in ("psycopg", "psycopg_binary"):
        fitting = sorted(w for w in wheelhouse.glob("*.whl") if _fits_operator(w, project, version))
        if not fitting:
            return None
        # Several builds of one version may fit (e.g. manylinux_2_17 and _2_28): any one, but
        # always the same one, so the archive does not depend on directory order.
        found.append(fitting[-1])
    return found


def _last_line(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def fetch_wheels(wheelhouse: Path, version: str) -> list[Path]:
    """psycopg ``version`` and its binary wheel for the function's platform, downloaded into
    ``wheelhouse`` unless both are already there (so a second run needs no network).

    --no-deps is complete: psycopg 3.3.9's METADATA requires typing-extensions only for
    python_version < "3.13" and tzdata only on win32; psycopg-binary requires nothing.
    """
    wheels = _wheels_in(wheelhouse, version)
    if wheels is not None:
        return wheels
    wheelhouse.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--only-binary=:all:",
            "--no-deps",
            "--platform",
            OPERATOR_PLATFORM,
            "--python-version",
            OPERATOR_PYTHON,
            "--implementation",
            "cp",
            "--dest",
            str(wheelhouse),
            f"psycopg=={version}",
            f"psycopg-binary=={version}",
        ],
        capture_output=True,
        text=True,
    )
    wheels = _wheels_in(wheelhouse, version) if result.returncode == 0 else None
    if wheels is None:
        raise OperatorPackageError(
            f"cannot download psycopg {version} wheels for {OPERATOR_PLATFORM} "
            f"(pip: {_last_line(result.stderr or result.stdout)}); run ./install.sh with network access"
        )
    return wheels


def _project_entries(project_root: Path) -> dict[str, bytes]:
    """The project's code by project-relative POSIX path; text in LF so a CRLF checkout
    (Windows, core.autocrlf) builds the same bytes."""
    entries = {}
    for path in _function_modules(project_root) + [
        path for directory, pattern in PROJECT_DATA for path in (project_root / directory).glob(pattern)
    ]:
        data = path.read_bytes()
        if path.suffix in TEXT_SUFFIXES:
            data = data.replace(b"\r\n", b"\n")
        entries[path.relative_to(project_root).as_posix()] = data
    return entries


def _function_modules(project_root: Path) -> list[Path]:
    """Every module of FUNCTION_PACKAGES (package ``__init__`` files included, ``__pycache__``
    left out): the function's code and the seed generator it loads."""
    return sorted(
        path
        for package in FUNCTION_PACKAGES
        for path in (project_root / package).rglob("*.py")
        if "__pycache__" not in path.relative_to(project_root).parts
    )


def _wheel_entries(wheel: Path) -> dict[str, bytes]:
    """Every file of a wheel, as pip would install it: the package, its vendored shared
    libraries (psycopg_binary.libs/) and its .dist-info. Directory entries are left out:
    extracting the zip creates them."""
    with zipfile.ZipFile(wheel) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist() if not info.is_dir()}


def _zip_bytes(entries: dict[str, bytes]) -> bytes:
    """A zip whose bytes depend only on the entries' names and contents."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE_TIME)
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = ZIP_FILE_MODE
            info.create_system = ZIP_SYSTEM_UNIX
            archive.writestr(info, entries[name])
    return buffer.getvalue()


def _write_if_changed(output: Path, data: bytes) -> None:
    """Replace ``output`` atomically, and only when its bytes differ: an unchanged archive
    keeps its mtime, and a reader never sees half a file."""
    if output.is_file() and output.read_bytes() == data:
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(temporary, output)
    except BaseException:
        os.unlink(temporary)
        raise


def build_operator_archive(project_root: Path, wheelhouse: Path, output: Path) -> OperatorArchive:
    """The function's code zip at ``output``: the project's dbops/, seed/ and sql/ plus the
    psycopg wheels requirements.txt pins, fetched into ``wheelhouse`` when missing."""
    version = psycopg_pin(project_root / "requirements.txt")
    entries = _project_entries(project_root)
    for wheel in fetch_wheels(wheelhouse, version):
        entries.update(_wheel_entries(wheel))
    data = _zip_bytes(entries)
    _write_if_changed(output, data)
    return OperatorArchive(path=output, sha256=hashlib.sha256(data).hexdigest(), size=len(data), files=len(entries))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m components.data.operator_package", description=__doc__.splitlines()[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("fetch", help=f"download the psycopg wheels into {WHEELHOUSE} (install.sh runs this)")
    commands.add_parser("build", help=f"build {ARCHIVE} and print its path, size and sha256")
    args = parser.parse_args(argv)
    try:
        if args.command == "fetch":
            for wheel in fetch_wheels(PROJECT_ROOT / WHEELHOUSE, psycopg_pin(PROJECT_ROOT / "requirements.txt")):
                print(wheel)
        else:
            archive = build_operator_archive(PROJECT_ROOT, PROJECT_ROOT / WHEELHOUSE, PROJECT_ROOT / ARCHIVE)
            print(f"{archive.path} {archive.size} bytes sha256:{archive.sha256} ({archive.files} files)")
    except OperatorPackageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
