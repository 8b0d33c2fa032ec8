"""What an operator function may do: its own configuration, never its event.

The program writes each function's authority into its environment (``AUTHORITY_ENV``, a
JSON object): the stack's database and its deploying login (the RDS master, by secret
ARN), the logins it manages with their groups and secrets, whether data destruction is
allowed, and its access (``write``, or ``read`` with the login it reads as). An event
names an operation and its arguments; the ``connection`` it carries (kept so that older
functions and callers understand each other) must name this database and its deploying
login. Anything else (another database, role, group or secret, an operation this access
does not run, a destructive one the stack forbids) is refused before any connection is
made, naming what was asked for.

Plain Python, no Pulumi and no database: the handler calls ``authorize``, the program
builds the document with ``Authority.to_json``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from dbops.db_credentials import PASSWORD_SECRET_KEY, port_number
from dbops.operations import DESTRUCTIVE_OPERATIONS, OPERATIONS, READ_OPERATIONS, InvalidRequest

AUTHORITY_ENV = "SWIPESAVVY_OPERATOR_AUTHORITY"
ACCESS_WRITE, ACCESS_READ = "write", "read"
DATABASE_KEYS = ("host", "port", "dbname", "user", "sslmode", PASSWORD_SECRET_KEY)
# Operations whose ``name`` argument is a login, and the one that connects as a login.
LOGIN_NAME_OPERATIONS = ("create_login", "read_login", "drop_login")
AS_LOGIN_OPERATION = "verify_login"
REFUSED = "nothing was changed"


class AuthorityMissing(Exception):
    """The function has no usable configuration: it refuses every request (one line)."""


@dataclass(frozen=True)
class ManagedLogin:
    group: str
    secret_arn: str
    connection_limit: int  # as the stack declares them: a create_login asking for others is refused
    statement_timeout_ms: int = 0


@dataclass(frozen=True)
class Authority:
    access: str  # ACCESS_WRITE or ACCESS_READ
    database: Mapping[str, Any]  # DATABASE_KEYS: where, and the deploying login's secret ARN
    logins: Mapping[str, ManagedLogin] = field(default_factory=dict)
    allow_data_destruction: bool = False
    reader_login: str | None = None  # read access: the managed login it connects as

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> Authority:
        if not text:
            raise AuthorityMissing(
                f"this operator has no {AUTHORITY_ENV} configuration and refuses every request "
                "(fix: deploy it with `pulumi up`)"
            )
        try:
            document = json.loads(text)
            authority = cls(
                access=document["access"],
                database={key: document["database"][key] for key in DATABASE_KEYS},
                logins={name: ManagedLogin(**login) for name, login in document["logins"].items()},
                allow_data_destruction=document["allow_data_destruction"] is True,
                reader_login=document.get("reader_login"),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise AuthorityMissing(
                f"this operator's {AUTHORITY_ENV} configuration is unreadable ({type(error).__name__}: {error}) "
                "(fix: deploy it with `pulumi up`)"
            ) from None
        if authority.access not in (ACCESS_WRITE, ACCESS_READ) or (
            authority.access == ACCESS_READ and authority.reader_login not in authority.logins
        ):
            raise AuthorityMissing(f"this operator's {AUTHORITY_ENV} configuration names no usable access or login")
        return authority

    def connection_as(self, login: str | None = None) -> dict[str, Any]:
        """The database's connection as the deploying login, or as managed ``login``."""
        if login is None:
            return dict(self.database)
        return {**self.database, "user": login, PASSWORD_SECRET_KEY: self.logins[login].secret_arn}


def _same_database(authority: Authority, connection: Mapping[str, Any]) -> None:
    mine = authority.database
    asked = (connection.get("host"), port_number(connection.get("port")), connection.get("dbname"))
    if asked != (mine["host"], port_number(mine["port"]), mine["dbname"]):
        raise InvalidRequest(
            f"database {asked[2]!r} at {asked[0]}:{asked[1]} is not this operator's database "
            f"{mine['dbname']!r} at {mine['host']}:{port_number(mine['port'])}; {REFUSED}"
        )


def _managed(authority: Authority, name: Any) -> ManagedLogin:
    if name not in authority.logins:
        raise InvalidRequest(
            f"role {name!r} is not a login this stack manages ({', '.join(sorted(authority.logins))}); {REFUSED}"
        )
    return authority.logins[name]


def _secret_of(login: str, expected: str, asked: Any) -> None:
    if asked != expected:
        raise InvalidRequest(f"secret {asked!r} is not {login}'s secret as this stack declares it; {REFUSED}")


def _login_of(authority: Authority, operation: str, connection: Mapping[str, Any]) -> str | None:
    """Who the event's connection names: the deploying login (None) or, for verify_login
    only, a managed login; each with its own secret."""
    user, secret = connection.get("user"), connection.get(PASSWORD_SECRET_KEY)
    if operation == AS_LOGIN_OPERATION:
        _secret_of(user, _managed(authority, user).secret_arn, secret)
        return user
    master = authority.database["user"]
    if user != master:
        raise InvalidRequest(f"role {user!r} is not this database's deploying login {master!r}; {REFUSED}")
    _secret_of(master, authority.database[PASSWORD_SECRET_KEY], secret)
    return None


def _check_arguments(authority: Authority, operation: str, args: Mapping[str, Any]) -> None:
    if operation not in LOGIN_NAME_OPERATIONS or "name" not in args:
        return  # a missing argument is the operation's own one-line error
    login = _managed(authority, args["name"])
    if operation == "create_login":
        if "group" in args and args["group"] != login.group:
            raise InvalidRequest(
                f"group {args['group']!r} is not {args['name']}'s group {login.group!r} as this stack declares it;"
                f" {REFUSED}"
            )
        if PASSWORD_SECRET_KEY in args:
            _secret_of(args["name"], login.secret_arn, args[PASSWORD_SECRET_KEY])
        # A missing connection_limit is the operation's own error; a missing timeout means none (0).
        asked = {
            "connection_limit": args.get("connection_limit", login.connection_limit),
            "statement_timeout_ms": args.get("statement_timeout_ms") or 0,
        }
        for setting, value in asked.items():
            declared = getattr(login, setting)
            if isinstance(value, bool) or value != declared:
                raise InvalidRequest(
                    f"{setting} {value!r} is not {args['name']}'s {setting} {declared} as this stack declares it;"
                    f" {REFUSED}"
                )


def authorize(
    authority: Authority, operation: str, connection: Mapping[str, Any], args: Mapping[str, Any]
) -> dict[str, Any]:
    """The connection ``operation`` runs over, when this authority allows the event; else
    InvalidRequest naming what it asked for (nothing has touched the database yet)."""
    if operation not in OPERATIONS:
        raise InvalidRequest(f"unknown operation {operation!r}; known: {', '.join(OPERATIONS)}")
    if authority.access == ACCESS_READ and operation not in READ_OPERATIONS:
        raise InvalidRequest(
            f"{operation} is not a read; this is the read-only operator (it runs {', '.join(sorted(READ_OPERATIONS))})"
            f" and the change needs the stack's operator function; {REFUSED}"
        )
    if operation in DESTRUCTIVE_OPERATIONS and not authority.allow_data_destruction:
        raise InvalidRequest(
            f"{operation} destroys data, which this stack does not allow (database.allowDataDestruction is false);"
            f" {REFUSED}"
        )
    _same_database(authority, connection)
    login = _login_of(authority, operation, connection)
    _check_arguments(authority, operation, args)
    return authority.connection_as(authority.reader_login if authority.access == ACCESS_READ else login)
