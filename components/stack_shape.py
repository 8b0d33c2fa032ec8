"""``StackShape``: what a live stack cannot change in place, recorded, and refused at preview.

A new ``network.vpcCidr``, zone list or ``existingVpcId`` would replace the subnets
create-before-delete with overlapping CIDRs, or move the load balancer and the database's
subnet group across VPCs, and fail half-way. A new major ``database.engineVersion`` needs
a new parameter group family and RDS's ``allow_major_version_upgrade``, and is one way.
This resource records those values when the stack is created; its ``check``, which the
engine calls in every preview and, since every other resource depends on it
(``after_shape``), before any step of ``pulumi up``, refuses a change in one line naming the way to do it:
a new stack for the network, ``database.allowMajorVersionUpgrade`` (after a snapshot) for
the engine. Availability zones the stack chose itself (none configured) are pinned: the
recorded ones are kept even when the region's list changes, and the network uses them.
The rotation counters (``database.credentialRotation``, ``backend.apiTokenRotation``) move
up by one per update: a jump or a step back would generate a new password for the slot
the instances use (components/data/credential_slots.py).

No cloud call: create, update and delete only record (deleting the stack deletes the record).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_random as random
from pulumi.dynamic import CheckFailure, CheckResult, CreateResult, DiffResult, Resource, ResourceProvider, UpdateResult

from components.config import NAMESPACE, NetworkConfig
from components.dynamic import changed
from components.network import region_zones
from components.zones import ZONE_COUNT

NETWORK_INPUTS = {"vpc_cidr": "network.vpcCidr", "existing_vpc_id": "network.existingVpcId"}  # input: setting
ROTATION_INPUTS = {
    "credential_rotation": "database.credentialRotation",
    "api_token_rotation": "backend.apiTokenRotation",
}
RECORDED = (*NETWORK_INPUTS, "zones", "engine_major", *ROTATION_INPUTS)


def _shown(value: Any) -> str:
    if value is None:
        return "unset"
    return ",".join(value) if isinstance(value, (list, tuple)) else str(value)


def refusal(stack: str, olds: Mapping[str, Any], news: Mapping[str, Any]) -> tuple[str, str] | None:
    """The first change to a live stack's shape that cannot be made in place, as
    ``(input, one-line message)``; None when there is none (or nothing is recorded yet)."""
    if not olds.get("engine_major"):  # nothing recorded: the stack is being created
        return None
    network_fix = (
        "set it back, or build the new network as a new stack (pulumi stack init <name>) and move to it;"
        " subnets, the load balancer and the database cannot move in place"
    )
    for key, setting in NETWORK_INPUTS.items():
        if changed(olds, news, key):
            return key, (
                f"{NAMESPACE}:{setting} changed from {_shown(olds.get(key))} to {_shown(news.get(key))} on"
                f" stack {stack}, which already has its network: refused before anything changes (fix: {network_fix})"
            )
    if news.get("zones_configured") and changed(olds, news, "zones"):
        return "zones", (
            f"{NAMESPACE}:network.availabilityZones changed from {_shown(olds.get('zones'))} to"
            f" {_shown(news.get('zones'))} on stack {stack}, which already has subnets there: refused before anything"
            f" changes (fix: pulumi config set --path '{NAMESPACE}:network.availabilityZones[0]'"
            f" {_shown(olds.get('zones')).split(',')[0]} (and [1]), or {network_fix})"
        )
    for key, setting in ROTATION_INPUTS.items():
        if olds.get(key) is None:  # recorded before the counters were
            continue
        old, new = int(olds[key]), int(news.get(key) or 0)
        if not old <= new <= old + 1:
            return key, (
                f"{NAMESPACE}:{setting} {old} -> {new} on stack {stack}: a rotation moves the counter up by one per"
                " update, anything else would generate a new password for the credential the instances use"
                f" (fix: pulumi config set --path '{NAMESPACE}:{setting}' {old + 1 if new > old else old})"
            )
    old_major, new_major = int(olds["engine_major"]), int(news["engine_major"])
    if new_major < old_major:
        return "engine_major", (
            f"{NAMESPACE}:database.engineVersion {new_major} is older than the database's {old_major} on stack"
            f" {stack}: RDS cannot downgrade (fix: pulumi config set --path '{NAMESPACE}:database.engineVersion'"
            f" {old_major}; for {new_major}, restore a dump into a new stack)"
        )
    if new_major > old_major and not news.get("allow_major_version_upgrade"):
        return "engine_major", (
            f"{NAMESPACE}:database.engineVersion {old_major} -> {new_major} on stack {stack} is a major version"
            f" upgrade: refused (fix: take a snapshot, then pulumi config set --path"
            f" '{NAMESPACE}:database.allowMajorVersionUpgrade' true; docs/operations.md \"Upgrading PostgreSQL\")"
        )
    return None


def checked_inputs(olds: Mapping[str, Any], news: Mapping[str, Any]) -> dict[str, Any]:
    """``news``, with the recorded zones kept when the stack chose them itself."""
    if olds.get("zones") and not news.get("zones_configured"):
        return {**news, "zones": list(olds["zones"])}
    return dict(news)


class StackShapeProvider(ResourceProvider):
    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        refused = refusal(news.get("stack", ""), olds, news)
        if refused:
            return CheckResult(news, [CheckFailure(*refused)])
        return CheckResult(checked_inputs(olds, news), [])

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        keys = (*RECORDED, "zones_configured", "allow_major_version_upgrade")
        return DiffResult(changes=any(changed(olds, news, key) for key in keys), replaces=[])

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_=f"{props['stack']}-shape", outs=props)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=news)


@dataclass
class StackShapeArgs:
    stack: str
    network: NetworkConfig
    engine_version: str
    allow_major_version_upgrade: bool
    credential_rotation: int = 0
    api_token_rotation: int = 0


class StackShape(Resource, module="stack", name="StackShape"):
    zones: pulumi.Output[list]
    """The zones the network's subnets go into: configured, or pinned once chosen."""

    def __init__(self, name: str, args: StackShapeArgs, opts: pulumi.ResourceOptions | None = None):
        network = args.network
        if network.uses_existing_vpc:
            zones: pulumi.Input[list] = []
        elif network.availability_zones:
            zones = list(network.availability_zones[:ZONE_COUNT])
        else:
            zones = region_zones()
        super().__init__(
            StackShapeProvider(),
            name,
            {
                "stack": args.stack,
                "vpc_cidr": None if network.uses_existing_vpc else network.vpc_cidr,
                "existing_vpc_id": network.existing_vpc_id,
                "zones": zones,
                "zones_configured": bool(network.availability_zones),
                "engine_major": args.engine_version.split(".")[0],
                "allow_major_version_upgrade": args.allow_major_version_upgrade,
                "credential_rotation": args.credential_rotation,
                "api_token_rotation": args.api_token_rotation,
            },
            opts,
        )


def after_shape(shape: StackShape) -> list[pulumi.Resource]:
    """Make every resource declared from now on depend on ``shape`` (a stack transformation),
    so its Check refuses before any step also when nothing previews first (--skip-preview:
    CI, the Automation API). Returns the list the declared resources are recorded in."""
    declared: list[pulumi.Resource] = []

    def wait_for_shape(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult:
        declared.append(args.resource)
        return pulumi.ResourceTransformationResult(
            args.props, pulumi.ResourceOptions.merge(args.opts, pulumi.ResourceOptions(depends_on=[shape]))
        )

    pulumi.runtime.register_stack_transformation(wait_for_shape)
    return declared


def destroy_guard(name: str, declared: list[pulumi.Resource], protect: bool) -> random.RandomId:
    """A resource that depends on everything ``declared`` and is protected while ``protect``:
    a destroy deletes dependents first, so this is its first delete, and it fails there with
    nothing deleted, whether or not a preview ran (``protect`` alone on the database stops a
    destroy only when it reaches the database, after everything depending on it is gone)."""
    return random.RandomId(
        name,
        byte_length=1,
        # A copy: the transformation records this resource too, which must not depend on itself.
        opts=pulumi.ResourceOptions(depends_on=list(declared), protect=protect),
    )
