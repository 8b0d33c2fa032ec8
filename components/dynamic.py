"""What the SwipeSavvy dynamic providers share: the database connection input and diffs.

Providers are pickled by reference and run in a separate process (see
shared/reference/pulumi-notes.md), so they hold no state: each method opens its own
connection from the ``connection`` input, which is a secret end to end. During preview
any input may be the engine's "unknown" sentinel; ``diff`` never connects.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextlib import contextmanager
from typing import Any

import psycopg
from pulumi.dynamic import DiffResult, ResourceProvider
from pulumi.runtime.rpc import UNKNOWN

from ops.connection import connect, conninfo_from_mapping

# The input that names which database a resource lives in: changing it means a new
# resource (delete first: a schema or dataset has a fixed identity).
IDENTITY_INPUT = "database_id"
CONNECTION_INPUT = "connection"


def is_unknown(value: Any) -> bool:
    """True when ``value`` is, or contains, a value the engine does not know yet."""
    if isinstance(value, str):
        return value == UNKNOWN
    if isinstance(value, Mapping):
        return any(is_unknown(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(is_unknown(v) for v in value)
    return False


def changed(olds: Mapping[str, Any], news: Mapping[str, Any], key: str) -> bool:
    return is_unknown(news.get(key)) or olds.get(key) != news.get(key)


@contextmanager
def open_connection(props: Mapping[str, Any]) -> Iterable[psycopg.Connection]:
    with connect(conninfo_from_mapping(props[CONNECTION_INPUT])) as conn:
        yield conn


class PostgresResourceProvider(ResourceProvider):
    """Base for providers whose resource lives in one PostgreSQL database.

    Subclasses list ``work_inputs``: the inputs whose change means work in the database.
    A change of the connection alone (rotated password, a tunnel) is an update that only
    records the new connection, so ``delete`` can still reach the database.
    """

    work_inputs: tuple[str, ...] = ()

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = [IDENTITY_INPUT] if changed(olds, news, IDENTITY_INPUT) else []
        updates = [k for k in (*self.work_inputs, CONNECTION_INPUT) if changed(olds, news, k)]
        return DiffResult(changes=bool(replaces or updates), replaces=replaces, delete_before_replace=True)

    def needs_work(self, olds: Mapping[str, Any], news: Mapping[str, Any]) -> bool:
        return any(olds.get(k) != news.get(k) for k in self.work_inputs)
