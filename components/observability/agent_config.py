"""The Datadog agent on a backend instance, as cloud-init data (no Pulumi).

The agent comes from Datadog's yum repository through cloud-init's ``packages`` (so the
``dd-agent`` user exists before the deferred files are written), not from a script piped
from the internet. Its configuration holds no secret: the API key and the monitoring
login's password are ``ENC[<secret ARN>]`` handles that the agent resolves at start through
``secret_backend_command``, a small script reading Secrets Manager with the instance role.
Nothing secret is in user data, in Pulumi state or on disk.

Files and why:
- ``/etc/yum.repos.d/datadog.repo``: root, written at init (before ``packages``).
- ``datadog.yaml``, ``conf.d/http_check.d/conf.yaml``, ``conf.d/postgres.d/conf.yaml``:
  ``dd-agent``, 0640, ``defer: true`` (the package creates the user in the final stage).
- the secret backend: ``dd-agent``, 0700; the agent refuses one anybody else may read or run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import yaml

from components.config import ConfigError
from components.observability.datadog_queries import HEALTH_CHECK_INSTANCE, SERVICE
from components.rds_ca import INSTANCE_BUNDLE

AGENT_DIR = "/etc/datadog-agent"
REPO_PATH = "/etc/yum.repos.d/datadog.repo"
SECRET_BACKEND_PATH = f"{AGENT_DIR}/swipesavvy-secret-backend"
PACKAGE = "datadog-agent"
MONITOR_LOGIN = "swipesavvy_monitor"  # components/data/database.py creates it, member of pg_monitor only
# Datadog's RPM repository for Agent 7 ($basearch: x86_64 or aarch64) and its signing keys.
REPO = """\
[datadog]
name=Datadog, Inc.
baseurl=https://yum.datadoghq.com/stable/7/$basearch/
enabled=1
gpgcheck=1
repo_gpgcheck=1
gpgkey=https://keys.datadoghq.com/DATADOG_RPM_KEY_CURRENT.public
       https://keys.datadoghq.com/DATADOG_RPM_KEY_B01082D3.public
       https://keys.datadoghq.com/DATADOG_RPM_KEY_FD4BF915.public
       https://keys.datadoghq.com/DATADOG_RPM_KEY_E09422B3.public
"""

# The agent's secret backend protocol: {"version": "1.0", "secrets": [handles]} on stdin,
# {handle: {"value": ..., "error": ...}} on stdout. A handle is a secret's ARN, optionally
# followed by #field for one field of a JSON secret (the login's RDS JSON). The region is
# the ARN's own. Python 3.9 (AL2023's), standard library and the AWS CLI only.
SECRET_BACKEND = """\
#!/usr/bin/python3
import json
import subprocess
import sys


def read(arn):
    region = arn.split(":")[3]
    command = ["aws", "secretsmanager", "get-secret-value", "--region", region, "--secret-id", arn,
               "--query", "SecretString", "--output", "text"]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout.rstrip("\\n")


def resolve(handle, cache):
    arn, _, field = handle.partition("#")
    if arn not in cache:
        cache[arn] = read(arn)
    return json.loads(cache[arn])[field] if field else cache[arn]


request = json.load(sys.stdin)
answers, cache = {}, {}
for handle in request["secrets"]:
    try:
        answers[handle] = {"value": str(resolve(handle, cache)), "error": None}
    except (subprocess.CalledProcessError, ValueError, KeyError, IndexError) as error:
        answers[handle] = {"value": None, "error": "cannot read %s: %s" % (handle, type(error).__name__)}
json.dump(answers, sys.stdout)
"""

_SECRET_ARN = re.compile(r"arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+")
_SITES = re.compile(r"(datadoghq\.com|datadoghq\.eu|us[35]\.datadoghq\.com|ap[12]\.datadoghq\.com|ddog-gov\.com)")


@dataclass(frozen=True)
class AgentSettings:
    """What the agent needs; all of it may be read by anyone who can read user data."""

    site: str  # datadoghq.com, datadoghq.eu, ...
    env: str  # the stack: env:<stack> on every metric, trace and check
    version: str  # the release, for unified service tagging
    api_key_secret_arn: str  # a plain-string secret holding the agent's API key
    db_host: str
    db_port: int
    db_name: str
    monitor_secret_arn: str  # the monitoring login's RDS JSON
    api_port: int = 8080
    monitor_login: str = MONITOR_LOGIN  # the slot in use (components/data/credential_slots.py)

    def __post_init__(self) -> None:
        for name in ("api_key_secret_arn", "monitor_secret_arn"):
            value = getattr(self, name)
            if not _SECRET_ARN.fullmatch(value):
                raise ValueError(f"AgentSettings.{name} = {value!r} is invalid: must be a Secrets Manager secret ARN")
        if not _SITES.fullmatch(self.site):
            raise ValueError(
                f"AgentSettings.site = {self.site!r} is invalid: must be a Datadog site like datadoghq.com"
            )

    @property
    def tags(self) -> list[str]:
        return [f"service:{SERVICE}", f"env:{self.env}", f"version:{self.version}"]


def datadog_site(api_url: str | None) -> str:
    """The site of ``datadog:apiUrl`` (https://api.datadoghq.eu/ -> datadoghq.eu); US1 without it."""
    host = (api_url or "https://api.datadoghq.com/").split("://", 1)[-1].split("/", 1)[0]
    site = host.removeprefix("api.")
    if not _SITES.fullmatch(site):
        raise ConfigError(
            f"datadog:apiUrl = {api_url!r} is invalid: must be a Datadog API URL like https://api.datadoghq.eu/"
            " (fix: pulumi config set datadog:apiUrl https://api.datadoghq.eu/)"
        )
    return site


def app_url(site: str) -> str:
    """Where people open the site: app.<site> for US1, EU1 and GOV; the regional sites serve it themselves."""
    return f"https://{site}" if site.count(".") > 1 else f"https://app.{site}"


def _secret(arn: str, field: str | None = None) -> str:
    return f"ENC[{arn}#{field}]" if field else f"ENC[{arn}]"


def datadog_yaml(settings: AgentSettings) -> dict:
    return {
        "api_key": _secret(settings.api_key_secret_arn),
        "site": settings.site,
        "env": settings.env,
        "tags": settings.tags,  # host tags: every host metric and check carries the service
        "apm_config": {"enabled": True},  # dd-trace sends to 127.0.0.1:8126
        "use_dogstatsd": True,  # the backend's own metrics, on 127.0.0.1:8125
        "secret_backend_command": SECRET_BACKEND_PATH,
    }


def http_check_yaml(settings: AgentSettings) -> dict:
    """``/api/health`` from the instance itself: up and saying "healthy" (``http.can_connect``)."""
    return {
        "init_config": {},
        "instances": [
            {
                "name": HEALTH_CHECK_INSTANCE,
                "url": f"http://127.0.0.1:{settings.api_port}/api/health",
                "timeout": 5,
                "content_match": '"status":\\s*"healthy"',
                "tags": settings.tags,
            }
        ],
    }


def postgres_yaml(settings: AgentSettings) -> dict:
    """The database as the monitoring login (member of pg_monitor only), over TLS with the
    server's certificate checked against RDS's CA (shipped in the user data,
    components/rds_ca.py) and its name against the host: the check's ``ssl`` takes libpq's
    modes and ``ssl_root_cert`` the CA file (integrations-core postgres conf.yaml.example)."""
    return {
        "init_config": {},
        "instances": [
            {
                "host": settings.db_host,
                "port": settings.db_port,
                "dbname": settings.db_name,
                "username": settings.monitor_login,
                "password": _secret(settings.monitor_secret_arn, "password"),
                "ssl": "verify-full",
                "ssl_root_cert": INSTANCE_BUNDLE,
                "tags": settings.tags,
            }
        ],
    }


def render_yaml(data: dict) -> str:
    return yaml.safe_dump(data, sort_keys=False, width=1000)


def _agent_file(path: str, content: str, permissions: str) -> dict:
    # Deferred: dd-agent is created by the package, installed after write_files' first pass.
    return {"path": path, "owner": "dd-agent:dd-agent", "permissions": permissions, "content": content, "defer": True}


def write_files(settings: AgentSettings) -> list[dict]:
    """The cloud-config ``write_files`` entries of the agent (the repo file first)."""
    return [
        {"path": REPO_PATH, "owner": "root:root", "permissions": "0644", "content": REPO},
        _agent_file(f"{AGENT_DIR}/datadog.yaml", render_yaml(datadog_yaml(settings)), "0640"),
        _agent_file(f"{AGENT_DIR}/conf.d/http_check.d/conf.yaml", render_yaml(http_check_yaml(settings)), "0640"),
        _agent_file(f"{AGENT_DIR}/conf.d/postgres.d/conf.yaml", render_yaml(postgres_yaml(settings)), "0640"),
        _agent_file(SECRET_BACKEND_PATH, SECRET_BACKEND, "0700"),
    ]


# Run after the deferred files: the package may have started the agent without them.
RUNCMD = [["systemctl", "enable", PACKAGE], ["systemctl", "restart", PACKAGE]]
