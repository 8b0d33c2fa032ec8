"""What a backend instance runs at boot, built as data and serialized (no Pulumi).

An Amazon Linux 2023 instance gets one cloud-config as user data. cloud-init creates the
service user, installs Node.js 22, writes the systemd unit and the install script, and runs
the script, which downloads the release from S3, checks its digest (the sha256 of the
uncompressed tar), unpacks it, writes the environment file from Secrets Manager (with
``DB_SSLMODE=verify-full`` and ``DB_SSLROOTCERT`` naming the RDS CA bundle) and starts the
service. The bundle is the region's RDS CAs, shipped in the user data (components/rds_ca.py),
not fetched.

No secret value is in the user data or in anything rendered here: it holds only the
secrets' ARNs, and the instance role reads the values at boot. The database secret is the
login's RDS-shaped JSON (engine, host, port, dbname, username, password).

Module order that matters (cloud-init 22.4, ``cloud.cfg``): ``write_files`` runs in the
init stage, before ``users-groups``; ``packages`` then ``runcmd`` run in the final stage.
Everything written here is owned by root, so nothing needs ``defer: true``; the one file
the service user owns, the env file, is created by the script.
"""

from __future__ import annotations

import base64
import inspect
import json
import re
import shlex
from dataclasses import dataclass

import yaml

from components import agent_config
from components.config import LOG_LEVELS
from components.observability.agent_config import AgentSettings
from components.rds_ca import INSTANCE_BUNDLE, region_bundle

SERVICE = "swipesavvy-backend"
SERVICE_USER = "swipesavvy"
BACKEND_LOGIN = "swipesavvy_backend"  # the database login whose secret the script reads (slot a)
NODE_ENVS = ("staging", "production")

UNIT_PATH = f"/etc/systemd/system/{SERVICE}.service"
INSTALL_SCRIPT_PATH = f"/usr/local/sbin/{SERVICE}-install"
ENV_FILE = "/etc/swipesavvy/backend.env"
# The RDS CA bundle node-postgres verifies the server against (sslmode verify-full). Under
# /etc, root's and world-readable: the unit's ProtectSystem=strict leaves /etc readable, and
# ProtectHome/PrivateTmp would hide it under /home, /root or /tmp.
RDS_CA_BUNDLE = INSTANCE_BUNDLE
DB_SSLMODE = "verify-full"  # RDS forces TLS (rds.force_ssl); verify-full also checks the host name
BACKEND_DIR = "/opt/swipesavvy/backend"  # releases/<sha256>/ and the `current` symlink
# AL2023's nodejs22 package installs versioned binaries; the unversioned name may be absent.
PACKAGES = ("nodejs22", "nodejs22-npm")
NODE = "/usr/bin/node-22"
ENTRYPOINT = "server.js"

# EC2 refuses user data over 16 KiB before base64: fail at preview, not at launch.
USER_DATA_LIMIT = 16 * 1024

_SHA256 = re.compile(r"[0-9a-f]{64}")
_SECRET_ARN = re.compile(r"arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d")
_LOGIN = re.compile(r"[a-z_][a-z0-9_]{0,62}")


@dataclass(frozen=True)
class BootSettings:
    """Everything the boot needs; all of it may be read by anyone who can read user data."""

    region: str
    release_uri: str  # s3://<bucket>/releases/<release_sha256>.tar.gz
    release_sha256: str  # the release's digest: sha256 of the uncompressed tar
    db_secret_arn: str  # RDS JSON of the swipesavvy_backend login
    node_env: str
    log_level: str = "info"
    api_port: int = 8080
    db_pool_size: int = 20
    feature_flags_enabled: bool = True
    feature_flags_cache_ttl: int = 300  # seconds
    sentry_dsn_secret_arn: str | None = None  # a plain-string secret; SENTRY_DSN is empty without it
    api_tokens_secret_arn: str | None = None  # JSON {"api_token", "admin_token"[, "next_...", "previous_..."]}
    db_login: str = BACKEND_LOGIN  # the slot of the backend's login in use (components/data/credential_slots.py)
    agent: AgentSettings | None = None  # the Datadog agent (components/observability/agent_config.py), when monitored

    def __post_init__(self) -> None:
        # The digest becomes a directory name and the ARNs land in a shell script: check them
        # here so a wrong value stops the preview, not the instance's boot.
        _require(_REGION.fullmatch(self.region), "region", self.region, "an AWS region like eu-central-1")
        _require(_SHA256.fullmatch(self.release_sha256), "release_sha256", self.release_sha256, "64 lowercase hex")
        _require(
            re.fullmatch(rf"s3://[^/]+/releases/{self.release_sha256}\.tar\.gz", self.release_uri),
            "release_uri",
            self.release_uri,
            "s3://<bucket>/releases/<release_sha256>.tar.gz",
        )
        for name in ("db_secret_arn", "sentry_dsn_secret_arn", "api_tokens_secret_arn"):
            value = getattr(self, name)
            if value is not None:
                _require(_SECRET_ARN.fullmatch(value), name, value, "a Secrets Manager secret ARN")
        _require(self.node_env in NODE_ENVS, "node_env", self.node_env, " or ".join(NODE_ENVS))
        _require(
            _LOGIN.fullmatch(self.db_login), "db_login", self.db_login, "a PostgreSQL login like swipesavvy_backend"
        )
        _require(self.log_level in LOG_LEVELS, "log_level", self.log_level, ", ".join(LOG_LEVELS))


def _require(ok: object, name: str, value: object, allowed: str) -> None:
    if not ok:
        raise ValueError(f"BootSettings.{name} = {value!r} is invalid: must be {allowed}")


# --- the systemd unit ------------------------------------------------------------------------

_UNIT = (
    (
        "Unit",
        (
            ("Description", "SwipeSavvy backend API"),
            ("After", "network-online.target"),
            ("Wants", "network-online.target"),
        ),
    ),
    (
        "Service",
        (
            ("Type", "exec"),  # a missing binary fails the start instead of a later restart loop
            ("User", SERVICE_USER),
            ("Group", SERVICE_USER),
            ("EnvironmentFile", ENV_FILE),
            ("WorkingDirectory", f"{BACKEND_DIR}/current"),
            ("ExecStart", f"{NODE} {ENTRYPOINT}"),
            ("Restart", "on-failure"),
            ("RestartSec", "5"),
            # Sandboxing: the API only needs its release (read-only), /tmp and the network.
            # Never MemoryDenyWriteExecute: V8's JIT needs writable executable memory.
            ("NoNewPrivileges", "yes"),
            ("ProtectSystem", "strict"),
            ("ProtectHome", "yes"),
            ("PrivateTmp", "yes"),
            ("PrivateDevices", "yes"),
            ("PrivateMounts", "yes"),
            ("ProtectKernelTunables", "yes"),
            ("ProtectKernelModules", "yes"),
            ("ProtectKernelLogs", "yes"),
            ("ProtectControlGroups", "yes"),
            ("ProtectClock", "yes"),
            ("ProtectHostname", "yes"),
            ("ProtectProc", "invisible"),
            ("RestrictNamespaces", "yes"),
            ("RestrictSUIDSGID", "yes"),
            ("RestrictRealtime", "yes"),
            ("RemoveIPC", "yes"),
            ("LockPersonality", "yes"),
            ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
            ("SystemCallArchitectures", "native"),
            ("SystemCallFilter", "@system-service"),
            ("CapabilityBoundingSet", ""),  # port 8080 needs no capability
            ("UMask", "0077"),
        ),
    ),
    ("Install", (("WantedBy", "multi-user.target"),)),
)


def render_unit() -> str:
    """``swipesavvy-backend.service``. Nothing in it depends on the stack: per-stack values
    reach the service through the env file."""
    return "\n".join(
        f"[{section}]\n" + "".join(f"{key}={value}\n" for key, value in entries) for section, entries in _UNIT
    )


# --- the install script ----------------------------------------------------------------------

_SCRIPT_PROLOGUE = f"""\
#!/bin/bash
# {SERVICE}-install: installs the backend release and its environment, then starts the
# service. Rendered by components/app/backend_boot.py and run by cloud-init (runcmd) at first
# boot; running it again changes nothing. Secrets are read here, never printed (no set -x).
set -euo pipefail
umask 022

"""

_SCRIPT_BODY = r"""
export AWS_DEFAULT_REGION
# Tests install under a scratch directory; on an instance SWIPESAVVY_ROOT is unset, i.e. /.
ROOT="${SWIPESAVVY_ROOT:-}"
backend_dir="$ROOT$BACKEND_DIR"
release_dir="$backend_dir/releases/$RELEASE_SHA256"
env_file="$ROOT$ENV_FILE"
incoming=""
env_incoming=""

cleanup() {
  for path in "$incoming" "$env_incoming"; do
    [ -z "$path" ] || rm -rf -- "$path"
  done
}
trap cleanup EXIT

fail() {
  echo "$SERVICE-install: $*" >&2
  exit 1
}

read_secret() {
  aws secretsmanager get-secret-value --secret-id "$1" --query SecretString --output text
}

# Reads the login's RDS JSON on stdin and writes the env file named by argv[1], with
# render_environment (components/app/backend_boot.py, its source copied here): nothing is
# expanded, split or echoed by the shell.
WRITE_ENVIRONMENT=$(cat <<'PYTHON'
@ENVIRONMENT_WRITER@
PYTHON
)

install_release() {
  if [ -d "$release_dir" ]; then
    return # unpacked by an earlier run, after its digest matched
  fi
  mkdir -p "$backend_dir/releases"
  incoming=$(mktemp -d "$backend_dir/releases/.incoming.XXXXXX")
  aws s3 cp --only-show-errors "$RELEASE_URI" "$incoming/release.tar.gz"
  # The digest is the uncompressed tar's (components/app/release_archive.py): checked on the
  # very bytes tar unpacks, whichever compressor made the download.
  if ! gzip -dc "$incoming/release.tar.gz" >"$incoming/release.tar"; then
    fail "$RELEASE_URI is not a gzip archive: refusing to install it"
  fi
  actual=$(sha256sum "$incoming/release.tar" | cut -d ' ' -f 1)
  if [ "$actual" != "$RELEASE_SHA256" ]; then
    fail "$RELEASE_URI holds a tar with sha256 $actual, not $RELEASE_SHA256: refusing to install it"
  fi
  mkdir "$incoming/release"
  tar -xf "$incoming/release.tar" -C "$incoming/release" --no-same-owner
  if [ ! -f "$incoming/release/$ENTRYPOINT" ]; then
    fail "$RELEASE_URI has no $ENTRYPOINT at its root: refusing to install it"
  fi
  # One rename: a release directory is complete or absent, which the check above relies on.
  mv -T "$incoming/release" "$release_dir"
}

point_current() {
  # A new link renamed over the old one: `current` always names a complete release.
  ln -sfn "releases/$RELEASE_SHA256" "$backend_dir/current.new"
  mv -fT "$backend_dir/current.new" "$backend_dir/current"
}

write_environment() {
  sentry_dsn=""
  if [ -n "$SENTRY_DSN_SECRET_ARN" ]; then
    sentry_dsn=$(read_secret "$SENTRY_DSN_SECRET_ARN")
  fi
  api_tokens=""
  if [ -n "$API_TOKENS_SECRET_ARN" ]; then
    api_tokens=$(read_secret "$API_TOKENS_SECRET_ARN")
  fi
  mkdir -p "$(dirname "$env_file")"
  # Written next to the env file and renamed over it, under umask 077 from before the file
  # exists: never readable by others, never half-written.
  umask 077
  env_incoming=$(mktemp "$env_file.XXXXXX")
  read_secret "$DB_SECRET_ARN" |
    SENTRY_DSN="$sentry_dsn" API_TOKENS="$api_tokens" python3 -c "$WRITE_ENVIRONMENT" "$env_incoming" "$BACKEND_LOGIN" "$FIXED_ENVIRONMENT"
  chown "$SERVICE_USER:$SERVICE_USER" "$env_incoming"
  mv -f "$env_incoming" "$env_file"
  env_incoming=""
  umask 022
}

start_service() {
  systemctl daemon-reload
  systemctl enable --now "$SERVICE"
}

install_release
point_current
write_environment
start_service
echo "$SERVICE-install: release $RELEASE_SHA256 installed, $SERVICE enabled"
"""


def render_environment(secret_text: str, login: str, fixed: dict, sentry_dsn: str, api_tokens_text: str) -> str:
    """The env file's text from the login's RDS JSON secret, the fixed settings, the Sentry
    DSN and the API tokens secret (JSON ``{"api_token", "admin_token"}``, and the pairs also
    accepted: ``next_api_token``/``next_admin_token``, after a rotation ``previous_...``; or ""
    for none);
    ValueError names what is wrong. Its source runs on the instance too (the install
    script's writer, the AMI's python3), and ``ops rehearse`` calls it: one contract.
    Quoting follows systemd.exec(5), EnvironmentFile=: in double quotes, a backslash
    escapes \\ " $ and `."""
    import json

    try:
        secret = json.loads(secret_text)
        database = {
            "DB_HOST": secret["host"],
            "DB_PORT": str(secret["port"]),
            "DB_NAME": secret["dbname"],
            "DB_USER": secret["username"],
            "DB_PASSWORD": secret["password"],
        }
    except (ValueError, TypeError, KeyError):
        raise ValueError("the database secret is not RDS JSON with host, port, dbname, username and password") from None
    if database["DB_USER"] != login:
        raise ValueError(f"the database secret is for login {database['DB_USER']!r}, not {login!r}")
    tokens = {}
    if api_tokens_text:
        try:
            given = json.loads(api_tokens_text)
            tokens = {"API_TOKEN": given["api_token"], "ADMIN_TOKEN": given["admin_token"]}
            for pair in ("previous", "next"):  # also accepted (a rotation's overlap): both or neither
                api, admin = f"{pair}_api_token", f"{pair}_admin_token"
                if api in given or admin in given:
                    tokens |= {f"{pair.upper()}_API_TOKEN": given[api], f"{pair.upper()}_ADMIN_TOKEN": given[admin]}
        except (ValueError, TypeError, KeyError):
            raise ValueError(
                "the API tokens secret is not JSON with api_token and admin_token"
                " (and both previous_ ones or neither, both next_ ones or neither)"
            ) from None
    values = dict(database, **fixed, SENTRY_DSN=sentry_dsn, **tokens)

    def quoted(value: str) -> str:
        return '"' + "".join("\\" + c if c in '\\"$`' else c for c in value) + '"'

    return "".join(f"{name}={quoted(value)}\n" for name, value in values.items())


_ENVIRONMENT_WRITER = f"""\
import json
import os
import sys

{inspect.getsource(render_environment)}
path, login, fixed = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
try:
    text = render_environment(sys.stdin.read(), login, fixed, os.environ["SENTRY_DSN"], os.environ["API_TOKENS"])
except ValueError as error:
    sys.exit(str(error))
with open(path, "w", encoding="utf-8") as env:
    env.write(text)
"""


def fixed_environment(settings: BootSettings) -> dict[str, str]:
    """The env file's settings that are not secret, in the order they are written."""
    fixed = {
        "DB_POOL_SIZE": str(settings.db_pool_size),
        "API_PORT": str(settings.api_port),
        "NODE_ENV": settings.node_env,
        "LOG_LEVEL": settings.log_level,
        "FEATURE_FLAGS_ENABLED": "true" if settings.feature_flags_enabled else "false",
        "FEATURE_FLAGS_CACHE_TTL": str(settings.feature_flags_cache_ttl),
        # node-postgres: TLS, the server's certificate checked against the RDS CA bundle
        # and its name against DB_HOST (the backend passes both to pg's `ssl` option).
        "DB_SSLMODE": DB_SSLMODE,
        "DB_SSLROOTCERT": RDS_CA_BUNDLE,
    }
    if settings.agent is not None:
        # dd-trace's unified service tags: traces carry the same env/service/version as the host.
        fixed |= {"DD_ENV": settings.agent.env, "DD_SERVICE": SERVICE, "DD_VERSION": settings.agent.version}
    return fixed


def _script_variables(settings: BootSettings) -> dict[str, str]:
    return {
        "AWS_DEFAULT_REGION": settings.region,
        "RELEASE_URI": settings.release_uri,
        "RELEASE_SHA256": settings.release_sha256,
        "DB_SECRET_ARN": settings.db_secret_arn,
        "SENTRY_DSN_SECRET_ARN": settings.sentry_dsn_secret_arn or "",
        "API_TOKENS_SECRET_ARN": settings.api_tokens_secret_arn or "",
        "BACKEND_LOGIN": settings.db_login,
        "FIXED_ENVIRONMENT": json.dumps(fixed_environment(settings)),
        "SERVICE": SERVICE,
        "SERVICE_USER": SERVICE_USER,
        "BACKEND_DIR": BACKEND_DIR,
        "ENV_FILE": ENV_FILE,
        "ENTRYPOINT": ENTRYPOINT,
    }


def render_install_script(settings: BootSettings) -> str:
    """The bash script cloud-init installs as ``INSTALL_SCRIPT_PATH``: the settings as quoted
    assignments, then a body that is the same for every stack."""
    assignments = "".join(f"{name}={shlex.quote(value)}\n" for name, value in _script_variables(settings).items())
    return _SCRIPT_PROLOGUE + assignments + _SCRIPT_BODY.replace("@ENVIRONMENT_WRITER@", _ENVIRONMENT_WRITER)


# --- cloud-config and user data --------------------------------------------------------------


class _BlockStyleDumper(yaml.SafeDumper):
    """SafeDumper writing multi-line strings as literal blocks, so the unit and the script
    read as themselves in /var/lib/cloud/instance/user-data.txt."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockStyleDumper.add_representer(str, _represent_str)


def _root_file(path: str, content: str, permissions: str) -> dict[str, str]:
    # Permissions as a string: YAML would read 0644 as the integer 420.
    return {"path": path, "owner": "root:root", "permissions": permissions, "content": content}


def cloud_config(settings: BootSettings) -> dict:
    agent = settings.agent
    return {
        "groups": [SERVICE_USER],  # created before users: the user's primary group must exist
        "users": [
            "default",  # keeps ec2-user
            {
                "name": SERVICE_USER,
                "primary_group": SERVICE_USER,
                "system": True,  # no home directory, no password ageing
                "shell": "/sbin/nologin",
                "lock_passwd": True,
            },
        ],
        "packages": [*PACKAGES, *([agent_config.PACKAGE] if agent else [])],
        "write_files": [
            _root_file(UNIT_PATH, render_unit(), "0644"),
            _root_file(INSTALL_SCRIPT_PATH, render_install_script(settings), "0755"),
            _root_file(RDS_CA_BUNDLE, region_bundle(settings.region), "0644"),  # public certificates
            *(agent_config.write_files(agent) if agent else []),
        ],
        # argv lists: cloud-init quotes them into its runcmd script
        "runcmd": [[INSTALL_SCRIPT_PATH], *(agent_config.RUNCMD if agent else [])],
    }


def render_cloud_config(settings: BootSettings) -> str:
    body = yaml.dump(cloud_config(settings), Dumper=_BlockStyleDumper, sort_keys=False, width=1000)
    return "#cloud-config\n" + body


def user_data(settings: BootSettings) -> str:
    """The base64 text ``ec2.LaunchTemplate(user_data=...)`` takes."""
    raw = render_cloud_config(settings).encode()
    if len(raw) > USER_DATA_LIMIT:
        raise ValueError(f"the backend's user data is {len(raw)} bytes; EC2 accepts at most {USER_DATA_LIMIT}")
    return base64.b64encode(raw).decode()
