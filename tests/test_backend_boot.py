"""The backend's boot: the cloud-config, unit and install script pass the real tools
(cloud-init, systemd-analyze, bash), the script installs a release and writes the env file
for real in a scratch root, and no secret value is ever in what is rendered.

In the sandbox, ``aws``, ``systemctl`` and ``chown`` are stand-ins on PATH that record their
calls (the script is root-only on an instance: chown to the service user, systemd as PID 1);
everything else (mktemp, sha256sum, tar, mv, python3) is the real thing.
"""

from __future__ import annotations

import ast
import base64
import configparser
import dataclasses
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from installed_tools import require_tool

from components import backend_boot
from components.app.backend_boot import (
    ENV_FILE,
    INSTALL_SCRIPT_PATH,
    RDS_CA_BUNDLE,
    SERVICE_USER,
    UNIT_PATH,
    BootSettings,
    cloud_config,
    render_cloud_config,
    render_install_script,
    render_unit,
    user_data,
)
from components.app.release_archive import ReleaseArchive, load_release, pack_release
from components.rds_ca import region_bundle

PROJECT_ROOT = Path(__file__).resolve().parent.parent
REGION = "eu-central-1"
BUCKET = "swipesavvy-staging-releases"
DB_SECRET_ARN = (
    "arn:aws:secretsmanager:eu-central-1:123456789012:secret:swipesavvy/staging/db/swipesavvy_backend-AbC123"
)
SENTRY_SECRET_ARN = "arn:aws:secretsmanager:eu-central-1:123456789012:secret:swipesavvy/staging/sentry-dsn-Zx9Yw8"
# Everything bash or systemd could misread: quotes, $(...), backquotes, backslashes, #, =, spaces.
PASSWORD = "p4ss \"w0rd\" 'q' $(echo pwned) `id` \\n #not-a-comment =x $HOME"
DB_SECRET = {
    "engine": "postgres",
    "host": "swipesavvy-staging.c1a2b3.eu-central-1.rds.amazonaws.com",
    "port": 5432,
    "dbname": "swipesavvy_staging",
    "username": "swipesavvy_backend",
    "password": PASSWORD,
}
SENTRY_DSN = "https://f00dcafe@o42.ingest.sentry.io/4242"
# The example release's top level: its vendored node_modules included (the instance runs no npm).
RELEASE_TOP = ["README.md", "node_modules", "package-lock.json", "package.json", "server.js"]
ENV_KEYS = [
    "DB_HOST",
    "DB_PORT",
    "DB_NAME",
    "DB_USER",
    "DB_PASSWORD",
    "DB_POOL_SIZE",
    "API_PORT",
    "NODE_ENV",
    "LOG_LEVEL",
    "FEATURE_FLAGS_ENABLED",
    "FEATURE_FLAGS_CACHE_TTL",
    "DB_SSLMODE",
    "DB_SSLROOTCERT",
    "SENTRY_DSN",
]
EXPOSURE_LIMIT = 2.5

# One stand-in for aws, curl, systemctl and chown (its file name says which): logs the call (the
# script calls no curl: the RDS CA bundle arrives in the user data), serves
# `aws s3 cp` from <sandbox>/s3/<bucket>/<key> and `aws secretsmanager get-secret-value`
# from <sandbox>/secrets.json, and accepts only the exact forms the script should use.
FAKE_TOOL = """\
#!{python}
import json, os, shutil, sys

tool, args = os.path.basename(sys.argv[0]), sys.argv[1:]
sandbox = os.environ["FAKE_SANDBOX"]
with open(os.path.join(sandbox, "calls.jsonl"), "a") as log:
    log.write(json.dumps({{"tool": tool, "args": args, "region": os.environ.get("AWS_DEFAULT_REGION")}}) + "\\n")
if tool == "curl":
    sys.exit("fake curl: unexpected call " + repr(args))
if tool != "aws":
    sys.exit(0)
if args[:3] == ["s3", "cp", "--only-show-errors"] and len(args) == 5 and args[3].startswith("s3://"):
    source = os.path.join(sandbox, "s3", args[3][len("s3://"):])
    if not os.path.isfile(source):
        sys.exit("fatal error: An error occurred (404) when calling the HeadObject operation: Not Found")
    shutil.copyfile(source, args[4])
elif args[:3] == ["secretsmanager", "get-secret-value", "--secret-id"] and args[4:] == [
    "--query", "SecretString", "--output", "text"
]:
    with open(os.path.join(sandbox, "secrets.json")) as secrets:
        value = json.load(secrets).get(args[3])
    if value is None:
        sys.exit("An error occurred (ResourceNotFoundException) when calling the GetSecretValue operation")
    print(value)
else:
    sys.exit("fake aws: unexpected call " + repr(args))
"""


def settings_for(archive: ReleaseArchive, **changes) -> BootSettings:
    base = BootSettings(
        region=REGION,
        release_uri=f"s3://{BUCKET}/{archive.key}",
        release_sha256=archive.sha256,
        db_secret_arn=DB_SECRET_ARN,
        node_env="staging",
    )
    return dataclasses.replace(base, **changes)


@pytest.fixture(scope="module")
def example_release() -> ReleaseArchive:
    return load_release(PROJECT_ROOT, "examples/backend-release")


@pytest.fixture
def settings(example_release: ReleaseArchive) -> BootSettings:
    return settings_for(example_release)


# --- cloud-config and user data --------------------------------------------------------------


@pytest.mark.parametrize("sentry", [None, SENTRY_SECRET_ARN])
def test_cloud_config_passes_cloud_init_schema(settings: BootSettings, tmp_path: Path, sentry: str | None):
    cloud_init = require_tool("cloud-init")
    path = tmp_path / "user-data.yaml"
    path.write_text(render_cloud_config(dataclasses.replace(settings, sentry_dsn_secret_arn=sentry)))
    result = subprocess.run([cloud_init, "schema", "--config-file", str(path)], capture_output=True, text=True)
    # Exit 0 alone would let deprecation warnings through: the whole output is the verdict.
    assert (result.returncode, result.stdout.strip(), result.stderr.strip()) == (0, f"Valid cloud-config: {path}", "")


def test_cloud_config_is_yaml_of_the_data(settings: BootSettings):
    text = render_cloud_config(settings)
    assert text.startswith("#cloud-config\n")
    data = yaml.safe_load(text)
    assert data == cloud_config(settings)
    assert data["packages"] == ["nodejs22", "nodejs22-npm"]
    assert data["users"][0] == "default"
    assert data["users"][1]["name"] == SERVICE_USER
    assert (data["users"][1]["system"], data["users"][1]["shell"]) == (True, "/sbin/nologin")
    files = {f["path"]: f for f in data["write_files"]}
    assert files[UNIT_PATH]["content"] == render_unit()
    assert files[UNIT_PATH]["permissions"] == "0644"
    assert files[INSTALL_SCRIPT_PATH]["content"] == render_install_script(settings)
    assert files[INSTALL_SCRIPT_PATH]["permissions"] == "0755"
    assert data["runcmd"] == [[INSTALL_SCRIPT_PATH]]


def test_files_written_before_users_exist_are_owned_by_root(settings: BootSettings):
    """write_files runs before users-groups: a file owned by the service user must be deferred."""
    entries = cloud_config(settings)["write_files"]
    assert {UNIT_PATH, INSTALL_SCRIPT_PATH} <= {entry["path"] for entry in entries}
    for entry in entries:
        assert entry["owner"] == "root:root" or entry.get("defer") is True, entry["path"]


def test_user_data_is_the_cloud_config_in_base64(settings: BootSettings):
    assert base64.b64decode(user_data(settings)).decode() == render_cloud_config(settings)


def test_user_data_over_the_ec2_limit_is_refused(settings: BootSettings, monkeypatch: pytest.MonkeyPatch):
    size = len(render_cloud_config(settings).encode())
    monkeypatch.setattr(backend_boot, "USER_DATA_LIMIT", size - 1)
    with pytest.raises(ValueError, match=f"user data is {size} bytes; EC2 accepts at most {size - 1}"):
        user_data(settings)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("release_sha256", "../../etc"),
        ("release_uri", f"s3://{BUCKET}/releases/{'0' * 64}.tar.gz"),  # another release's digest
        ("db_secret_arn", "swipesavvy/staging/db/swipesavvy_backend"),  # a name, not an ARN
        ("sentry_dsn_secret_arn", SENTRY_DSN),  # the value instead of its secret
        ("node_env", "development"),
        ("log_level", "verbose"),
        ("region", "eu-central-1; reboot"),
    ],
)
def test_invalid_settings_are_refused_in_one_line(settings: BootSettings, field: str, value: str):
    with pytest.raises(ValueError, match=rf"^BootSettings\.{field} = .* is invalid: must be [^\n]*$"):
        dataclasses.replace(settings, **{field: value})


# --- the unit --------------------------------------------------------------------------------


def parse_unit(text: str) -> configparser.ConfigParser:
    unit = configparser.ConfigParser(interpolation=None, strict=True)
    unit.optionxform = str  # systemd keys are case-sensitive
    unit.read_string(text)
    return unit


def test_unit_runs_node_as_the_service_user_from_the_current_release():
    unit = parse_unit(render_unit())
    assert dict(unit["Unit"]) == {
        "Description": "SwipeSavvy backend API",
        "After": "network-online.target",
        "Wants": "network-online.target",
    }
    service = unit["Service"]
    assert (service["User"], service["Group"]) == (SERVICE_USER, SERVICE_USER)
    assert service["EnvironmentFile"] == ENV_FILE
    assert service["WorkingDirectory"] == "/opt/swipesavvy/backend/current"
    assert service["ExecStart"] == "/usr/bin/node-22 server.js"
    assert (service["Restart"], service["RestartSec"]) == ("on-failure", "5")
    assert service["CapabilityBoundingSet"] == ""
    assert service["SystemCallFilter"] == "@system-service"
    # V8's JIT aborts under MemoryDenyWriteExecute=yes (nodejs/node#55509).
    assert "MemoryDenyWriteExecute" not in service
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def verifiable_unit(directory: Path, text: str) -> Path:
    """A copy systemd-analyze can check here. `verify` fails when ExecStart's binary is
    missing, and /usr/bin/node-22 exists only on AL2023: /bin/true stands in, since verify
    only checks that the binary is executable. The file name stays the unit's name."""
    path = directory / Path(UNIT_PATH).name
    path.write_text(text.replace("ExecStart=/usr/bin/node-22 ", "ExecStart=/bin/true "))
    return path


def systemd_verify(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [require_tool("systemd-analyze"), "verify", str(path)], capture_output=True, text=True, cwd=path.parent
    )


def test_unit_passes_systemd_analyze_verify_without_a_word(tmp_path: Path):
    result = systemd_verify(verifiable_unit(tmp_path, render_unit()))
    # verify exits 0 on unknown keys and bad values, printing warnings: silence is the pass.
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_systemd_analyze_verify_does_report_a_bad_key_here(tmp_path: Path):
    """The check above is not vacuous on this machine: a misspelt key is reported."""
    broken = render_unit().replace("ProtectHome=yes", "ProtectHomes=yes")
    result = systemd_verify(verifiable_unit(tmp_path, broken))
    assert "Unknown key 'ProtectHomes'" in result.stderr


def test_unit_exposure_score_is_low(tmp_path: Path):
    path = verifiable_unit(tmp_path, render_unit())
    result = subprocess.run(
        [require_tool("systemd-analyze"), "security", "--offline=yes", "--no-pager", str(path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    score = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert score is not None, result.stdout[-500:]
    assert float(score.group(1)) < EXPOSURE_LIMIT


# --- the install script: static checks -------------------------------------------------------


def test_install_script_parses_with_bash(settings: BootSettings, tmp_path: Path):
    script = tmp_path / "install"
    script.write_text(render_install_script(settings))
    result = subprocess.run([require_tool("bash"), "-n", str(script)], capture_output=True, text=True)
    assert (result.returncode, result.stderr) == (0, "")


def test_install_script_passes_shellcheck(settings: BootSettings, tmp_path: Path):
    shellcheck = require_tool("shellcheck")
    script = tmp_path / "install"
    script.write_text(render_install_script(settings))
    result = subprocess.run([shellcheck, str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_install_script_python_parses_as_al2023s_python_3_9(settings: BootSettings):
    script = render_install_script(settings)
    program = script.split("<<'PYTHON'\n", 1)[1].split("\nPYTHON\n", 1)[0]
    ast.parse(program, feature_version=(3, 9))


# --- the install script, run in a sandbox ----------------------------------------------------


class Sandbox:
    """A scratch root for the script, fake tools on PATH, an S3 bucket and secrets."""

    def __init__(self, base: Path):
        self.base = base
        self.root = base / "root"
        self.root.mkdir()
        bin_dir = base / "bin"
        bin_dir.mkdir()
        for tool in ("aws", "curl", "systemctl", "chown"):
            (bin_dir / tool).write_text(FAKE_TOOL.format(python=sys.executable))
            (bin_dir / tool).chmod(0o755)
        self.path = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
        self.secrets: dict[str, str] = {DB_SECRET_ARN: json.dumps(DB_SECRET), SENTRY_SECRET_ARN: SENTRY_DSN}

    def upload(self, key: str, data: bytes) -> None:
        path = self.base / "s3" / BUCKET / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def run(self, script_text: str) -> subprocess.CompletedProcess:
        (self.base / "secrets.json").write_text(json.dumps(self.secrets))
        (self.base / "calls.jsonl").unlink(missing_ok=True)
        script = self.base / "install"
        script.write_text(script_text)
        env = {
            "PATH": self.path,
            "HOME": str(self.base),
            "SWIPESAVVY_ROOT": str(self.root),
            "FAKE_SANDBOX": str(self.base),
        }
        return subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env, timeout=60)

    def calls(self, tool: str | None = None) -> list[dict]:
        log = self.base / "calls.jsonl"
        calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
        return [c for c in calls if tool is None or c["tool"] == tool]

    @property
    def env_file(self) -> Path:
        return self.root / ENV_FILE.lstrip("/")

    @property
    def backend(self) -> Path:
        return self.root / "opt/swipesavvy/backend"

    def environment(self, keys: list[str] = ENV_KEYS) -> dict[str, str]:
        """The env file's values as bash reads them: in double quotes, bash and systemd's
        EnvironmentFile= both turn \\\\ \\" \\$ \\` into the character and take the rest as is."""
        dump = subprocess.run(
            ["bash", "-c", 'set -a; . "$1"; for k in "${@:2}"; do printf "%s\\0" "${!k}"; done', "_"]
            + [str(self.env_file), *keys],
            capture_output=True,
            text=True,
            env={"PATH": os.environ["PATH"]},
            check=True,
        )
        return dict(zip(keys, dump.stdout.split("\0")[:-1], strict=True))

    def env_keys_in_file(self) -> list[str]:
        return [line.split("=", 1)[0] for line in self.env_file.read_text().splitlines()]


@pytest.fixture
def sandbox(tmp_path: Path, example_release: ReleaseArchive) -> Sandbox:
    require_tool("python3", "the script's env writer; AL2023 has it")
    box = Sandbox(tmp_path)
    box.upload(example_release.key, example_release.data)
    return box


def expected_environment(sentry_dsn: str = "") -> dict[str, str]:
    return {
        "DB_HOST": DB_SECRET["host"],
        "DB_PORT": "5432",
        "DB_NAME": "swipesavvy_staging",
        "DB_USER": "swipesavvy_backend",
        "DB_PASSWORD": PASSWORD,
        "DB_POOL_SIZE": "20",
        "API_PORT": "8080",
        "NODE_ENV": "staging",
        "LOG_LEVEL": "info",
        "FEATURE_FLAGS_ENABLED": "true",
        "FEATURE_FLAGS_CACHE_TTL": "300",
        "DB_SSLMODE": "verify-full",
        "DB_SSLROOTCERT": "/etc/swipesavvy/rds-ca-bundle.pem",
        "SENTRY_DSN": sentry_dsn,
    }


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_install_script_installs_the_release_and_writes_the_env_file(sandbox: Sandbox, settings: BootSettings):
    result = sandbox.run(render_install_script(settings))
    assert result.returncode == 0, result.stderr

    current = sandbox.backend / "current"
    assert os.readlink(current) == f"releases/{settings.release_sha256}"
    # The release is the folder as packed: its vendored node_modules included (the instance runs no npm).
    assert sorted(p.name for p in current.iterdir()) == RELEASE_TOP
    assert (current / "server.js").read_bytes() == (PROJECT_ROOT / "examples/backend-release/server.js").read_bytes()

    assert sandbox.environment() == expected_environment()
    assert sandbox.env_keys_in_file() == ENV_KEYS
    assert mode(sandbox.env_file) == 0o600

    aws = sandbox.calls("aws")
    assert [c["args"][:2] for c in aws] == [["s3", "cp"], ["secretsmanager", "get-secret-value"]]
    assert aws[0]["args"][3] == settings.release_uri
    assert aws[1]["args"][3] == DB_SECRET_ARN
    assert {c["region"] for c in aws} == {REGION}
    (chown,) = sandbox.calls("chown")
    assert chown["args"][0] == f"{SERVICE_USER}:{SERVICE_USER}"
    assert chown["args"][1].startswith(f"{sandbox.env_file}.")  # the new file, before it is renamed in
    assert [c["args"] for c in sandbox.calls("systemctl")] == [
        ["daemon-reload"],
        ["enable", "--now", "swipesavvy-backend"],
    ]
    # Nothing echoed a secret, and no temporary file is left beside the results.
    assert PASSWORD not in result.stdout + result.stderr
    assert PASSWORD not in (sandbox.base / "calls.jsonl").read_text()
    assert sorted(p.name for p in sandbox.env_file.parent.iterdir()) == ["backend.env"]
    assert sorted(p.name for p in (sandbox.backend / "releases").iterdir()) == [settings.release_sha256]
    assert sandbox.calls("curl") == []  # the CA bundle the env file names comes with the user data


def test_cloud_init_writes_the_regions_rds_ca_bundle_the_env_file_names(settings: BootSettings):
    """Shipped, not downloaded: the root of the database's CA in the stack's region
    (components/rds_ca.py), root's and 0644 so the sandboxed service reads it."""
    files = {f["path"]: f for f in cloud_config(settings)["write_files"]}
    assert files[RDS_CA_BUNDLE] == {
        "path": "/etc/swipesavvy/rds-ca-bundle.pem",
        "owner": "root:root",
        "permissions": "0644",
        "content": region_bundle(REGION),
    }
    assert "truststore" not in render_install_script(settings)


def test_sentry_dsn_comes_from_its_own_secret(sandbox: Sandbox, settings: BootSettings):
    result = sandbox.run(render_install_script(dataclasses.replace(settings, sentry_dsn_secret_arn=SENTRY_SECRET_ARN)))
    assert result.returncode == 0, result.stderr
    assert sandbox.environment() == expected_environment(sentry_dsn=SENTRY_DSN)
    assert SENTRY_DSN not in result.stdout + result.stderr


API_TOKENS_SECRET_ARN = "arn:aws:secretsmanager:eu-central-1:123456789012:secret:swipesavvy/staging/api-tokens-Q1w2E3"
API_TOKENS = {"api_token": "staging $tok`en`", "admin_token": 'admin "token"'}


def test_api_tokens_come_from_their_own_secret(sandbox: Sandbox, settings: BootSettings):
    sandbox.secrets[API_TOKENS_SECRET_ARN] = json.dumps(API_TOKENS)
    result = sandbox.run(
        render_install_script(dataclasses.replace(settings, api_tokens_secret_arn=API_TOKENS_SECRET_ARN))
    )
    assert result.returncode == 0, result.stderr
    keys = [*ENV_KEYS, "API_TOKEN", "ADMIN_TOKEN"]
    assert sandbox.env_keys_in_file() == keys
    values = sandbox.environment(keys)
    assert (values["API_TOKEN"], values["ADMIN_TOKEN"]) == (API_TOKENS["api_token"], API_TOKENS["admin_token"])
    assert [c["args"][3] for c in sandbox.calls("aws")[1:]] == [API_TOKENS_SECRET_ARN, DB_SECRET_ARN]
    assert API_TOKENS["admin_token"] not in result.stdout + result.stderr


def test_the_script_writes_exactly_what_render_environment_returns(sandbox: Sandbox, settings: BootSettings):
    """One contract: `ops rehearse` renders the env file with the same function the instance runs."""
    sandbox.secrets[API_TOKENS_SECRET_ARN] = json.dumps(API_TOKENS)
    with_tokens = dataclasses.replace(settings, api_tokens_secret_arn=API_TOKENS_SECRET_ARN)
    assert sandbox.run(render_install_script(with_tokens)).returncode == 0
    fixed = backend_boot.fixed_environment(with_tokens)
    expected = backend_boot.render_environment(
        json.dumps(DB_SECRET), "swipesavvy_backend", fixed, "", json.dumps(API_TOKENS)
    )
    assert sandbox.env_file.read_text() == expected


def test_running_it_again_changes_nothing(sandbox: Sandbox, settings: BootSettings):
    script = render_install_script(settings)
    assert sandbox.run(script).returncode == 0
    first_env = sandbox.env_file.read_bytes()
    again = sandbox.run(script)
    assert again.returncode == 0, again.stderr
    assert [c["args"][:2] for c in sandbox.calls("aws")] == [["secretsmanager", "get-secret-value"]]  # no download
    assert sandbox.env_file.read_bytes() == first_env
    assert mode(sandbox.env_file) == 0o600
    assert os.readlink(sandbox.backend / "current") == f"releases/{settings.release_sha256}"
    assert sorted(p.name for p in sandbox.backend.iterdir()) == ["current", "releases"]
    assert sorted(p.name for p in sandbox.env_file.parent.iterdir()) == ["backend.env"]
    assert not sandbox.calls("curl")  # the installed bundle is kept


def test_a_new_release_moves_current_and_keeps_the_old_one(
    sandbox: Sandbox, settings: BootSettings, tmp_path: Path, example_release: ReleaseArchive
):
    assert sandbox.run(render_install_script(settings)).returncode == 0
    folder = tmp_path / "next"
    shutil.copytree(PROJECT_ROOT / "examples/backend-release", folder)
    (folder / "server.js").write_text("// the next release\n")
    following = ReleaseArchive(pack_release(folder))
    sandbox.upload(following.key, following.data)
    result = sandbox.run(render_install_script(settings_for(following)))
    assert result.returncode == 0, result.stderr
    assert os.readlink(sandbox.backend / "current") == f"releases/{following.sha256}"
    assert (sandbox.backend / "current" / "server.js").read_text() == "// the next release\n"
    assert sorted(p.name for p in (sandbox.backend / "releases").iterdir()) == sorted(
        [example_release.sha256, following.sha256]
    )


def test_a_wrong_digest_aborts_before_anything_changes(
    sandbox: Sandbox, settings: BootSettings, example_release: ReleaseArchive
):
    assert sandbox.run(render_install_script(settings)).returncode == 0
    env_before = (sandbox.env_file.read_bytes(), sandbox.env_file.stat().st_mtime_ns)
    # The object under a release's key is not that release (corrupted or replaced).
    claimed = "0" * 64
    sandbox.upload(f"releases/{claimed}.tar.gz", example_release.data)
    tampered = settings_for(
        example_release, release_sha256=claimed, release_uri=f"s3://{BUCKET}/releases/{claimed}.tar.gz"
    )

    result = sandbox.run(render_install_script(tampered))

    assert result.returncode != 0
    assert result.stderr == (
        f"swipesavvy-backend-install: s3://{BUCKET}/releases/{claimed}.tar.gz holds a tar with sha256"
        f" {example_release.sha256}, not {claimed}: refusing to install it\n"
    )
    assert (sandbox.env_file.read_bytes(), sandbox.env_file.stat().st_mtime_ns) == env_before
    assert os.readlink(sandbox.backend / "current") == f"releases/{example_release.sha256}"
    assert sorted(p.name for p in (sandbox.backend / "releases").iterdir()) == [example_release.sha256]
    assert [c["tool"] for c in sandbox.calls()] == ["aws"]  # the download; no secret read, no systemctl


def test_a_release_compressed_elsewhere_installs_under_the_same_digest(
    sandbox: Sandbox, settings: BootSettings, example_release: ReleaseArchive
):
    """The upload side names the release by its tar's digest; another compressor's .tar.gz of the
    same folder (here: zlib level 1, different bytes) passes the boot's check under that name."""
    fast = ReleaseArchive(pack_release(PROJECT_ROOT / "examples/backend-release", compresslevel=1))
    assert fast.data != example_release.data and fast.key == example_release.key
    sandbox.upload(example_release.key, fast.data)
    result = sandbox.run(render_install_script(settings))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (sandbox.backend / "current").iterdir()) == RELEASE_TOP


def test_a_download_that_is_not_gzip_is_refused(sandbox: Sandbox, settings: BootSettings):
    sandbox.upload(settings.release_uri.removeprefix(f"s3://{BUCKET}/"), b"<Error>AccessDenied</Error>")
    result = sandbox.run(render_install_script(settings))
    assert result.returncode != 0
    assert result.stderr.endswith(
        f"swipesavvy-backend-install: {settings.release_uri} is not a gzip archive: refusing to install it\n"
    )
    assert not (sandbox.backend / "current").exists()
    assert sorted(p.name for p in (sandbox.backend / "releases").iterdir()) == []


def test_a_release_without_server_js_at_its_root_is_refused(sandbox: Sandbox, tmp_path: Path):
    nested = tmp_path / "nested"
    shutil.copytree(PROJECT_ROOT / "examples/backend-release", nested / "dist")
    archive = ReleaseArchive(pack_release(nested))
    sandbox.upload(archive.key, archive.data)
    result = sandbox.run(render_install_script(settings_for(archive)))
    assert result.returncode != 0
    assert "has no server.js at its root: refusing to install it" in result.stderr
    assert not (sandbox.backend / "current").exists()
    assert not (sandbox.backend / "releases" / archive.sha256).exists()


def test_a_world_readable_env_file_is_replaced_by_a_private_one(sandbox: Sandbox, settings: BootSettings):
    sandbox.env_file.parent.mkdir(parents=True)
    sandbox.env_file.write_text("DB_PASSWORD=old\n")
    sandbox.env_file.chmod(0o644)
    assert sandbox.run(render_install_script(settings)).returncode == 0
    assert mode(sandbox.env_file) == 0o600
    assert sandbox.environment()["DB_PASSWORD"] == PASSWORD


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        (
            json.dumps({**DB_SECRET, "username": "postgres"}),
            "the database secret is for login 'postgres', not 'swipesavvy_backend'",
        ),
        (json.dumps({k: v for k, v in DB_SECRET.items() if k != "host"}), "is not RDS JSON with host, port"),
        (PASSWORD, "is not RDS JSON with host, port"),  # a plain-string secret
    ],
    ids=["master-login", "missing-host", "not-json"],
)
def test_a_secret_that_is_not_the_backend_logins_is_refused(
    sandbox: Sandbox, settings: BootSettings, secret: str, message: str
):
    sandbox.secrets[DB_SECRET_ARN] = secret
    result = sandbox.run(render_install_script(settings))
    assert result.returncode != 0
    assert message in result.stderr
    assert PASSWORD not in result.stdout + result.stderr
    assert not sandbox.env_file.exists()
    assert [p.name for p in sandbox.env_file.parent.iterdir()] == []  # no temporary file
    assert sandbox.calls("systemctl") == []


# --- no secret value in anything rendered -----------------------------------------------------


def test_user_data_names_the_secrets_and_the_values_arrive_only_at_boot(sandbox: Sandbox, settings: BootSettings):
    with_sentry = dataclasses.replace(settings, sentry_dsn_secret_arn=SENTRY_SECRET_ARN)
    rendered = base64.b64decode(user_data(with_sentry)).decode()
    assert DB_SECRET_ARN in rendered and SENTRY_SECRET_ARN in rendered
    secret_values = [PASSWORD, DB_SECRET["host"], DB_SECRET["dbname"], SENTRY_DSN]
    for value in secret_values:
        assert value not in rendered

    # The script exactly as the instance gets it, run: the values reach the env file, read
    # from Secrets Manager at boot.
    files = {f["path"]: f["content"] for f in yaml.safe_load(rendered)["write_files"]}
    assert sandbox.run(files[INSTALL_SCRIPT_PATH]).returncode == 0
    environment = sandbox.environment()
    assert [environment[key] for key in ("DB_PASSWORD", "DB_HOST", "DB_NAME", "SENTRY_DSN")] == secret_values
