"""Where a dynamic provider's database password comes from: Secrets Manager, at run time.

The ``connection`` input that the Pulumi resources carry (and so Pulumi state) names the
secret that holds the password, never the password: RDS rotates its managed master
password every 7 days, and a copy in state would be stale for the next ``refresh`` or
``destroy``, which run from state without the program. Reading the secret each time a
provider runs always gets the current password.

The engine hands providers every number as a protobuf double (5432 arrives as 5432.0),
so the port is coerced here, once, for every provider.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from psycopg.conninfo import make_conninfo

from dbops.aws_credentials import credentials_problem

PASSWORD_SECRET_KEY = "password_secret_arn"
CONNECTION_KEYS = ("host", "port", "dbname", "user", "sslmode")


class CredentialsUnavailable(Exception):
    """The password could not be read; the message is one line and names the secret's ARN."""


def port_number(value: Any) -> int:
    """A TCP port from what the engine sends: 5432, 5432.0 or "5432"."""
    if isinstance(value, bool):
        raise ValueError(f"connection.port = {value!r} is not a port number")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if not isinstance(value, int) or not 1 <= value <= 65535:
        raise ValueError(f"connection.port = {value!r} is not a port number (1-65535)")
    return value


def secret_region(arn: str) -> str:
    """``arn:aws:secretsmanager:<region>:<account>:secret:<name>`` -> region."""
    parts = arn.split(":")
    if len(parts) < 7 or parts[2] != "secretsmanager" or not parts[3]:
        raise CredentialsUnavailable(f"{arn!r} is not a Secrets Manager secret ARN")
    return parts[3]


def read_password(arn: str) -> str:
    """The ``password`` field of a secret in the RDS JSON shape (as RDS-managed master
    secrets and this program's login secrets are)."""
    region = secret_region(arn)
    try:
        text = boto3.client("secretsmanager", region_name=region).get_secret_value(SecretId=arn)["SecretString"]
    except ClientError as error:
        reason = credentials_problem(error) or error.response.get("Error", {}).get("Code", "error")
        raise CredentialsUnavailable(f"cannot read secret {arn}: {reason}") from None
    except BotoCoreError as error:
        raise CredentialsUnavailable(f"cannot read secret {arn}: {credentials_problem(error) or error}") from None
    try:
        return json.loads(text)["password"]
    except (ValueError, KeyError, TypeError):
        raise CredentialsUnavailable(f"secret {arn} has no 'password' field in its JSON") from None


def conninfo_for(connection: Mapping[str, Any]) -> str:
    """A libpq conninfo for the ``connection`` input: its fields plus the password read now."""
    params = {key: connection[key] for key in CONNECTION_KEYS if connection.get(key) not in (None, "")}
    if "port" in params:
        params["port"] = port_number(params["port"])
    arn = connection.get(PASSWORD_SECRET_KEY)
    if arn:
        params["password"] = read_password(arn)
    return make_conninfo(**params)
