"""Rotating the credentials the instances hold, without an outage (docs/operations.md "Secrets").

Under mocks: a rotation (``database.credentialRotation``, ``backend.apiTokenRotation`` one
higher) regenerates only the inactive slot, moves the launch template to it, and every secret
an instance reads has its version on the launch template. Then the rotation as it happens:
the logins through the engine (tests/engine.py) on the RDS-like server, the reference backend
running as an instance of the previous launch template while one of the new template starts
and the old one stops; every request answered.
"""

from __future__ import annotations

import base64
import json
import re
import shlex
import shutil
import time

import psycopg
import pulumi
import pytest
import yaml
from engine import PulumiEngine
from psycopg import sql
from pulumi_program import PROJECT_ROOT, RecordingMocks, run_program, stack_config, unwrap, unwrap_all
from rds_helpers import put_secret, secrets_client

from components.app.backend_boot import (
    INSTALL_SCRIPT_PATH,
    BootSettings,
    fixed_environment,
    render_environment,
    render_unit,
)
from components.data.credential_slots import LOGIN_SLOTS, TOKEN_SLOTS
from dbops.connection import connect
from dbops.migrations import apply_migrations
from ops.live.smoke import Http
from ops.rehearsal.local_postgres import Scratch
from ops.rehearsal.rehearse import DogStatsDListener, free_port, run_backend, unit_settings

LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
PASSWORD = "random:index/randomPassword:RandomPassword"
SECRET_VERSION = "aws:secretsmanager/secretVersion:SecretVersion"
LOGIN = "pulumi-python:dynamic/db:LoginRole"
RELEASE = PROJECT_ROOT / "examples" / "backend-release"
BACKEND_SLOTS = {"swipesavvy_backend": "swipesavvy-db-backend", "swipesavvy_backend_b": "swipesavvy-db-backend_b"}
DATABASE_ID = "db-TESTRESOURCE/swipesavvy_staging"


def rotation_config(credentials: int, tokens: int) -> dict:
    config = stack_config("staging")
    config["swipesavvy:database"] = {**config["swipesavvy:database"], "credentialRotation": credentials}
    config["swipesavvy:backend"] = {**config["swipesavvy:backend"], "apiTokenRotation": tokens}
    return config


@pytest.fixture(scope="module")
def rotated():
    """The staging stack after its first rotation of the logins and the tokens."""
    return run_program(rotation_config(1, 1))


def boot_variables(run) -> dict[str, str]:
    """The install script's settings, as the launch template's user data carries them."""
    template = unwrap_all(run.one(LAUNCH_TEMPLATE).inputs)
    cloud = yaml.safe_load(base64.b64decode(template["userData"]))
    script = next(f["content"] for f in cloud["write_files"] if f["path"] == INSTALL_SCRIPT_PATH)
    settings = script.split("\nexport AWS_DEFAULT_REGION")[0]
    return {name: " ".join(shlex.split(value)) for name, value in re.findall(r"^([A-Z0-9_]+)=(.*)$", settings, re.M)}


def agent_login(run) -> str:
    template = unwrap_all(run.one(LAUNCH_TEMPLATE).inputs)
    cloud = yaml.safe_load(base64.b64decode(template["userData"]))
    conf = next(f["content"] for f in cloud["write_files"] if f["path"].endswith("postgres.d/conf.yaml"))
    return yaml.safe_load(conf)["instances"][0]["username"]


def instance_tags(run) -> dict[str, str]:
    template = unwrap_all(run.one(LAUNCH_TEMPLATE).inputs)
    (tags,) = [spec["tags"] for spec in template["tagSpecifications"] if spec["resourceType"] == "instance"]
    return tags


def secret_document(run, name: str) -> dict:
    return json.loads(unwrap(run.of_name(SECRET_VERSION, name).inputs["secretString"]))


def login_arn(run, name: str) -> str:
    return run.of_name(LOGIN, name).inputs["password_secret_arn"]


# --- the program ---------------------------------------------------------------------------------


def test_before_any_rotation_slot_a_is_what_the_stack_always_had(staging):
    """Rotation 0: the original login and tokens, their passwords without keepers (as created
    before slots existed, so a deployed stack keeps them); the tokens secret adds the next pair."""
    assert boot_variables(staging)["BACKEND_LOGIN"] == "swipesavvy_backend"
    assert boot_variables(staging)["DB_SECRET_ARN"] == login_arn(staging, "swipesavvy-db-backend")
    assert agent_login(staging) == "swipesavvy_monitor"
    for name in ("swipesavvy-db-backend-password", "swipesavvy-api-api-token", "swipesavvy-api-admin-token"):
        assert "keepers" not in staging.of_name(PASSWORD, name).inputs, name
    assert set(secret_document(staging, "swipesavvy-api-api-tokens")) == {
        "api_token",
        "admin_token",
        "next_api_token",
        "next_admin_token",
    }


def test_a_rotation_regenerates_only_the_inactive_slot_and_moves_the_instances_to_it(staging, rotated):
    before = {(r.typ, r.name): unwrap_all(r.inputs) for r in staging.resources}
    after = {(r.typ, r.name): unwrap_all(r.inputs) for r in rotated.resources}
    changed = sorted(name for (typ, name), inputs in after.items() if inputs != before.get((typ, name)))
    assert changed == [
        "swipesavvy-api-admin-token-c",  # the tokens' slot c: the new next pair
        "swipesavvy-api-api-token-c",
        "swipesavvy-api-api-tokens",  # the tokens secret: b's pair current, c's next, a's previous
        "swipesavvy-api-lt",  # the launch template: slot b's login, every secret version
        "swipesavvy-db-backend_b",  # slot b's secrets and the logins holding their password
        "swipesavvy-db-backend_b",
        "swipesavvy-db-backend_b-password",
        "swipesavvy-db-monitor_b",
        "swipesavvy-db-monitor_b",
        "swipesavvy-db-monitor_b-password",
        "swipesavvy-shape",  # the counters, recorded: the next update may move them by one
    ]
    assert boot_variables(rotated)["BACKEND_LOGIN"] == "swipesavvy_backend_b"
    assert boot_variables(rotated)["DB_SECRET_ARN"] == login_arn(rotated, "swipesavvy-db-backend_b")
    assert agent_login(rotated) == "swipesavvy_monitor_b"
    tokens, original = (
        secret_document(rotated, "swipesavvy-api-api-tokens"),
        secret_document(staging, "swipesavvy-api-api-tokens"),
    )
    assert (tokens["previous_api_token"], tokens["previous_admin_token"]) == (
        original["api_token"],
        original["admin_token"],
    )
    # The new current pair is the one every instance booted before the rotation already accepts.
    assert (tokens["api_token"], tokens["admin_token"]) == (original["next_api_token"], original["next_admin_token"])
    assert len({tokens["next_api_token"], tokens["api_token"], tokens["previous_api_token"]}) == 3


def test_the_next_rotation_regenerates_slot_a_and_leaves_b_as_the_instances_hold_it(rotated):
    second = run_program(rotation_config(2, 2))
    keepers = {
        name: second.of_name(PASSWORD, name).inputs.get("keepers")
        for name in ("swipesavvy-db-backend-password", "swipesavvy-db-backend_b-password")
    }
    assert keepers == {
        "swipesavvy-db-backend-password": {"rotation": "2"},
        "swipesavvy-db-backend_b-password": {"rotation": "1"},
    }
    assert unwrap_all(second.of_name(SECRET_VERSION, "swipesavvy-db-backend_b").inputs) == unwrap_all(
        rotated.of_name(SECRET_VERSION, "swipesavvy-db-backend_b").inputs
    )
    assert boot_variables(second)["BACKEND_LOGIN"] == "swipesavvy_backend"


class ReplacedSecretMocks(RecordingMocks):
    """As after `pulumi up --replace` on one secret's value: that secret holds a new version."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        resource_id, outputs = super().new_resource(args)
        if args.typ == SECRET_VERSION and args.name == self.secret:
            outputs = {**outputs, "versionId": "replaced-version"}
        return resource_id, outputs


@pytest.mark.parametrize(
    ("secret", "tag"),
    [
        ("swipesavvy-db-backend", "db-login-secret-version"),
        ("swipesavvy-api-api-tokens", "api-tokens-secret-version"),
        ("swipesavvy-db-monitor", "db-monitor-secret-version"),
        ("swipesavvy-datadog-agent", "datadog-agent-key-version"),
    ],
)
def test_a_new_version_of_any_secret_an_instance_reads_is_a_new_launch_template(staging, secret, tag):
    """An instance reads its secrets only at boot: each one's version is on the launch
    template, so a new value is a new template version, which the refresh rolls out."""
    assert instance_tags(staging)[tag].startswith(f"{secret}-version-")
    replaced = run_program(stack_config("staging"), mocks=ReplacedSecretMocks(secret))
    assert instance_tags(replaced)[tag] == "replaced-version"
    others = {key: value for key, value in instance_tags(replaced).items() if key != tag}
    assert others == {key: value for key, value in instance_tags(staging).items() if key != tag}


# --- the rotation, run: logins through the engine, the reference backend as the instances ----------


class Instance:
    """The reference backend started as an instance of one launch template boots it."""

    def __init__(self, run, rds, login_secrets: dict[str, str], tokens_text: str):
        boot = boot_variables(run)
        login = boot["BACKEND_LOGIN"]
        self.login = login
        self.scratch = Scratch("rotation-test")
        secret = secrets_client().get_secret_value(SecretId=login_secrets[login])["SecretString"]
        settings = BootSettings(
            region="us-east-1",
            release_uri=boot["RELEASE_URI"],
            release_sha256=boot["RELEASE_SHA256"],
            db_secret_arn=boot["DB_SECRET_ARN"],
            node_env="staging",
            db_login=login,
        )
        fixed = fixed_environment(settings) | {"API_PORT": str(free_port()), "DB_SSLMODE": "require"}
        env_file = self.scratch.path / "backend.env"
        env_file.write_text(render_environment(secret, login, fixed, "", tokens_text))
        self.statsd = DogStatsDListener()
        exec_start = unit_settings(render_unit())["ExecStart"]
        self.url = run_backend(self.scratch, RELEASE, exec_start, env_file, self.statsd.port)
        self.dropped = 0

    def drop_connections(self, superuser_dsn: str) -> None:
        """Closes its idle pooled connections on the server and waits until its pool has let go
        of each (the backend logs every one), so the next request must log in."""
        with psycopg.connect(superuser_dsn, autocommit=True) as conn:
            pids = [
                pid for (pid,) in conn.execute("SELECT pid FROM pg_stat_activity WHERE usename = %s", (self.login,))
            ]
            self.dropped += sum(conn.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0] for pid in pids)
        deadline = time.monotonic() + 60
        while self._pool_errors() < self.dropped:
            assert time.monotonic() < deadline, f"the backend never noticed {self.dropped} closed connection(s)"
            time.sleep(0.05)

    def _pool_errors(self) -> int:
        lines = (self.scratch.path / "backend.log").read_text().splitlines()
        return sum('"message":"idle database connection failed"' in line for line in lines)

    def get(self, path: str, token: str) -> int | None:
        return Http(self.url, self.url, "", "", 10.0).fetch("GET", self.url + path, None, token).status

    def stop(self) -> None:
        self.scratch.close()


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js (./install.sh)")
def test_a_rotation_leaves_every_request_of_the_running_backend_answered(staging, rotated, rds_database):
    rds = rds_database
    with connect(rds.master_dsn) as conn:
        apply_migrations(conn)
    # The logins' secrets as the program writes them (rotation 0), pointed at this server.
    where = {"host": rds.server.host, "port": rds.server.port, "dbname": rds.dbname, "engine": "postgres"}
    secrets: dict[str, str] = {}  # login -> its secret ARN
    engines: dict[str, PulumiEngine] = {}
    for login, name in BACKEND_SLOTS.items():
        secrets[login] = put_secret(f"swipesavvy/test/db/{login}-{rds.dbname}", secret_document(staging, name) | where)
        engines[login] = PulumiEngine(rds.env, f"urn:pulumi:staging::swipesavvy::dynamic:{name}")

    def declared(run, name: str, login: str) -> dict:
        inputs = {**run.of_name(LOGIN, name).inputs, "connection": rds.connection(), "database_id": DATABASE_ID}
        inputs.pop("operator", None)
        inputs.pop("reader", None)
        version = secrets_client().describe_secret(SecretId=secrets[login])["VersionIdsToStages"]
        current = next(v for v, stages in version.items() if "AWSCURRENT" in stages)
        return {**inputs, "password_secret_arn": secrets[login], "password_version": current}

    live: list[Instance] = []  # the instances in service, as the load balancer sees them
    answered: list[tuple[str, str, int | None]] = []  # (login, path, status) of every request
    try:
        for login, name in BACKEND_SLOTS.items():
            assert engines[login].up(declared(staging, name, login)) == "create"
        tokens_before = secret_document(staging, "swipesavvy-api-api-tokens")
        old = Instance(staging, rds, secrets, json.dumps(tokens_before))
        live.append(old)

        def traffic(token: str) -> None:
            """Requests to every live instance, each after its pooled connections were closed
            (as a pool recycles them): each request logs in to the database again."""
            for instance in live:
                instance.drop_connections(rds.server.superuser_dsn)
                for path in ("/api/health", "/api/features/all"):
                    answered.append((instance.login, path, instance.get(path, token)))

        traffic(tokens_before["api_token"])
        # `pulumi up` with credentialRotation + 1: slot b gets its new password (secret, then ALTER ROLE) ...
        for login, name in BACKEND_SLOTS.items():
            document = secret_document(rotated, name)
            if document != secret_document(staging, name):
                put_secret(f"swipesavvy/test/db/{login}-{rds.dbname}", document | where)
        outcomes = {login: engines[login].up(declared(rotated, name, login)) for login, name in BACKEND_SLOTS.items()}
        assert outcomes == {"swipesavvy_backend": "same", "swipesavvy_backend_b": "update"}
        tokens_after = secret_document(rotated, "swipesavvy-api-api-tokens")
        traffic(tokens_before["api_token"])
        traffic(tokens_after["api_token"])  # clients that switched at once, to the instance of the old template
        # ... then the refresh launches an instance of the new template before terminating the old one.
        new = Instance(rotated, rds, secrets, json.dumps(tokens_after))
        live.append(new)
        traffic(tokens_before["api_token"])  # clients still on the old token
        traffic(tokens_after["api_token"])
        old.stop()
        live.remove(old)
        traffic(tokens_before["api_token"])
        traffic(tokens_after["api_token"])

        assert [a for a in answered if a[2] != 200] == [], [(i, a) for i, a in enumerate(answered)]
        assert {(login, status) for login, _, status in answered} == {
            ("swipesavvy_backend", 200),
            ("swipesavvy_backend_b", 200),
        }
        # The check would see an outage: rotating the login in use in place (what `pulumi up
        # --replace` on its password did) fails the running instance's next login.
        rds.execute("ALTER ROLE swipesavvy_backend_b PASSWORD 'not-what-the-instance-holds'")
        answered.clear()
        traffic(tokens_after["api_token"])
        assert {status for _, _, status in answered} != {200}
    finally:
        for instance in live:
            instance.stop()
        with psycopg.connect(rds.server.superuser_dsn, autocommit=True) as conn:
            for login in BACKEND_SLOTS:
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(login)))


def test_the_env_file_carries_the_tokens_a_rotation_overlaps():
    secret = json.dumps({"host": "h", "port": 5432, "dbname": "d", "username": "swipesavvy_backend_b", "password": "p"})
    tokens = {
        "api_token": "now",
        "admin_token": "now-admin",
        "next_api_token": "next",
        "next_admin_token": "next-admin",
        "previous_api_token": "old",
        "previous_admin_token": "old-admin",
    }
    text = render_environment(secret, "swipesavvy_backend_b", {}, "", json.dumps(tokens))
    assert text.splitlines()[-6:] == [
        'API_TOKEN="now"',
        'ADMIN_TOKEN="now-admin"',
        'PREVIOUS_API_TOKEN="old"',
        'PREVIOUS_ADMIN_TOKEN="old-admin"',
        'NEXT_API_TOKEN="next"',
        'NEXT_ADMIN_TOKEN="next-admin"',
    ]
    for half in ("previous_admin_token", "next_api_token"):
        with pytest.raises(ValueError) as raised:
            render_environment(
                secret, "swipesavvy_backend_b", {}, "", json.dumps({k: v for k, v in tokens.items() if k != half})
            )
        assert str(raised.value) == (
            "the API tokens secret is not JSON with api_token and admin_token"
            " (and both previous_ ones or neither, both next_ ones or neither)"
        )


@pytest.mark.parametrize(
    ("section", "key"), [("swipesavvy:database", "credentialRotation"), ("swipesavvy:backend", "apiTokenRotation")]
)
def test_a_rotation_counter_that_is_not_a_count_is_refused_at_preview(section, key):
    config = stack_config("staging")
    config[section] = {**config[section], key: -1}
    with pytest.raises(Exception) as raised:
        run_program(config, preview=True)
    assert str(raised.value) == (
        f"{section}.{key} = -1 is invalid: must be an integer from 0 to 1000000"
        f" (fix: pulumi config set --path '{section}.{key}' 0)"
    )


@pytest.mark.parametrize("slots", [LOGIN_SLOTS, TOKEN_SLOTS], ids=["logins", "tokens"])
def test_a_rotation_never_regenerates_a_value_running_instances_hold(slots):
    """From each rotation to the next, the slot whose value is generated anew is neither the one
    in use (running instances hold it) nor, for tokens, the next pair (they accept it already)."""
    for rotation in range(12):
        regenerated = [s for s in slots.all if slots.keepers(rotation, s) != slots.keepers(rotation + 1, s)]
        assert len(regenerated) == 1, rotation
        held = {slots.active(rotation)} | ({slots.next(rotation)} if slots.lead else set())
        assert regenerated[0] not in held, rotation
        assert regenerated[0] == (slots.active(rotation + 1) if not slots.lead else slots.next(rotation + 1))
    assert [slots.keepers(0, s) for s in slots.all] == [None] * slots.count  # as before slots existed
