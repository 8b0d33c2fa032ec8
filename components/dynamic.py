"""What the SwipeSavvy dynamic providers share: the connection, the diff, update and refresh.

The engine runs a provider in its own process (``python -m pulumi.dynamic``, in the
project root) and talks to it over gRPC: numbers arrive as doubles, secrets unwrapped,
and during preview any input may be the "unknown" sentinel. ``delete`` and ``read`` get
the outputs stored in state, not what the program computes now. So providers hold no
state: each call runs a named operation (``dbops.operations``) through a transport, either
a direct connection from the ``connection`` input, or, when the ``operator`` input names
the in-VPC operator function, an invocation of it (of its read-only twin, the ``reader``
input, for the reads ``pulumi refresh`` makes). Passwords are read from Secrets
Manager where the operation runs: state never holds one that could go stale.

The provider classes are pickled by reference: their module path and class name are in
every stack's state. Never move or rename one without leaving an alias at the old path
(tests/test_provider_paths.py pins them).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi.dynamic import CreateResult, DiffResult, ReadResult, ResourceProvider, UpdateResult
from pulumi.runtime.rpc import UNKNOWN

from dbops.transport import run_through

# The input that names which database a resource lives in.
IDENTITY_INPUT = "database_id"
CONNECTION_INPUT = "connection"
# The operator function (ARN) that runs the operations inside the VPC; absent: direct.
OPERATOR_INPUT = "operator"
# Its read-only twin (ARN): refresh reads through it (dbops.transport), never through the operator.
READER_INPUT = "reader"


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


def run(props: Mapping[str, Any], operation: str, args: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Run ``operation`` for the resource ``props`` describe, through its transport."""
    return run_through(
        props[CONNECTION_INPUT], props.get(OPERATOR_INPUT), operation, args or {}, reader_arn=props.get(READER_INPUT)
    )


class PostgresResourceProvider(ResourceProvider):
    """Base for providers whose resource lives in one PostgreSQL database.

    Subclasses declare their inputs and implement ``apply`` (do the work, return the
    outputs) and ``observe`` (what the database holds now, for ``pulumi refresh``):
    - ``replace_inputs``: a change means a new resource (delete first: fixed identity);
    - ``work_inputs``: a change means work in the database;
    - ``recorded_inputs``: a change is an update that only records the new value in state
      (the connection, the operator and reader, the delete policy), so ``delete`` acts on
      the current one;
    - ``output_keys``: computed by ``apply``; kept as they are when no work is needed.
    """

    replace_inputs: tuple[str, ...] = (IDENTITY_INPUT,)
    work_inputs: tuple[str, ...] = ()
    recorded_inputs: tuple[str, ...] = (CONNECTION_INPUT, OPERATOR_INPUT, READER_INPUT)
    output_keys: tuple[str, ...] = ()

    def resource_id(self, props: Mapping[str, Any]) -> str:
        raise NotImplementedError

    def apply(self, props: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def observe(self, props: Mapping[str, Any]) -> dict[str, Any] | None:
        """The work inputs and outputs as the database holds them; None when it is gone."""
        raise NotImplementedError

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = [k for k in self.replace_inputs if changed(olds, news, k)]
        updates = [k for k in (*self.work_inputs, *self.recorded_inputs) if changed(olds, news, k)]
        return DiffResult(changes=bool(replaces or updates), replaces=replaces, delete_before_replace=True)

    def needs_work(self, olds: Mapping[str, Any], news: Mapping[str, Any]) -> bool:
        return any(olds.get(k) != news.get(k) for k in self.work_inputs)

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_=self.resource_id(props), outs=self.apply(props))

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        if not self.needs_work(olds, news):
            return UpdateResult(outs={**news, **{k: olds.get(k) for k in self.output_keys}})
        return UpdateResult(outs=self.apply(news))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        observed = self.observe(props)
        if observed is None:  # an empty id tells the engine the resource no longer exists
            return ReadResult(id_="", outs={})
        outs = {**props, **observed}
        inputs = {k: v for k, v in outs.items() if k not in self.output_keys}
        return ReadResult(id_=id_, outs=outs, inputs=inputs)
