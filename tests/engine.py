"""Drive a dynamic provider exactly as the Pulumi engine does.

The engine starts ``python -u -m pulumi.dynamic`` in the project root, reads the gRPC port
it prints, calls Configure (the plugin answers ``acceptSecrets=False``, so the engine
sends secret values unwrapped), then Check / Diff / Create / Update / Read / Delete with
properties as protobuf Structs: every number a double, the serialized provider in
``__provider``, the unknown sentinel where a preview does not know a value yet. Delete
and Read get the outputs stored in state, never what the program computes now.

``PulumiEngine`` keeps a resource's state (id, inputs, outputs) between calls the way the
engine's state file does, and offers the engine's sequences (``preview``, ``up``,
``refresh``, ``destroy``) on top of the raw calls.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import struct_pb2
from pulumi.runtime import rpc
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc
from pulumi_program import PROJECT_ROOT, unwrap_all

DIFF_NONE, DIFF_SOME = provider_pb2.DiffResponse.DIFF_NONE, provider_pb2.DiffResponse.DIFF_SOME


class ProviderError(Exception):
    """The plugin failed a call; the message is what the engine would show."""


def to_struct(props: dict[str, Any]) -> struct_pb2.Struct:
    """Serialize as the SDK does for the wire, after stripping secrets (acceptSecrets=False)."""
    # A private loop, as the plugin does: asyncio.run would unset the thread's loop that
    # the mocked program runs (tests/pulumi_program.py) rely on.
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(rpc.serialize_properties(unwrap_all(props), {}))
    finally:
        loop.close()


def from_struct(struct: struct_pb2.Struct, keep_unknowns: bool = False) -> dict[str, Any]:
    return rpc.deserialize_properties(struct, keep_unknowns)


@dataclass
class ResourceState:
    """One resource in the engine's state: what Delete and Read will be given."""

    id: str = ""
    inputs: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)

    @property
    def exists(self) -> bool:
        return bool(self.id)


class ProviderPlugin:
    """One ``python -m pulumi.dynamic`` process, as the engine runs it for one command."""

    def __init__(self, env: dict[str, str], cwd: Path = PROJECT_ROOT):
        self.process = subprocess.Popen(
            [sys.executable, "-u", "-m", "pulumi.dynamic"],
            cwd=cwd,
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        port = self.process.stdout.readline().decode().strip()
        if not port.isdigit():
            self.close()
            raise ProviderError(f"the plugin did not print its port: {self.process.stderr.read().decode()[-2000:]}")
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        self.stub = provider_pb2_grpc.ResourceProviderStub(self.channel)
        self.stub.Configure(provider_pb2.ConfigureRequest(acceptSecrets=True, acceptResources=True))

    def close(self) -> None:
        if getattr(self, "channel", None):
            self.channel.close()
        self.process.kill()
        self.process.wait(timeout=10)

    def __enter__(self) -> ProviderPlugin:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    def call(self, method: str, request):
        try:
            return getattr(self.stub, method)(request, timeout=300)
        except grpc.RpcError as error:
            raise ProviderError(error.details()) from None


class PulumiEngine:
    """The engine's side of one dynamic resource: its state and the calls each command makes."""

    def __init__(self, env: dict[str, str], urn: str, cwd: Path = PROJECT_ROOT):
        self.env, self.urn, self.cwd = env, urn, cwd
        self.state = ResourceState()

    def plugin(self, cwd: Path | None = None) -> ProviderPlugin:
        """A fresh plugin process: every Pulumi command starts its own."""
        return ProviderPlugin(self.env, cwd or self.cwd)

    # --- raw calls -------------------------------------------------------------------------

    def check(self, plugin: ProviderPlugin, news: dict[str, Any]) -> dict[str, Any]:
        response = plugin.call(
            "Check",
            provider_pb2.CheckRequest(urn=self.urn, olds=to_struct(self.state.inputs), news=to_struct(news)),
        )
        if response.failures:
            raise ProviderError("; ".join(f"{f.property}: {f.reason}" for f in response.failures))
        return from_struct(response.inputs, keep_unknowns=True)

    def diff(self, plugin: ProviderPlugin, checked: dict[str, Any]) -> provider_pb2.DiffResponse:
        return plugin.call(
            "Diff",
            provider_pb2.DiffRequest(
                id=self.state.id,
                urn=self.urn,
                olds=to_struct(self.state.outputs),
                news=to_struct(checked),
                old_inputs=to_struct(self.state.inputs),
            ),
        )

    def create(self, plugin: ProviderPlugin, checked: dict[str, Any]) -> None:
        response = plugin.call("Create", provider_pb2.CreateRequest(urn=self.urn, properties=to_struct(checked)))
        self.state = ResourceState(response.id, checked, from_struct(response.properties))

    def update(self, plugin: ProviderPlugin, checked: dict[str, Any]) -> None:
        response = plugin.call(
            "Update",
            provider_pb2.UpdateRequest(
                id=self.state.id,
                urn=self.urn,
                olds=to_struct(self.state.outputs),
                news=to_struct(checked),
                old_inputs=to_struct(self.state.inputs),
            ),
        )
        self.state = ResourceState(self.state.id, checked, from_struct(response.properties))

    def delete(self, plugin: ProviderPlugin) -> None:
        plugin.call(
            "Delete",
            provider_pb2.DeleteRequest(
                id=self.state.id,
                urn=self.urn,
                properties=to_struct(self.state.outputs),
                old_inputs=to_struct(self.state.inputs),
            ),
        )
        self.state = ResourceState()

    # --- the engine's sequences ------------------------------------------------------------

    def preview(self, news: dict[str, Any]) -> provider_pb2.DiffResponse | None:
        """`pulumi preview`: Check, then Diff for an existing resource (None for a create)."""
        with self.plugin() as plugin:
            checked = self.check(plugin, news)
            return self.diff(plugin, checked) if self.state.exists else None

    def up(self, news: dict[str, Any], cwd: Path | None = None) -> str:
        """`pulumi up` for this resource; returns what it did: create, update, replace or same."""
        with self.plugin(cwd) as plugin:
            checked = self.check(plugin, news)
            if not self.state.exists:
                self.create(plugin, checked)
                return "create"
            diff = self.diff(plugin, checked)
            if diff.changes != DIFF_SOME:
                return "same"
            if diff.replaces:
                assert diff.deleteBeforeReplace, "a fixed-identity resource must be deleted before its replacement"
                self.delete(plugin)
                self.create(plugin, checked)
                return "replace"
            self.update(plugin, checked)
            return "update"

    def refresh(self) -> None:
        """`pulumi refresh`: Read with the state's outputs; an empty id removes it from state."""
        with self.plugin() as plugin:
            response = plugin.call(
                "Read",
                provider_pb2.ReadRequest(
                    id=self.state.id,
                    urn=self.urn,
                    properties=to_struct(self.state.outputs),
                    inputs=to_struct(self.state.inputs),
                ),
            )
        if not response.id:
            self.state = ResourceState()
            return
        inputs = from_struct(response.inputs) if response.HasField("inputs") else self.state.inputs
        self.state = ResourceState(response.id, inputs, from_struct(response.properties))

    def destroy(self) -> None:
        """`pulumi destroy`: Delete from state alone, in a plugin that never saw the program."""
        with self.plugin() as plugin:
            self.delete(plugin)
