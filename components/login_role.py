"""``LoginRole``: an application login (``swipesavvy_backend``, ``swipesavvy_analytics``).

Replaces the pulumi_postgresql provider, whose configuration would have to hold the
master password in state (RDS rotates it every 7 days, leaving that copy stale for
``refresh`` and ``destroy``). Here the connection names the master secret and the login
names its own secret; both passwords are read when the provider runs (dbops.db_credentials).
The secret's version id is an input, so a new password is an update.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.dynamic import Resource

from components.dynamic import IDENTITY_INPUT, PostgresResourceProvider, run

LOGIN_ARGS = ("name", "group", "connection_limit", "statement_timeout_ms", "password_secret_arn")


class LoginRoleProvider(PostgresResourceProvider):
    replace_inputs = (IDENTITY_INPUT, "name")
    work_inputs = ("group", "connection_limit", "statement_timeout_ms", "password_secret_arn", "password_version")

    def resource_id(self, props: Mapping[str, Any]) -> str:
        return f"{props['database_id']}/role/{props['name']}"

    def apply(self, props: dict[str, Any]) -> dict[str, Any]:
        run(props, "create_login", {key: props[key] for key in LOGIN_ARGS})
        print(f"LoginRole: {props['name']} is as declared")
        return props

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        run(props, "drop_login", {"name": props["name"]})

    def observe(self, props: Mapping[str, Any]) -> dict[str, Any] | None:
        actual = run(props, "read_login", {"name": props["name"]})["login"]
        return None if actual is None else {k: v for k, v in actual.items() if k != "name"}


@dataclass
class LoginRoleArgs:
    connection: pulumi.Input[dict]
    """A login that may create roles (on RDS: the master user); names the secret with its password."""
    database_id: pulumi.Input[str]
    name: str
    group: str
    connection_limit: int
    password_secret_arn: pulumi.Input[str]
    """The login's own secret (RDS JSON shape) holding its password."""
    password_version: pulumi.Input[str]
    """The secret version holding the current password: a new one is an update."""
    statement_timeout_ms: int = 0
    operator: pulumi.Input[str] | None = None
    """The operator function's ARN when the database is reached through it."""
    reader: pulumi.Input[str] | None = None
    """Its read-only twin's ARN, for refresh."""


class LoginRole(Resource, module="db", name="LoginRole"):
    def __init__(self, name: str, args: LoginRoleArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(LoginRoleProvider(), name, vars(args), opts)
