"""Instance refreshes for moto's Auto Scaling, which has none (moto 5.2 serves no
StartInstanceRefresh, DescribeInstanceRefreshes or RollbackInstanceRefresh).

The groups, launch templates and instances are moto's own; this adds the three calls to
its Auto Scaling API (patched into the response class, so the moto server, which runs in the
test's process, serves them to provider processes too) and a per-instance launch template
version (moto reports every instance on the template's default version).

A refresh does not run on its own: each started refresh follows a script of statuses the
test writes, one step per DescribeInstanceRefreshes call, as AWS's would over minutes. What
each ending leaves is what AWS documents for a refresh with a desired configuration:
- ``Successful``: every instance on the desired version, and only now the group's saved
  configuration names it ("When the instance refresh succeeds, Amazon EC2 Auto Scaling
  updates the settings of the Auto Scaling group to reflect the new desired configuration",
  API reference, StartInstanceRefresh DesiredConfiguration);
- ``RollbackSuccessful``: the group and every instance on the configuration *saved on the
  group before the refresh started* ("instances that match the configuration that you last
  saved on the Auto Scaling group before starting the instance refresh", user guide, "Undo
  changes with a manual or auto rollback"). A caller that saved the new version on the group
  first (as the pulumi-aws provider does, terraform-provider-aws#34189) gets the new version
  back, not the previous one;
- ``Failed`` / ``Cancelled`` / ``RollbackFailed``: the group's saved configuration as it was
  (the desired one is applied only on success), the instances as they were.
``RollbackInstanceRefresh`` replaces the rest of an active refresh's script with a rollback.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import pytest
from moto.autoscaling.exceptions import AutoscalingClientError
from moto.autoscaling.models import InstanceState, autoscaling_backends
from moto.autoscaling.responses import AutoScalingResponse
from moto.core.responses import ActionResult

ENDED = {"Successful", "Failed", "Cancelled", "RollbackSuccessful", "RollbackFailed"}
ACCOUNT, REGION = "123456789012", "us-east-1"


class ActiveInstanceRefreshNotFound(AutoscalingClientError):
    code = "ActiveInstanceRefreshNotFound"


class InstanceRefreshInProgress(AutoscalingClientError):
    code = "InstanceRefreshInProgress"


@dataclass
class Refresh:
    id: str
    group: str
    desired: dict
    previous: str  # the group's saved version when the refresh started: what a rollback restores
    script: list[tuple[str, str]]
    status: str = "Pending"
    reason: str = ""
    preferences: dict = field(default_factory=dict)

    def document(self) -> dict:
        answer = {
            "InstanceRefreshId": self.id,
            "AutoScalingGroupName": self.group,
            "Status": self.status,
            "Preferences": self.preferences,
        }
        if self.reason:
            answer["StatusReason"] = self.reason
        if self.desired:
            answer["DesiredConfiguration"] = {"LaunchTemplate": self.desired}
        return answer


class FakeInstanceRefreshes:
    def __init__(self) -> None:
        self.refreshes: list[Refresh] = []  # newest first, as DescribeInstanceRefreshes answers
        self.scripts: list[list[str | tuple[str, str]]] = []  # for the next refreshes started, in order
        self.instance_versions: dict[str, str] = {}
        self.started: list[dict] = []  # StartInstanceRefresh requests, as sent
        self.describes = 0
        self._ids = (f"08b91cf7-8fa6-48af-b6a6-{n:012d}" for n in itertools.count(1))

    # --- what the tests use ---------------------------------------------------------------

    def group(self, name: str):
        return autoscaling_backends[ACCOUNT][REGION].autoscaling_groups[name]

    def set_group_version(self, name: str, version: str, instances: bool = False) -> None:
        group = self.group(name)
        group.provided_launch_template_version = group.launch_template_version = version
        if instances:
            for state in group.instance_states:
                self.instance_versions[state.instance.id] = version

    def instances_on(self, name: str) -> set[str]:
        return {self.instance_versions.get(s.instance.id, "?") for s in self.group(name).instance_states}

    def start(self, group: str, desired: dict, script, preferences: dict | None = None) -> Refresh:
        if any(r.group == group and r.status not in ENDED for r in self.refreshes):
            raise InstanceRefreshInProgress(f"An Instance Refresh is already in progress for {group}.")
        previous = str(self.group(group).provided_launch_template_version)
        steps = [step if isinstance(step, tuple) else (step, "") for step in script]
        refresh = Refresh(next(self._ids), group, desired, previous, steps, preferences=preferences or {})
        self.refreshes.insert(0, refresh)
        return refresh

    # --- the API ----------------------------------------------------------------------------

    def _advance(self) -> None:
        for refresh in self.refreshes:
            if refresh.status in ENDED or not refresh.script:
                continue
            refresh.status, refresh.reason = refresh.script.pop(0)
            if refresh.status == "Successful":
                version = refresh.desired.get("Version") or refresh.previous  # none desired: the saved one
                self.set_group_version(refresh.group, version, instances=True)
            elif refresh.status == "RollbackSuccessful":
                self.set_group_version(refresh.group, refresh.previous, instances=True)

    def start_instance_refresh(self, response: AutoScalingResponse) -> ActionResult:
        desired = response._get_param("DesiredConfiguration", {}).get("LaunchTemplate", {})
        request = {
            "AutoScalingGroupName": response._get_param("AutoScalingGroupName"),
            "Strategy": response._get_param("Strategy"),
            "DesiredConfiguration": {"LaunchTemplate": desired},
            "Preferences": response._get_param("Preferences", {}),
        }
        self.started.append(request)
        script = self.scripts.pop(0) if self.scripts else ["InProgress", "Successful"]
        refresh = self.start(request["AutoScalingGroupName"], desired, script, request["Preferences"])
        return ActionResult({"InstanceRefreshId": refresh.id})

    def describe_instance_refreshes(self, response: AutoScalingResponse) -> ActionResult:
        self.describes += 1
        self._advance()
        group = response._get_param("AutoScalingGroupName")
        ids = response._get_param("InstanceRefreshIds", [])
        found = [r.document() for r in self.refreshes if r.group == group and (not ids or r.id in ids)]
        return ActionResult({"InstanceRefreshes": found})

    def rollback_instance_refresh(self, response: AutoScalingResponse) -> ActionResult:
        group = response._get_param("AutoScalingGroupName")
        active = next((r for r in self.refreshes if r.group == group and r.status not in ENDED), None)
        if active is None:
            raise ActiveInstanceRefreshNotFound(f"No in progress or pending Instance Refresh found for {group}.")
        active.script = [("RollbackInProgress", "rollback requested"), ("RollbackSuccessful", "rollback requested")]
        return ActionResult({"InstanceRefreshId": active.id})


@pytest.fixture
def instance_refreshes(monkeypatch) -> FakeInstanceRefreshes:
    fake = FakeInstanceRefreshes()
    for call in ("start_instance_refresh", "describe_instance_refreshes", "rollback_instance_refresh"):
        monkeypatch.setattr(
            AutoScalingResponse, call, lambda response, _call=call: getattr(fake, _call)(response), raising=False
        )

    def launch_template(state: InstanceState) -> dict:
        template = state.auto_scaling_group.ec2_launch_template
        version = fake.instance_versions.get(state.instance.id, str(template.default_version_number))
        return {"LaunchTemplateId": template.id, "LaunchTemplateName": template.name, "Version": version}

    monkeypatch.setattr(InstanceState, "launch_template", property(launch_template))
    return fake
