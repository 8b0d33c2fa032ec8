"""The backend release archive: the same folder gives the same tar (its sha256 is the S3 key
and the digest the boot checks, so a no-op ``pulumi up`` must not change it), whichever
compressor packed it; complete, and free of symlinks."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
import zlib
from pathlib import Path

import pytest

from components.app.release_archive import (
    ReleaseArchive,
    ReleaseArchiveError,
    load_release,
    pack_release,
    release_digest,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = "examples/backend-release"


@pytest.fixture
def release(tmp_path: Path) -> Path:
    """A small release with a nested folder, an empty folder and an executable."""
    root = tmp_path / "release"
    (root / "lib" / "routes").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "server.js").write_text("require('./lib/app');\n")
    (root / "lib" / "app.js").write_text("module.exports = {};\n")
    (root / "lib" / "routes" / "health.js").write_text("// health\n")
    (root / "bin").mkdir()
    (root / "bin" / "migrate").write_text("#!/bin/sh\n")
    (root / "bin" / "migrate").chmod(0o700)
    return root


def members(data: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return tar.getmembers()


def test_same_folder_packs_to_the_same_bytes_even_after_touching_it(release: Path, tmp_path: Path):
    first = pack_release(release)
    assert pack_release(release) == first
    for path in [release, *release.rglob("*")]:
        os.utime(path, (1_700_000_000, 1_700_000_000))
    assert pack_release(release) == first
    # A copy elsewhere (other inode order and times, a different umask) packs the same.
    copy = tmp_path / "elsewhere" / "release"
    shutil.copytree(release, copy)
    (copy / "lib" / "app.js").chmod(0o600)
    assert pack_release(copy) == first


def test_a_changed_file_changes_the_digest(release: Path):
    before = release_digest(pack_release(release))
    (release / "lib" / "app.js").write_text("module.exports = {changed: true};\n")
    assert release_digest(pack_release(release)) != before


def test_archive_lists_exactly_the_folder_with_fixed_headers(release: Path):
    data = pack_release(release)
    entries = members(data)
    expected = sorted(path.relative_to(release).as_posix() for path in release.rglob("*"))
    assert [m.name for m in entries] == expected
    modes = {m.name: m.mode for m in entries}
    assert modes["bin/migrate"] == 0o755
    assert modes["lib"] == modes["empty"] == 0o755
    assert modes["server.js"] == modes["lib/app.js"] == 0o644
    for m in entries:
        assert (m.uid, m.gid, m.uname, m.gname, m.mtime) == (0, 0, "", "", 0), m.name
        assert m.isdir() or m.isfile(), m.name
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        assert tar.extractfile("lib/routes/health.js").read() == b"// health\n"


def test_gzip_header_holds_no_time_and_no_file_name(release: Path):
    data = pack_release(release)
    flags, mtime = data[3], int.from_bytes(data[4:8], "little")
    fname_flag = 0x08
    assert (flags & fname_flag, mtime) == (0, 0)
    assert gzip.decompress(data)  # and it is a complete gzip stream


def test_symlinks_are_refused_with_one_line(release: Path):
    (release / "lib" / "link.js").symlink_to(release / "lib" / "app.js")
    with pytest.raises(ReleaseArchiveError) as error:
        pack_release(release)
    assert "lib/link.js is a symlink" in str(error.value)
    assert "\n" not in str(error.value)


def test_symlinked_directory_is_refused_not_followed(release: Path, tmp_path: Path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("not part of the release\n")
    (release / "vendor").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ReleaseArchiveError, match="vendor is a symlink"):
        pack_release(release)


def test_the_example_release_packs(tmp_path: Path):
    archive = load_release(PROJECT_ROOT, EXAMPLE)
    names = [m.name for m in members(archive.data)]
    top = [name for name in names if "/" not in name]
    assert top == ["README.md", "node_modules", "package-lock.json", "package.json", "server.js"]
    # The packages the lockfile pins, vendored (the instance runs no npm), without optional native addons.
    lock = json.loads((PROJECT_ROOT / EXAMPLE / "package-lock.json").read_text())
    required = {
        path for path, entry in lock["packages"].items() if path and not entry.get("optional") and not entry.get("dev")
    }
    assert {name for name in names if name in required} == required
    assert not [name for name in names if name.endswith(".node")]
    assert archive.sha256 == hashlib.sha256(gzip.decompress(archive.data)).hexdigest()
    assert archive.key == f"releases/{archive.sha256}.tar.gz"
    assert archive == ReleaseArchive(pack_release(PROJECT_ROOT / EXAMPLE))


def test_a_tar_gz_artifact_is_taken_byte_for_byte_and_named_by_its_tar(tmp_path: Path):
    tar = b"a tar built elsewhere"
    built = gzip.compress(tar, compresslevel=6, mtime=1_700_000_000)
    (tmp_path / "dist").mkdir()
    (tmp_path / "dist" / "backend.tar.gz").write_bytes(built)
    archive = load_release(tmp_path, "dist/backend.tar.gz")
    assert archive.data == built
    assert archive.key == f"releases/{hashlib.sha256(tar).hexdigest()}.tar.gz"


def test_the_same_folder_has_the_same_key_under_two_compression_levels(release: Path):
    fastest, smallest = pack_release(release, compresslevel=1), pack_release(release, compresslevel=9)
    assert fastest != smallest  # different bytes on the wire ...
    assert ReleaseArchive(fastest).key == ReleaseArchive(smallest).key  # ... one release
    assert ReleaseArchive(fastest).sha256 == hashlib.sha256(gzip.decompress(smallest)).hexdigest()


def test_the_same_tar_from_another_compressor_has_the_same_key(release: Path):
    """Another deflate implementation (raw zlib, other window and strategy) wrapped as gzip."""
    tar = gzip.decompress(pack_release(release))
    deflate = zlib.compressobj(level=5, wbits=31, memLevel=3, strategy=zlib.Z_FILTERED)
    other = deflate.compress(tar) + deflate.flush()
    assert other != pack_release(release)
    assert ReleaseArchive(other).key == ReleaseArchive(pack_release(release)).key


def test_an_artifact_that_is_not_gzip_is_refused_in_one_line(tmp_path: Path):
    (tmp_path / "backend.tar.gz").write_bytes(b"PK\x03\x04 a zip file")
    with pytest.raises(ReleaseArchiveError) as error:
        load_release(tmp_path, "backend.tar.gz")
    assert str(error.value) == (
        "the release is not a complete gzip stream (Not a gzipped file (b'PK')); build the .tar.gz again"
    )


@pytest.mark.parametrize("artifact", ["missing", "notes.txt"])
def test_other_artifacts_are_refused(tmp_path: Path, artifact: str):
    (tmp_path / "notes.txt").write_text("not a release\n")
    with pytest.raises(ReleaseArchiveError, match="neither a build folder nor a .tar.gz archive"):
        load_release(tmp_path, artifact)


def test_a_release_with_dependencies_but_no_node_modules_is_refused(tmp_path: Path):
    shutil.copy(PROJECT_ROOT / EXAMPLE / "package.json", tmp_path / "package.json")
    (tmp_path / "server.js").write_text("require('express')")
    with pytest.raises(ReleaseArchiveError) as refused:
        pack_release(tmp_path)
    assert str(refused.value) == (
        f"{tmp_path} has dependencies in package.json but no node_modules; the instance installs none"
        " (fix: npm ci in it, as examples/vendor-backend-release.sh does for the reference backend)"
    )
