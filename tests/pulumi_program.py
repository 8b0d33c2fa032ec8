"""Test helpers around ``ops.rehearsal.mock_program`` (which runs ``__main__.py`` under Pulumi's mocks):
its names re-exported for the tests, ways to look inside the recorded inputs, and the
release packed once per content for the many runs of a session.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import rpc

from components.app import release_archive
from ops.rehearsal.mock_program import (  # noqa: F401  (re-exported for the tests)
    ACCOUNT,
    ALB_DNS_NAME,
    AMI_ID,
    APP_PASSWORD_PREFIX,
    CERTIFICATE_ARN_PREFIX,
    CLOUDFRONT_DOMAIN,
    CLOUDFRONT_ZONE_ID,
    DATADOG_AGENT_KEY,
    DATADOG_IAM_PERMISSIONS,
    DATADOG_TOKEN_VARIABLE_ID,
    DB_ADDRESS,
    ELB_ACCOUNT,
    MASTER_PASSWORD,
    MASTER_SECRET_ARN,
    OPERATOR_ARN_PREFIX,
    PROJECT_ROOT,
    RELEASE_AMI_ID,
    VPC_ORIGINS_SECURITY_GROUP_ID,
    ProgramRun,
    RecordingMocks,
    RecordingMonitor,
    run_program,
    stack_config,
)


def plain_values(value: Any) -> list[str]:
    """Every string in ``value`` that is not inside a secret."""
    if rpc.is_rpc_secret(value):
        return []
    if isinstance(value, dict):
        return [s for v in value.values() for s in plain_values(v)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in plain_values(v)]
    return [value] if isinstance(value, str) else []


def is_secret(value: Any) -> bool:
    return rpc.is_rpc_secret(value)


def unwrap(value: Any) -> Any:
    return rpc.unwrap_rpc_secret(value) if rpc.is_rpc_secret(value) else value


def unwrap_all(value: Any) -> Any:
    """``value`` with every secret wrapper removed, at any depth; an archive or asset as
    ``(kind, path)``, so two runs declaring the same file compare equal."""
    value = unwrap(value)
    if isinstance(value, (pulumi.Archive, pulumi.Asset)):
        return (type(value).__name__, getattr(value, "path", None))
    if isinstance(value, dict):
        return {k: unwrap_all(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [unwrap_all(v) for v in value]
    return value


# --- the backend release, packed once per content -------------------------------------------


def _release_fingerprint(directory: Path) -> str | None:
    """A digest of everything ``pack_release`` reads from ``directory``: each entry's path,
    kind, executable bit and content. None for anything it refuses (a symlink, a device, no
    folder at all), so that the real function runs and says why (as for an unreadable file)."""
    if not directory.is_dir():
        return None
    digest = hashlib.sha256()
    prefix = len(os.path.join(directory, ""))
    pending = [directory]
    while pending:
        with os.scandir(pending.pop()) as scan:
            for entry in sorted(scan, key=lambda e: e.name):
                name = entry.path[prefix:].encode()  # relative to the release folder
                if entry.is_symlink():
                    return None
                if entry.is_dir():
                    pending.append(Path(entry.path))
                    digest.update(b"d\0" + name + b"\0")
                elif entry.is_file():
                    executable = entry.stat().st_mode & stat.S_IXUSR
                    content = hashlib.sha256(Path(entry.path).read_bytes()).digest()
                    digest.update(b"f\0" + name + b"\0" + (b"x" if executable else b"-") + content)
                else:
                    return None
    return digest.hexdigest()


@contextmanager
def packing_each_release_once() -> Iterator[None]:
    """While open, ``load_release`` (and so every program run) packs a release folder once per
    content and reuses the bytes: gzip -9 of the example release is half of a program run.
    The bytes are those ``pack_release`` gave for the very same files, so nothing a test sees
    changes; tests that call ``pack_release`` themselves imported the real one."""
    real = release_archive.pack_release
    packed: dict[tuple[str, int], bytes] = {}

    def pack_release(directory: Path, compresslevel: int = release_archive.GZIP_LEVEL) -> bytes:
        try:
            fingerprint = _release_fingerprint(Path(directory))
        except OSError:
            fingerprint = None
        if fingerprint is None:
            return real(directory, compresslevel)
        key = (fingerprint, compresslevel)
        if key not in packed:
            packed[key] = real(directory, compresslevel)
        return packed[key]

    release_archive.pack_release = pack_release
    try:
        yield
    finally:
        release_archive.pack_release = real
