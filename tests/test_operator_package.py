"""The operator Lambda's code archive: the ``dbops`` package and ``seed/`` whole, ``sql/``, RDS's
CA bundle and psycopg for arm64, nothing else of the project, and byte-identical for the same
inputs (Pulumi redeploys the function whenever the zip's sha256 changes).

The wheels are fetched once per session into the project's own wheelhouse, the one
``install.sh`` fills, so after ``./install.sh`` these tests need no network: pip's failures
are provoked against a local index (PIP_NO_INDEX / PIP_FIND_LINKS).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from components import operator_package
from components.data.operator_package import (
    ARCHIVE,
    OPERATOR_PLATFORM,
    PROJECT_ROOT,
    WHEELHOUSE,
    OperatorPackageError,
    build_operator_archive,
    fetch_wheels,
    psycopg_pin,
)

ELF_MAGIC = b"\x7fELF"
ELFCLASS64 = 2
EM_AARCH64 = 183


@pytest.fixture(scope="session")
def psycopg_version() -> str:
    return psycopg_pin(PROJECT_ROOT / "requirements.txt")


@pytest.fixture(scope="session")
def wheels(psycopg_version: str) -> list[Path]:
    return fetch_wheels(PROJECT_ROOT / WHEELHOUSE, psycopg_version)


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """The parts of the project the archive is built from, in a scratch directory."""
    root = tmp_path / "project"
    for directory in ("dbops", "seed", "sql"):
        shutil.copytree(PROJECT_ROOT / directory, root / directory, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(PROJECT_ROOT / "requirements.txt", root / "requirements.txt")
    return root


@pytest.fixture
def no_index(monkeypatch: pytest.MonkeyPatch) -> None:
    """pip finds nothing: any download fails quickly, online or not."""
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)


def _build(root: Path, output: Path) -> operator_package.OperatorArchive:
    return build_operator_archive(root, PROJECT_ROOT / WHEELHOUSE, output)


def _loaded_by_the_handler() -> set[str]:
    """Every module of the project a fresh interpreter has loaded once it imported the handler."""
    program = (
        "import sys, dbops.operator_handler\n"
        "for module in list(sys.modules.values()):\n"
        "    print(getattr(module, '__file__', None) or '')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True, timeout=60
    )
    files = {Path(line) for line in result.stdout.splitlines() if line}
    return {
        path.relative_to(PROJECT_ROOT).as_posix()
        for path in files
        if path.is_relative_to(PROJECT_ROOT) and not path.is_relative_to(PROJECT_ROOT / ".venv")
    }


def _source_tree(root: Path) -> dict[str, bytes]:
    """What the archive must hold of the project, walked independently of the component."""
    files = {}
    for directory in ("dbops", "seed"):
        for dirpath, dirnames, filenames in os.walk(root / directory):
            dirnames[:] = [name for name in dirnames if name != "__pycache__"]
            for name in filenames:
                if name.endswith(".py"):
                    path = Path(dirpath, name)
                    files[path.relative_to(root).as_posix()] = path.read_bytes()
    for path in (root / "sql").iterdir():
        if path.suffix == ".sql":
            files[f"sql/{path.name}"] = path.read_bytes()
    files["certs/rds-ca-bundle.pem"] = (root / "certs" / "rds-ca-bundle.pem").read_bytes()  # PGSSLROOTCERT
    return files


def _names_in(wheels: list[Path]) -> set[str]:
    names = set()
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as source:
            names.update(source.namelist())
    return names


def _elf_machine(data: bytes) -> tuple[int, int]:
    """(EI_CLASS, e_machine) of an ELF header: e_machine is the little-endian half-word at
    offset 18 (aarch64 Linux objects are little-endian, EI_DATA 1)."""
    assert data[:4] == ELF_MAGIC and data[5] == 1, data[:6]
    return data[4], int.from_bytes(data[18:20], "little")


def test_psycopg_pin_reads_requirements(tmp_path: Path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# driver\npsycopg-pool==3.2.6\nPsycopg[binary] == 3.3.9  # pinned\nboto3==1.44.5\n")
    assert psycopg_pin(requirements) == "3.3.9"
    assert psycopg_pin(PROJECT_ROOT / "requirements.txt") == "3.3.9"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "psycopg[binary]>=3.3\n",
            "{path}: psycopg is not pinned with == ('psycopg[binary]>=3.3'); pin it, e.g. psycopg[binary]==3.3.9",
        ),
        ("psycopg-pool==3.2.6\n", "{path} has no psycopg requirement; add psycopg[binary]==<version>"),
    ],
    ids=["range", "absent"],
)
def test_psycopg_pin_refuses_unpinned(tmp_path: Path, content: str, message: str):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(content)
    with pytest.raises(OperatorPackageError) as raised:
        psycopg_pin(requirements)
    assert str(raised.value) == message.format(path=requirements)


def test_archive_holds_project_code_and_psycopg_for_arm64(wheels: list[Path], tmp_path: Path):
    archive = _build(PROJECT_ROOT, tmp_path / "operator.zip")
    with zipfile.ZipFile(archive.path) as built:
        contents = {info.filename: built.read(info) for info in built.infolist()}
        infos = built.infolist()
    project = {name: data.replace(b"\r\n", b"\n") for name, data in _source_tree(PROJECT_ROOT).items()}
    shipped = {name: data for name, data in contents.items() if name not in _names_in(wheels)}
    # The project's files byte for byte: the dbops package and seed/ whole, every migration, the
    # CA bundle, and nothing else (no ops/, no components/); the handler loads nothing outside.
    assert shipped == project
    assert {name.split("/")[0] for name in shipped} == {"dbops", "seed", "sql", "certs"}
    assert "dbops/operator_handler.py" in shipped
    assert _loaded_by_the_handler() <= set(shipped)
    # Everything pip would install from both wheels, byte for byte: no runtime file left out.
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as source:
            for info in source.infolist():
                if not info.is_dir():
                    assert contents[info.filename] == source.read(info), info.filename
    assert "psycopg/__init__.py" in contents
    shared_objects = [name for name in contents if name.startswith("psycopg_binary/") and name.endswith(".so")]
    assert shared_objects
    for name in shared_objects + [name for name in contents if name.startswith("psycopg_binary.libs/")]:
        assert _elf_machine(contents[name]) == (ELFCLASS64, EM_AARCH64), name
    assert not [name for name in contents if "__pycache__" in name or name.endswith(".pyc")]
    assert [info.filename for info in infos] == sorted(contents)
    assert {(i.date_time, i.external_attr >> 16, i.create_system, i.compress_type) for i in infos} == {
        ((1980, 1, 1, 0, 0, 0), 0o100644, 3, zipfile.ZIP_STORED)
    }
    assert (archive.files, archive.size) == (len(contents), archive.path.stat().st_size)
    assert archive.sha256 == hashlib.sha256(archive.path.read_bytes()).hexdigest()


def test_same_inputs_give_byte_identical_archives(wheels: list[Path], project_copy: Path, tmp_path: Path):
    first = _build(project_copy, tmp_path / "first.zip")
    again = _build(project_copy, tmp_path / "again.zip")
    for path in project_copy.rglob("*"):
        os.utime(path, (1_700_000_000, 1_700_000_000))
    touched = _build(project_copy, tmp_path / "touched.zip")
    migration = sorted((project_copy / "sql").glob("*.sql"))[0]
    migration.write_bytes(migration.read_bytes().replace(b"\n", b"\r\n"))
    crlf = _build(project_copy, tmp_path / "crlf.zip")

    expected = first.path.read_bytes()
    for archive in (again, touched, crlf):
        assert archive.path.read_bytes() == expected, archive.path.name
        assert archive.sha256 == first.sha256


def test_changed_migration_changes_the_archive(wheels: list[Path], project_copy: Path, tmp_path: Path):
    output = tmp_path / "operator.zip"
    before = _build(project_copy, output)
    migration = sorted((project_copy / "sql").glob("*.sql"))[-1]
    migration.write_text(migration.read_text() + "-- one more line\n")
    after = _build(project_copy, output)
    assert after.sha256 != before.sha256
    assert hashlib.sha256(output.read_bytes()).hexdigest() == after.sha256


def test_unchanged_rebuild_leaves_the_file_alone(wheels: list[Path], project_copy: Path, tmp_path: Path):
    output = tmp_path / "build" / "operator.zip"
    _build(project_copy, output)
    os.utime(output, (1_000_000_000, 1_000_000_000))
    before = output.stat()
    _build(project_copy, output)
    after = output.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert [path.name for path in output.parent.iterdir()] == ["operator.zip"]


def test_failed_write_leaves_no_temporary_file(wheels: list[Path], project_copy: Path, tmp_path: Path):
    output = tmp_path / "build" / "operator.zip"
    output.mkdir(parents=True)  # the final rename cannot replace a directory
    with pytest.raises(OSError):
        _build(project_copy, output)
    assert [path.name for path in output.parent.iterdir()] == ["operator.zip"]


def test_fetch_uses_the_wheelhouse_without_pip(wheels: list[Path], tmp_path: Path, psycopg_version: str, no_index):
    for wheel in wheels:
        shutil.copy(wheel, tmp_path)
    assert fetch_wheels(tmp_path, psycopg_version) == [tmp_path / wheel.name for wheel in wheels]


def test_fetch_downloads_a_missing_wheel_for_the_platform(
    wheels: list[Path], tmp_path: Path, psycopg_version: str, monkeypatch: pytest.MonkeyPatch
):
    # A local index holding only the session's wheels: pip must pick the aarch64 cp313 one
    # with the platform arguments fetch_wheels passes, without the network.
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(PROJECT_ROOT / WHEELHOUSE))
    shutil.copy(wheels[0], tmp_path)
    assert fetch_wheels(tmp_path, psycopg_version) == [tmp_path / wheel.name for wheel in wheels]


def test_failed_download_is_one_line(
    wheels: list[Path], tmp_path: Path, psycopg_version: str, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(PROJECT_ROOT / WHEELHOUSE))
    with pytest.raises(OperatorPackageError) as raised:
        fetch_wheels(tmp_path, "3.3.999")
    assert str(raised.value) == (
        f"cannot download psycopg 3.3.999 wheels for {OPERATOR_PLATFORM} "
        "(pip: ERROR: No matching distribution found for psycopg==3.3.999); run ./install.sh with network access"
    )


def test_build_with_a_wheel_missing_and_no_index_fails_without_writing(
    wheels: list[Path], project_copy: Path, tmp_path: Path, psycopg_version: str, no_index
):
    wheelhouse = tmp_path / "wheelhouse"
    wheelhouse.mkdir()
    shutil.copy(wheels[1], wheelhouse)
    output = tmp_path / "operator.zip"
    with pytest.raises(OperatorPackageError) as raised:
        build_operator_archive(project_copy, wheelhouse, output)
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"cannot download psycopg {psycopg_version} wheels for {OPERATOR_PLATFORM} (pip: ERROR: ")
    assert message.endswith("); run ./install.sh with network access")
    assert not output.exists()


def test_archive_code_imports_from_the_extracted_zip(wheels: list[Path], tmp_path: Path):
    """Every dbops/seed module imports from the unpacked archive alone, and finds its sql/.

    The archive's directory goes at the END of sys.path: first (PYTHONPATH) its psycopg would
    shadow the venv's and load the aarch64 binary, which this x86_64 host cannot; psycopg
    itself is checked above, file by file against its wheels.
    """
    archive = _build(PROJECT_ROOT, tmp_path / "operator.zip")
    extracted = tmp_path / "extracted"
    with zipfile.ZipFile(archive.path) as built:
        built.extractall(extracted)
        modules = sorted(
            name.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
            for name in built.namelist()
            if name.startswith(("dbops/", "seed/")) and not name.endswith("__main__.py")
        )
    program = (
        "import importlib, sys\n"
        f"sys.path.append({str(extracted)!r})\n"
        f"for name in {modules!r}:\n"
        f"    assert importlib.import_module(name).__file__.startswith({str(extracted)!r}), name\n"
        "from dbops.migrations import load_migrations\n"
        "print(len(load_migrations()))\n"
    )
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-c", program], cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(len(list((PROJECT_ROOT / "sql").glob("*.sql"))))


def test_cli_fetches_and_builds_the_default_archive(wheels: list[Path]):
    def run(command: str) -> list[str]:
        result = subprocess.run(
            [sys.executable, "-m", "components.data.operator_package", command],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.split()

    assert run("fetch") == [str(wheel) for wheel in wheels]
    path, size, _, sha256, *_ = run("build")
    data = (PROJECT_ROOT / ARCHIVE).read_bytes()
    assert (path, int(size), sha256) == (
        str(PROJECT_ROOT / ARCHIVE),
        len(data),
        f"sha256:{hashlib.sha256(data).hexdigest()}",
    )


def test_cli_error_is_one_line(project_copy: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture):
    (project_copy / "requirements.txt").write_text("psycopg[binary]\n")
    monkeypatch.setattr(operator_package, "PROJECT_ROOT", project_copy)
    assert operator_package.main(["build"]) == 1
    assert capsys.readouterr().err == (
        f"error: {project_copy / 'requirements.txt'}: psycopg is not pinned with == ('psycopg[binary]'); "
        "pin it, e.g. psycopg[binary]==3.3.9\n"
    )
