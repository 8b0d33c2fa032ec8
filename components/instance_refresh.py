"""``InstanceRefreshWait``: rolls the backend's instances to a new launch template version,
and `pulumi up` ends green only when they run it.

A rollback (automatic or manual) launches instances that "match the configuration that you
last saved on the Auto Scaling group before starting the instance refresh" (EC2 Auto Scaling
user guide, "Undo changes with a manual or auto rollback"). The pulumi-aws provider saves a
new version on the group *before* it starts its refresh (terraform-provider-aws#34189), so
its rollback would return to the broken version. So the group never takes a new version from
the program (it ignores changes of its launch template's version and has no
``instance_refresh`` block), and this resource moves it:

- keyed to the launch template version: a new version (a release, an AMI, a setting) is a
  refresh; a run that changes nothing does not call AWS;
- it starts the refresh with the version as its ``DesiredConfiguration``: "once the instance
  refresh succeeds, Amazon EC2 Auto Scaling updates the settings of the Auto Scaling group to
  reflect the new desired configuration" (API reference, StartInstanceRefresh). Until then the
  group's saved configuration stays on the previous version, which is what a rollback (and
  any instance the group launches meanwhile) runs. A refresh already active (one a cancelled
  `pulumi up` left) is followed first;
- ``AutoRollback``: a failed refresh puts the instances back on the previous version, and the
  line says so. A refresh still running at the deadline is rolled back here, so a bounded
  wait leaves the previous release serving, not a mix. The deadline follows from the warmup
  and the batches the healthy percentages allow (components/refresh_timing.py); a setting
  that would not fit one provider call is refused at preview (components/config/);
- whatever runs after it (the site's CloudFront invalidation) depends on it, and does not
  run when it fails.

The waiting is plain boto3 (``await_refresh``); the provider is a thin wrapper.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import boto3
import pulumi
from botocore.config import Config
from botocore.exceptions import ClientError
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, ResourceProvider, UpdateResult

from components.dynamic import changed
from components.refresh_timing import ROLLBACK_TIMEOUT_SECONDS, refresh_timeout

# DescribeInstanceRefreshes statuses (Amazon EC2 Auto Scaling API reference, InstanceRefresh).
SUCCESSFUL = "Successful"
ENDED = frozenset({SUCCESSFUL, "Failed", "Cancelled", "RollbackSuccessful", "RollbackFailed"})
ROLLED_BACK = "RollbackSuccessful"
POLL_SECONDS = 15
TIMEOUT_SECONDS = refresh_timeout(1, 600)  # one instance with the default warmup

WAIT_INPUTS = ("group_name", "launch_template_id", "launch_template_version")
RECORDED_INPUTS = (
    "region",
    "min_healthy_percentage",
    "max_healthy_percentage",
    "instance_warmup_seconds",
    "timeout_seconds",
)
OUTPUT_KEYS = ("refresh_id", "status")
NOT_NEEDED = "NotNeeded"  # the group and all its instances were already on the version


class InstanceRefreshError(Exception):
    """The refresh did not put the group on the version; the message is one line."""


@dataclass(frozen=True)
class RefreshTarget:
    group_name: str
    launch_template_id: str
    version: str
    min_healthy_percentage: int = 100
    max_healthy_percentage: int = 200
    instance_warmup_seconds: int = 600
    timeout_seconds: int = TIMEOUT_SECONDS

    @property
    def preferences(self) -> dict[str, Any]:
        """The StartInstanceRefresh preferences of a refresh started here: the group's own."""
        return {
            "MinHealthyPercentage": self.min_healthy_percentage,
            "MaxHealthyPercentage": self.max_healthy_percentage,
            "InstanceWarmup": self.instance_warmup_seconds,
            "AutoRollback": True,
        }


@dataclass(frozen=True)
class RefreshOutcome:
    refresh_id: str  # "" when no refresh was needed
    status: str  # Successful or NotNeeded


def await_refresh(
    client,
    target: RefreshTarget,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> RefreshOutcome:
    """Return once the group and its instances run ``target.version``; InstanceRefreshError otherwise."""
    deadline = clock() + target.timeout_seconds
    followed, started = "", False
    while True:
        refreshes = _refreshes(client, target.group_name)
        # At most one refresh is active per group (StartInstanceRefresh: InstanceRefreshInProgress).
        active = next((r for r in refreshes if r["Status"] not in ENDED), None)
        if active is None:
            if _on_version(client, target):
                followed = followed or _succeeded_for(refreshes, target)  # it may have ended before we looked
                return RefreshOutcome(followed, SUCCESSFUL if followed else NOT_NEEDED)
            if started:
                raise InstanceRefreshError(
                    f"instance refresh {followed} of {target.group_name} succeeded but the group is not on launch"
                    f" template version {target.version}: it is on {_group_version(client, target.group_name)}"
                )
            refresh_id, started = _start(client, target), True
        else:
            refresh_id = active["InstanceRefreshId"]
        ended = _follow(client, target, refresh_id, deadline, sleep, clock)
        if ended["Status"] != SUCCESSFUL:
            raise InstanceRefreshError(_ended_line(client, target, ended))
        followed = refresh_id


def _refreshes(client, group_name: str, **kwargs) -> list[dict[str, Any]]:
    """The group's refreshes, newest first (DescribeInstanceRefreshes' order)."""
    return client.describe_instance_refreshes(AutoScalingGroupName=group_name, **kwargs)["InstanceRefreshes"]


def _succeeded_for(refreshes: list[dict[str, Any]], target: RefreshTarget) -> str:
    """The newest refresh that put the group on the version, or ""."""
    wanted = {"LaunchTemplateId": target.launch_template_id, "Version": target.version}
    for refresh in refreshes:
        template = (refresh.get("DesiredConfiguration") or {}).get("LaunchTemplate") or {}
        if refresh["Status"] == SUCCESSFUL and {k: template.get(k) for k in wanted} == wanted:
            return refresh["InstanceRefreshId"]
    return ""


def _describe(client, group_name: str, refresh_id: str) -> dict[str, Any]:
    (refresh,) = _refreshes(client, group_name, InstanceRefreshIds=[refresh_id])
    return refresh


def _group(client, group_name: str) -> dict[str, Any]:
    groups = client.describe_auto_scaling_groups(AutoScalingGroupNames=[group_name])["AutoScalingGroups"]
    if not groups:
        raise InstanceRefreshError(f"the Auto Scaling group {group_name} does not exist")
    return groups[0]


def _group_version(client, group_name: str) -> str:
    return str((_group(client, group_name).get("LaunchTemplate") or {}).get("Version", "(none)"))


def _on_version(client, target: RefreshTarget) -> bool:
    group = _group(client, target.group_name)
    template = group.get("LaunchTemplate") or {}
    if (template.get("LaunchTemplateId"), str(template.get("Version"))) != (target.launch_template_id, target.version):
        return False
    return all(
        str((instance.get("LaunchTemplate") or {}).get("Version")) == target.version
        for instance in group.get("Instances", [])
    )


def _start(client, target: RefreshTarget) -> str:
    # A desired configuration, so that AutoRollback is allowed and a rollback has a target:
    # "The rollback option is only available if you specify a desired configuration"
    # (EC2 Auto Scaling user guide, "Undo changes with a manual or auto rollback").
    answer = client.start_instance_refresh(
        AutoScalingGroupName=target.group_name,
        Strategy="Rolling",
        DesiredConfiguration={
            "LaunchTemplate": {"LaunchTemplateId": target.launch_template_id, "Version": target.version}
        },
        Preferences=target.preferences,
    )
    print(f"InstanceRefreshWait: started instance refresh {answer['InstanceRefreshId']} of {target.group_name}")
    return answer["InstanceRefreshId"]


def _follow(client, target: RefreshTarget, refresh_id: str, deadline: float, sleep, clock) -> dict[str, Any]:
    """The refresh once it has ended; at the deadline it is rolled back (or reported as running)."""
    while True:
        refresh = _describe(client, target.group_name, refresh_id)
        if refresh["Status"] in ENDED:
            return refresh
        if clock() >= deadline:
            return _roll_back(client, target, refresh, sleep, clock)
        sleep(POLL_SECONDS)


def _roll_back(client, target: RefreshTarget, refresh: dict[str, Any], sleep, clock) -> dict[str, Any]:
    waited = f"did not finish within {target.timeout_seconds // 60} min ({_status(refresh)})"
    where = f"instance refresh {refresh['InstanceRefreshId']} of {target.group_name}"
    try:
        client.rollback_instance_refresh(AutoScalingGroupName=target.group_name)
    except ClientError as error:
        raise InstanceRefreshError(
            f"{where} {waited} and could not be rolled back ({error.response['Error'].get('Message', error)});"
            f" it is still running: see the group's activity history"
        ) from None
    deadline = clock() + ROLLBACK_TIMEOUT_SECONDS
    while True:
        refresh = _describe(client, target.group_name, refresh["InstanceRefreshId"])
        if refresh["Status"] in ENDED:
            raise InstanceRefreshError(f"{where} {waited}; rolled back: {_ended_line(client, target, refresh)}")
        if clock() >= deadline:
            raise InstanceRefreshError(
                f"{where} {waited}; its rollback did not finish within {ROLLBACK_TIMEOUT_SECONDS // 60} min"
                f" ({_status(refresh)}): see the group's activity history"
            )
        sleep(POLL_SECONDS)


def _status(refresh: Mapping[str, Any]) -> str:
    reason = " ".join(str(refresh.get("StatusReason") or "no reason given").split())
    return f"{refresh['Status']}: {reason}"


def _ended_line(client, target: RefreshTarget, refresh: Mapping[str, Any]) -> str:
    line = f"instance refresh {refresh['InstanceRefreshId']} of {target.group_name} ended {_status(refresh)}"
    version = _group_version(client, target.group_name)
    if refresh["Status"] == ROLLED_BACK and version != target.version:
        return (
            f"{line}; the group is back on launch template version {version}, the previous release"
            f" (version {target.version} was not deployed)"
        )
    if refresh["Status"] == ROLLED_BACK:  # rolled back to a configuration that already named the version
        return (
            f"{line}; the group still names launch template version {target.version}, which its next launches"
            " run: see its activity history"
        )
    return f"{line}; the group is on launch template version {version}: see its activity history"


# --- the Pulumi side -----------------------------------------------------------------------------


def _target(props: Mapping[str, Any]) -> RefreshTarget:
    # Numbers arrive from the engine as doubles.
    return RefreshTarget(
        group_name=props["group_name"],
        launch_template_id=props["launch_template_id"],
        version=str(props["launch_template_version"]),
        min_healthy_percentage=int(props["min_healthy_percentage"]),
        max_healthy_percentage=int(props["max_healthy_percentage"]),
        instance_warmup_seconds=int(props["instance_warmup_seconds"]),
        timeout_seconds=int(props["timeout_seconds"]),
    )


def _client(props: Mapping[str, Any]):
    return boto3.client("autoscaling", region_name=props["region"], config=Config(retries={"mode": "standard"}))


def _wait(props: Mapping[str, Any]) -> dict[str, Any]:
    outcome = await_refresh(_client(props), _target(props))
    return {**props, "refresh_id": outcome.refresh_id, "status": outcome.status}


class InstanceRefreshWaitProvider(ResourceProvider):
    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return DiffResult(
            changes=any(changed(olds, news, key) for key in (*WAIT_INPUTS, *RECORDED_INPUTS)), replaces=[]
        )

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_=props["group_name"], outs=_wait(props))

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        if all(olds.get(key) == news.get(key) for key in WAIT_INPUTS):  # only recorded: nothing to wait for
            return UpdateResult(outs={**news, **{key: olds.get(key) for key in OUTPUT_KEYS}})
        return UpdateResult(outs=_wait(news))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """`pulumi refresh`: gone with its group; otherwise as recorded (a wait has no drift)."""
        groups = _client(props).describe_auto_scaling_groups(AutoScalingGroupNames=[props["group_name"]])
        if not groups["AutoScalingGroups"]:
            return ReadResult(id_="", outs={})
        return ReadResult(id_=id_, outs=props)

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Nothing to undo: a refresh that ended stays ended."""


@dataclass
class InstanceRefreshWaitArgs:
    region: pulumi.Input[str]
    group_name: pulumi.Input[str]
    launch_template_id: pulumi.Input[str]
    launch_template_version: pulumi.Input[str]
    """A version number, as the group uses it."""
    min_healthy_percentage: int
    max_healthy_percentage: int
    instance_warmup_seconds: int
    """The group's own instance_refresh preferences, for a refresh started here."""
    timeout_seconds: int = TIMEOUT_SECONDS


class InstanceRefreshWait(Resource, module="autoscaling", name="InstanceRefreshWait"):
    refresh_id: pulumi.Output[str]
    status: pulumi.Output[str]

    def __init__(self, name: str, args: InstanceRefreshWaitArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(
            InstanceRefreshWaitProvider(),
            name,
            {
                "region": args.region,
                "group_name": args.group_name,
                "launch_template_id": args.launch_template_id,
                "launch_template_version": args.launch_template_version,
                "min_healthy_percentage": args.min_healthy_percentage,
                "max_healthy_percentage": args.max_healthy_percentage,
                "instance_warmup_seconds": args.instance_warmup_seconds,
                "timeout_seconds": args.timeout_seconds,
                **dict.fromkeys(OUTPUT_KEYS),
            },
            opts,
        )
