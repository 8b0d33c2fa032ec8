"""``swipesavvy:backend``: the API's instances, their image, release and rollout."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.config.project_files import _dotfiles, _project_path, _refuse_unshippable
from components.config.section import MAX_ROTATION, _fail, _Section
from components.refresh_timing import MAX_TIMEOUT_SECONDS, max_warmup_seconds, refresh_timeout

LOG_LEVELS = ("error", "warn", "info", "debug")
_GRAVITON = re.compile(r"^[a-z]+\d+g[a-z]*\.")
_EC2_INSTANCE_TYPE = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")
# An existing release is named by its content: the boot script checks the digest.
# An Amazon Linux 2023 release: Amazon's image name for one dated release, kernel and
# architecture (al2023-ami-2023.12.20260930.0-kernel-6.1-arm64); resolved by name among
# Amazon's own images, so it names the same image in every region and never floats.
_AL2023_RELEASE = re.compile(r"^al2023-ami-2023\.\d+\.\d{8}\.\d+-kernel-\d+\.\d+-(?P<arch>arm64|x86_64)\Z")
# An AMI id (8 or 17 hex digits, EC2 API reference: Image), such a release, or "latest".
_AMI = re.compile(rf"^(ami-([0-9a-f]{{8}}|[0-9a-f]{{17}})|latest|{_AL2023_RELEASE.pattern[1:-2]})\Z")
LATEST_AMI = "latest"
AL2023_RELEASE_EXAMPLE = "al2023-ami-2023.12.20260930.0-kernel-6.1-{architecture}"
_S3_URI = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/releases/[0-9a-f]{64}\.tar\.gz$")


@dataclass(frozen=True)
class BackendConfig:
    """The API service (runbook phase 3): a release archive run by systemd on EC2 behind an ALB."""

    artifact: str  # a build folder or .tar.gz under the project root, or s3://bucket/releases/<sha256>.tar.gz
    dotfiles: tuple[str, ...] = ()  # dotfiles (or folders) the release may hold: see _shipped_problem
    instance_type: str = "t4g.small"
    instance_count: int = 1
    root_volume_gib: int = 20
    health_check_grace_seconds: int = 600  # cloud-init installs Node.js and the release first
    log_level: str = "info"
    # The instances' image: an AMI id, or "latest" (Amazon Linux 2023's public SSM parameter for
    # the architecture). A different image is a new launch template version: it rolls every
    # instance, so with "latest" the next `pulumi up` after an Amazon Linux release does.
    ami: str = LATEST_AMI
    # How many times the API's bearer tokens were rotated: one more rotates them, the previous
    # ones still accepted until the next rotation (components/data/credential_slots.py).
    api_token_rotation: int = 0

    @property
    def architecture(self) -> str:
        """arm64 for Graviton instance families (t4g, m7g, c7gn ...), x86_64 otherwise."""
        return "arm64" if _GRAVITON.match(self.instance_type) else "x86_64"

    @property
    def ami_release(self) -> str | None:
        """``ami`` when it names an Amazon Linux 2023 release (resolved by name), else None."""
        return self.ami if _AL2023_RELEASE.match(self.ami) else None

    @property
    def artifact_is_s3(self) -> bool:
        return self.artifact.startswith("s3://")


def _health_check_grace(s: _Section, default: int) -> int:
    """The grace is also the rollout's instance warmup: refused when the refresh it makes could
    not finish within the wait one `pulumi up` has for it (components/refresh_timing.py)."""
    instances = s.integer("instanceCount", BackendConfig.instance_count, 1, 20)
    grace = s.integer("healthCheckGraceSeconds", default, 60, 3600, " s")
    longest = max_warmup_seconds(instances)
    if grace > longest:
        needed = refresh_timeout(instances, grace) // 60
        raise _fail(
            s.path("healthCheckGraceSeconds"),
            grace,
            f"it is the rollout's instance warmup, so a rollout would need up to {needed} min, more than the"
            f" {MAX_TIMEOUT_SECONDS // 60} min one `pulumi up` waits for it: at most {longest} s",
            longest,
        )
    return grace


def parse_backend(raw: Any, project_root: Path, environment: str = "staging") -> BackendConfig | None:
    if raw is None:
        return None
    s = _Section("backend", raw)
    d = BackendConfig(artifact="")  # pragma: no mutate (d supplies defaults only; artifact is required)
    artifact = s.get("artifact", None)
    if not (isinstance(artifact, str) and _S3_URI.match(artifact)):
        artifact = _project_path(
            s,
            "artifact",
            project_root,
            "must be a release (a build folder or a .tar.gz archive) under the project root, or an uploaded"
            " release s3://bucket/releases/<sha256>.tar.gz",
            "examples/backend-release",
        )
        release = project_root / artifact
        if not (release.is_dir() or (release.is_file() and artifact.endswith((".tar.gz", ".tgz")))):
            raise _fail(
                s.path("artifact"), artifact, "must be a build folder or a .tar.gz archive", "examples/backend-release"
            )
    dotfiles = _dotfiles(s)
    if not artifact.startswith("s3://"):
        _refuse_unshippable(s, "artifact", artifact, project_root, dotfiles)
    config = BackendConfig(
        artifact=artifact,
        dotfiles=dotfiles,
        instance_type=s.text(
            "instanceType",
            d.instance_type,
            _EC2_INSTANCE_TYPE,
            "must be an EC2 instance type like t4g.small",
            d.instance_type,  # pragma: no mutate (the example is the default, which text() falls back to)
        ),
        instance_count=s.integer("instanceCount", d.instance_count, 1, 20),
        root_volume_gib=s.integer("rootVolumeGib", d.root_volume_gib, 8, 500, " GiB"),
        health_check_grace_seconds=_health_check_grace(s, d.health_check_grace_seconds),
        log_level=s.choice("logLevel", d.log_level, LOG_LEVELS),
        ami=s.text(
            "ami",
            d.ami,
            _AMI,
            "must be an AMI id (ami- and 8 or 17 hex digits), an Amazon Linux 2023 release"
            " (al2023-ami-2023.<version>-kernel-<kernel>-<arm64|x86_64>) or latest (the newest Amazon Linux 2023)",
            AL2023_RELEASE_EXAMPLE.format(architecture="arm64"),
        ),
        api_token_rotation=s.integer("apiTokenRotation", d.api_token_rotation, 0, MAX_ROTATION),
    )
    s.finish()
    _require_pinned_ami(s, config, environment)
    return config


def _require_pinned_ami(s: _Section, config: BackendConfig, environment: str) -> None:
    """A release of the instances' architecture; in production a pinned image, never latest."""
    example = AL2023_RELEASE_EXAMPLE.format(architecture=config.architecture)
    release = _AL2023_RELEASE.match(config.ami)
    if release and release["arch"] != config.architecture:
        raise _fail(
            s.path("ami"),
            config.ami,
            f"is an {release['arch']} image and backend.instanceType {config.instance_type} runs {config.architecture}",
            example,
        )
    if config.ami == LATEST_AMI and environment == "production":
        raise _fail(
            s.path("ami"),
            config.ami,
            "production pins its image (an AMI id or an Amazon Linux 2023 release name): latest rolls every"
            " instance whenever Amazon publishes a release",
            example,
        )
