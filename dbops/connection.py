"""Opening PostgreSQL connections for the CLI, the dynamic providers and the tests.

One place turns a DSN into a psycopg connection and turns
libpq's multi-line failures into one line that never contains the password: every
message raised here goes through ``scrub``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg
from psycopg.conninfo import conninfo_to_dict

APPLICATION_NAME = "swipesavvy-ops"
CONNECT_TIMEOUT_SECONDS = 10
REDACTED = "…"
SECRET_KEYS = ("password", "sslpassword", "oauth_client_secret", "scram_client_key", "scram_server_key")
_QUOTED = re.compile(r'"([^"]*)"')
# libpq's checks of parameter values (fe-connect.c): a bad DSN, not an unreachable server.
_BAD_PARAMETER = re.compile(r"invalid \w+ value|for connection option|invalid port number|could not match \d+ ")


class DatabaseUnavailable(Exception):
    """The database could not be reached or refused the login; the message is one line."""


class InvalidConnectionString(ValueError):
    """The DSN itself is malformed; the message is one line."""


DEFAULT_LOCK_TIMEOUT_S = 60  # how long a run waits for another run's lock, unless told otherwise


class LockTimeout(Exception):
    """Another session held an advisory lock for longer than the caller would wait."""


def raised_during(error: BaseException, *kinds: type[BaseException]) -> bool:
    """True when ``error``, or an exception it was raised from or while handling, is one of
    ``kinds`` (a lock wait that gave up inside a SeedError, a Ctrl-C under a cleanup error)."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, kinds):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def scrub(message: str, conninfo: str) -> str:
    """``message`` without ``conninfo`` or any secret in it, whatever produced the message.

    When the DSN does not even parse, its password cannot be located, so every quoted
    fragment libpq echoed (it quotes what it took from the DSN) is withheld, except
    single punctuation marks such as ``"]"``.
    """
    try:
        params = conninfo_to_dict(conninfo)
    except psycopg.Error:
        message = _QUOTED.sub(lambda m: m[0] if re.fullmatch(r"[^\w\s]?", m[1]) else f'"{REDACTED}"', message)
        secrets = []
    else:
        secrets = [str(params[key]) for key in SECRET_KEYS if params.get(key)]
    for secret in sorted([conninfo.strip(), *secrets], key=len, reverse=True):
        if secret:
            message = message.replace(secret, REDACTED)
    return message


def describe(conninfo: str) -> str:
    """``user@host:port/dbname`` for messages: never the password."""
    params = conninfo_to_dict(conninfo)
    host = params.get("host") or "localhost"
    port = params.get("port") or 5432
    return f"{params.get('user', '?')}@{host}:{port}/{params.get('dbname', '?')}"


def _one_line(error: psycopg.Error) -> str:
    """The most specific line of a libpq error: the server's FATAL text when there is one."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    for line in reversed(lines):
        if "FATAL:" in line:
            return line.split("FATAL:", 1)[1].strip()
    if not lines:
        return type(error).__name__
    # 'connection failed: connection to server at "h", port 1 failed: Connection refused'
    return lines[0].rsplit("failed: ", 1)[-1].removeprefix("connection is bad: ")


def _bad_port(conninfo: str) -> str | None:
    """Why the DSN's port is unusable, checked before psycopg resolves hosts with it
    (which would report "Servname not supported" as if the server were unreachable)."""
    for port in str(conninfo_to_dict(conninfo).get("port") or "").split(","):
        if port and not (port.isdigit() and 1 <= int(port) <= 65535):
            return f'invalid port number: "{port}" (must be from 1 to 65535)'
    return None


def connect(conninfo: str, *, autocommit: bool = True) -> psycopg.Connection:
    """Connect or raise DatabaseUnavailable with a one-line reason naming the target.

    A malformed DSN or a bad parameter value (port, sslmode...) raises InvalidConnectionString.
    """
    try:
        reason = _bad_port(conninfo)
        if reason is None:
            return psycopg.connect(
                conninfo,
                autocommit=autocommit,
                application_name=APPLICATION_NAME,
                connect_timeout=CONNECT_TIMEOUT_SECONDS,
            )
    except psycopg.OperationalError as error:
        reason = _one_line(error)
        if not _BAD_PARAMETER.search(reason):
            raise DatabaseUnavailable(scrub(f"cannot connect to {describe(conninfo)}: {reason}", conninfo)) from None
    except psycopg.Error as error:  # the DSN does not parse
        reason = _one_line(error)
    raise InvalidConnectionString(scrub(f"invalid connection string: {reason}", conninfo))


@contextmanager
def advisory_lock(
    conn: psycopg.Connection, key: int, *, timeout_s: float, on_wait: Callable[[], None]
) -> Iterator[None]:
    """Hold the session advisory lock ``key`` (``conn`` in autocommit mode).

    When another session holds it, call ``on_wait`` once and wait at most ``timeout_s``
    seconds, then raise LockTimeout (at once for 0: lock_timeout 0 would mean forever). Session advisory locks are re-entrant,
    so the code inside may take the same key again, as the migration runner and the
    seeder do: this only bounds their wait.
    """
    if not conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0]:
        if timeout_s <= 0:
            raise LockTimeout
        on_wait()
        _wait_for_lock(conn, key, timeout_s)
    try:
        yield
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (key,))


def _wait_for_lock(conn: psycopg.Connection, key: int, timeout_s: float) -> None:
    conn.execute("SELECT set_config('lock_timeout', %s, false)", (f"{max(1, round(timeout_s * 1000))}ms",))
    try:
        conn.execute("SELECT pg_advisory_lock(%s)", (key,))
    except psycopg.errors.LockNotAvailable:
        raise LockTimeout from None
    finally:
        conn.execute("RESET lock_timeout")
