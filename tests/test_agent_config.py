"""The Datadog agent in the backend's cloud-init: valid YAML and cloud-config, no secret value,
and the secret backend resolving the API key and the monitoring password from Secrets Manager
(run for real with a stand-in ``aws`` on PATH); migration 011's monitoring role."""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import yaml
from installed_tools import require_tool

from components import agent_config
from components.app.backend_boot import BootSettings, cloud_config, render_cloud_config, render_install_script
from components.app.release_archive import load_release
from components.observability.agent_config import AgentSettings

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ARN = "arn:aws:secretsmanager:eu-central-1:123456789012:secret:swipesavvy/staging"
AGENT = AgentSettings(
    site="datadoghq.eu",
    env="staging",
    version="0123456789ab",
    api_key_secret_arn=f"{ARN}/datadog/agent-api-key-AbC123",
    db_host="swipesavvy.c1a2b3.eu-central-1.rds.amazonaws.com",
    db_port=5432,
    db_name="swipesavvy_staging",
    monitor_secret_arn=f"{ARN}/db/swipesavvy_monitor-Zx9Yw8",
)


@pytest.fixture(scope="module")
def settings() -> BootSettings:
    release = load_release(PROJECT_ROOT, "examples/backend-release")
    return BootSettings(
        region="eu-central-1",
        release_uri=f"s3://bucket/{release.key}",
        release_sha256=release.sha256,
        db_secret_arn=f"{ARN}/db/swipesavvy_backend-AbC123",
        node_env="staging",
        agent=AGENT,
    )


def agent_files(settings: BootSettings) -> dict[str, dict]:
    return {f["path"]: f for f in cloud_config(settings)["write_files"] if f["path"].startswith(agent_config.AGENT_DIR)}


def test_cloud_config_with_the_agent_passes_cloud_init_schema(settings: BootSettings, tmp_path: Path):
    cloud_init = require_tool("cloud-init")
    path = tmp_path / "user-data.yaml"
    path.write_text(render_cloud_config(settings))
    result = subprocess.run([cloud_init, "schema", "--config-file", str(path)], capture_output=True, text=True)
    assert (result.returncode, result.stdout.strip(), result.stderr.strip()) == (0, f"Valid cloud-config: {path}", "")


def test_the_agent_is_a_package_from_datadogs_repo_restarted_after_its_files(settings: BootSettings):
    config = cloud_config(settings)
    assert config["packages"] == ["nodejs22", "nodejs22-npm", "datadog-agent"]
    repo = next(f for f in config["write_files"] if f["path"] == "/etc/yum.repos.d/datadog.repo")
    assert repo["owner"] == "root:root" and "defer" not in repo  # before packages
    assert "baseurl=https://yum.datadoghq.com/stable/7/$basearch/" in repo["content"]
    assert "gpgcheck=1\nrepo_gpgcheck=1\n" in repo["content"]
    assert config["runcmd"][1:] == [["systemctl", "enable", "datadog-agent"], ["systemctl", "restart", "datadog-agent"]]
    # dd-agent exists only once the package is installed: its files are deferred, never world-readable.
    for path, entry in agent_files(settings).items():
        assert (entry["owner"], entry["defer"]) == ("dd-agent:dd-agent", True), path
        assert entry["permissions"] in ("0640", "0700"), path


def test_rendered_agent_files_are_valid_yaml_with_tags_apm_and_checks(settings: BootSettings):
    files = agent_files(settings)
    main = yaml.safe_load(files["/etc/datadog-agent/datadog.yaml"]["content"])
    tags = ["service:swipesavvy-backend", "env:staging", "version:0123456789ab"]
    assert main == {
        "api_key": f"ENC[{ARN}/datadog/agent-api-key-AbC123]",
        "site": "datadoghq.eu",
        "env": "staging",
        "tags": tags,
        "apm_config": {"enabled": True},
        "use_dogstatsd": True,
        "secret_backend_command": agent_config.SECRET_BACKEND_PATH,
    }
    (http,) = yaml.safe_load(files["/etc/datadog-agent/conf.d/http_check.d/conf.yaml"]["content"])["instances"]
    assert http["name"] == "swipesavvy-backend-health" and http["url"] == "http://127.0.0.1:8080/api/health"
    assert http["tags"] == tags
    postgres = yaml.safe_load(files["/etc/datadog-agent/conf.d/postgres.d/conf.yaml"]["content"])
    assert postgres["init_config"] == {}
    assert postgres["instances"] == [
        {
            "host": AGENT.db_host,
            "port": 5432,
            "dbname": "swipesavvy_staging",
            "username": "swipesavvy_monitor",
            "password": f"ENC[{ARN}/db/swipesavvy_monitor-Zx9Yw8#password]",
            # Verified: RDS's CA (cloud-init writes it beside the env file) and the host name.
            "ssl": "verify-full",
            "ssl_root_cert": "/etc/swipesavvy/rds-ca-bundle.pem",
            "tags": tags,
        }
    ]


def test_the_service_gets_the_unified_service_tags(settings: BootSettings):
    script = render_install_script(settings)
    assert '"DD_ENV": "staging", "DD_SERVICE": "swipesavvy-backend", "DD_VERSION": "0123456789ab"' in script
    assert "DD_ENV" not in render_install_script(dataclasses.replace(settings, agent=None))


def test_invalid_agent_settings_are_refused_in_one_line():
    with pytest.raises(ValueError, match=r"^AgentSettings\.api_key_secret_arn = 'the-key' is invalid: [^\n]*$"):
        dataclasses.replace(AGENT, api_key_secret_arn="the-key")
    with pytest.raises(ValueError, match=r"^AgentSettings\.site = 'example.com' is invalid"):
        dataclasses.replace(AGENT, site="example.com")


# --- the secret backend, run -------------------------------------------------------------------

FAKE_AWS = """\
#!{python}
import json, os, sys
args = sys.argv[1:]
with open(os.environ["FAKE_CALLS"], "a") as log:
    log.write(json.dumps(args) + "\\n")
assert args[:3] == ["secretsmanager", "get-secret-value", "--region"] and args[4] == "--secret-id", args
assert args[6:] == ["--query", "SecretString", "--output", "text"], args
secrets = json.loads(os.environ["FAKE_SECRETS"])
if args[5] not in secrets:
    sys.exit("An error occurred (ResourceNotFoundException)")
print(secrets[args[5]])
"""


def test_secret_backend_parses_as_al2023s_python_3_9():
    ast.parse(agent_config.SECRET_BACKEND, feature_version=(3, 9))


def test_secret_backend_resolves_the_handles_of_the_rendered_config(tmp_path: Path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "aws").write_text(FAKE_AWS.format(python=sys.executable))
    (bin_dir / "aws").chmod(0o755)
    backend = tmp_path / "backend"
    backend.write_text(agent_config.SECRET_BACKEND.replace("#!/usr/bin/python3", f"#!{sys.executable}", 1))
    backend.chmod(0o700)
    monitor = {"username": "swipesavvy_monitor", "password": 'p4ss "w0rd" $(id)', "host": AGENT.db_host}
    secrets = {AGENT.api_key_secret_arn: "0123abcd-the-api-key", AGENT.monitor_secret_arn: json.dumps(monitor)}
    handles = [
        AGENT.api_key_secret_arn,
        f"{AGENT.monitor_secret_arn}#password",
        f"{AGENT.monitor_secret_arn}#nope",
        f"{ARN}/missing-000000",
    ]
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "FAKE_SECRETS": json.dumps(secrets),
        "FAKE_CALLS": str(tmp_path / "calls"),
    }
    result = subprocess.run(
        [str(backend)],
        input=json.dumps({"version": "1.0", "secrets": handles}),
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    answers = json.loads(result.stdout)
    assert answers[handles[0]] == {"value": "0123abcd-the-api-key", "error": None}
    assert answers[handles[1]] == {"value": monitor["password"], "error": None}
    assert answers[handles[2]]["value"] is None and "KeyError" in answers[handles[2]]["error"]
    assert answers[handles[3]]["value"] is None and "CalledProcessError" in answers[handles[3]]["error"]
    calls = [json.loads(line) for line in (tmp_path / "calls").read_text().splitlines()]
    assert len(calls) == 3  # one read per secret, the region taken from its ARN
    assert all(call[3] == "eu-central-1" for call in calls)
    assert "0123abcd" not in result.stderr and monitor["password"] not in result.stderr


# --- migration 011 -----------------------------------------------------------------------------


def test_the_monitoring_role_reads_statistics_and_nothing_else(migrated_dsn: str, as_role):
    dsn = as_role(migrated_dsn, "swipesavvy_monitoring")
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM pg_stat_database").fetchone()[0] > 0
        assert conn.execute("SELECT pg_has_role('pg_monitor', 'USAGE')").fetchone()[0] is True
        assert conn.execute("SELECT current_setting('max_connections')").fetchone()[0]
        for table in ("feature_flags", "campaigns"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(f"SELECT 1 FROM {table} LIMIT 1")
        groups = conn.execute(
            "SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid"
            " JOIN pg_roles r ON r.oid = m.member WHERE r.rolname = 'swipesavvy_monitoring'"
        ).fetchall()
        assert groups == [("pg_monitor",)]
