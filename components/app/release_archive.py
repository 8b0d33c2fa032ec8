"""The backend release as a reproducible .tar.gz (no Pulumi).

A release is named by its **digest**: the sha256 of the uncompressed tar. Pulumi uploads
the .tar.gz as the S3 object ``releases/<digest>.tar.gz``, the launch template's user data
names that digest, and the boot script decompresses the download, checks the tar's sha256
against it and unpacks exactly the bytes it checked. The digest does not depend on the
compressor: the same folder packed by another zlib (a laptop's, CI's) or at another level
has the same key, so it neither uploads a new object nor rolls the instances.

So the same folder must give the same tar: entries are sorted, and everything the file
system would otherwise leak into the archive (timestamps, owners, umask) is fixed, as are
the gzip header's time and file name.

Layout: the folder's contents sit at the archive root, no top-level prefix, so the boot
script unpacks an archive straight into its release directory. A ``.tar.gz`` artifact
given instead of a folder must follow the same layout (``server.js`` at the root).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import stat
import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz")
FILE_MODE = 0o644
EXECUTABLE_MODE = 0o755  # executables and directories
GZIP_LEVEL = 9
RELEASES_PREFIX = "releases/"  # every release object: content-addressed, never overwritten


class ReleaseArchiveError(Exception):
    """One line naming the offending path and the fix."""


@dataclass(frozen=True)
class ReleaseArchive:
    data: bytes = field(repr=False)
    """The .tar.gz as uploaded."""
    sha256: str = field(init=False)
    """The release's digest: sha256 of the uncompressed tar (``release_digest``)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha256", release_digest(self.data))

    @property
    def key(self) -> str:
        """The S3 object key: content-addressed, so a new release never overwrites an old one."""
        return f"{RELEASES_PREFIX}{self.sha256}.tar.gz"


def release_digest(data: bytes) -> str:
    """sha256 of the tar inside the .tar.gz ``data``: what the boot script checks after
    ``gzip -dc``, the same whichever compressor made ``data``."""
    try:
        tar = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as error:
        raise ReleaseArchiveError(
            f"the release is not a complete gzip stream ({error}); build the .tar.gz again"
        ) from None
    return hashlib.sha256(tar).hexdigest()


def _entries(directory: Path) -> list[tuple[str, Path]]:
    """Every file and directory below ``directory`` as (POSIX path relative to it, path),
    sorted by that relative path. Anything else is refused: a symlink could point outside
    the release (or nowhere on the instance), and devices or sockets are no release content."""
    found = []
    pending = [directory]
    while pending:
        with os.scandir(pending.pop()) as scan:
            for entry in scan:
                path = Path(entry.path)
                name = path.relative_to(directory).as_posix()
                if entry.is_symlink():
                    raise ReleaseArchiveError(
                        f"{path} is a symlink; a release holds regular files and directories only (copy its target instead)"
                    )
                if entry.is_dir():
                    pending.append(path)
                elif not entry.is_file():
                    raise ReleaseArchiveError(
                        f"{path} is not a regular file or directory; remove it from the release folder"
                    )
                found.append((name, path))
    return sorted(found)


def _tar_info(name: str, path: Path) -> tarfile.TarInfo:
    """A header carrying nothing from the build machine but the name, type, size and
    whether the file is executable."""
    status = path.lstat()
    mode = status.st_mode
    info = tarfile.TarInfo(name)
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = 0
    if stat.S_ISDIR(mode):
        info.type = tarfile.DIRTYPE
        info.mode = EXECUTABLE_MODE
    else:
        info.size = status.st_size
        info.mode = EXECUTABLE_MODE if mode & stat.S_IXUSR else FILE_MODE
    return info


def _require_vendored_packages(directory: Path) -> None:
    """A Node.js release with dependencies must carry its node_modules: the instance runs no npm."""
    manifest = directory / "package.json"
    if not manifest.is_file() or (directory / "node_modules").is_dir():
        return
    try:
        dependencies = json.loads(manifest.read_text()).get("dependencies")
    except (ValueError, AttributeError):
        return  # not ours to judge: the release's own start fails loudly
    if dependencies:
        raise ReleaseArchiveError(
            f"{directory} has dependencies in package.json but no node_modules; the instance installs none"
            " (fix: npm ci in it, as examples/vendor-backend-release.sh does for the reference backend)"
        )


def pack_release(directory: Path, compresslevel: int = GZIP_LEVEL) -> bytes:
    """The folder's files and directories as a .tar.gz whose tar is byte-reproducible (see
    the module doc); with one zlib and level, the .tar.gz is too."""
    if not directory.is_dir():
        raise ReleaseArchiveError(f"{directory} is not a folder; name the release's build folder")
    _require_vendored_packages(directory)
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, path in _entries(directory):
            info = _tar_info(name, path)
            if info.isdir():
                tar.addfile(info)
            else:
                with path.open("rb") as content:
                    tar.addfile(info, content)
    compressed = io.BytesIO()
    # filename="" and mtime=0: the gzip header would otherwise hold a name and the time of packing.
    with gzip.GzipFile(filename="", mode="wb", fileobj=compressed, compresslevel=compresslevel, mtime=0) as gz:
        gz.write(tar_bytes.getvalue())
    return compressed.getvalue()


def load_release(project_root: Path, artifact: str) -> ReleaseArchive:
    """The release named by ``swipesavvy:backend.artifact``: a build folder (packed here) or a
    .tar.gz under the project root (uploaded byte for byte as it is, named by its tar's digest)."""
    path = project_root / artifact
    if path.is_dir():
        return ReleaseArchive(pack_release(path))
    if path.is_file() and artifact.endswith(ARCHIVE_SUFFIXES):
        return ReleaseArchive(path.read_bytes())
    raise ReleaseArchiveError(
        f"{path} is neither a build folder nor a .tar.gz archive; set swipesavvy:backend.artifact to one"
    )
