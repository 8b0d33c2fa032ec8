"""``InstanceRefreshWait`` (components/instance_refresh.py): `pulumi up` ends green only when
the instances run the new launch template version.

On moto (the ``secrets_manager`` fixture's server): a real Auto Scaling group, launch
template and instances. moto has no instance refresh API at all, so tests/fake_instance_refresh.py
adds StartInstanceRefresh, DescribeInstanceRefreshes and RollbackInstanceRefresh to it, each
refresh following a status script the test writes. Called directly (a fake clock: no test
waits) and driven as the engine drives it (tests/engine.py).

The statuses and their meaning are the API reference's (InstanceRefresh.Status); that a
rollback needs a desired configuration and a numbered launch template version is the EC2
Auto Scaling user guide's ("Undo changes with a manual or auto rollback").
"""

from __future__ import annotations

import uuid

import boto3
import pytest
from engine import DIFF_NONE, DIFF_SOME, ProviderError, PulumiEngine
from fake_instance_refresh import FakeInstanceRefreshes, instance_refreshes  # noqa: F401  (fixture)
from pulumi.runtime.rpc import UNKNOWN

from components.instance_refresh import (
    POLL_SECONDS,
    InstanceRefreshError,
    RefreshOutcome,
    RefreshTarget,
    await_refresh,
)

TYPE = "pulumi-python:dynamic/autoscaling:InstanceRefreshWait"
NAME = "swipesavvy-api-rollout"


class Group:
    """An Auto Scaling group in moto on version 1 of its launch template, and versions 2 and 3."""

    def __init__(self, fake: FakeInstanceRefreshes, instances: int = 2):
        self.fake = fake
        self.name = f"swipesavvy-api-asg-{uuid.uuid4().hex[:8]}"
        ec2 = boto3.client("ec2", region_name="us-east-1")
        self.client = boto3.client("autoscaling", region_name="us-east-1")
        template = ec2.create_launch_template(
            LaunchTemplateName=f"{self.name}-lt", LaunchTemplateData={"ImageId": "ami-12c6146b"}
        )["LaunchTemplate"]
        self.template_id = template["LaunchTemplateId"]
        for image in ("ami-1234abcd", "ami-5678ef01"):
            ec2.create_launch_template_version(LaunchTemplateId=self.template_id, LaunchTemplateData={"ImageId": image})
        self.client.create_auto_scaling_group(
            AutoScalingGroupName=self.name,
            LaunchTemplate={"LaunchTemplateId": self.template_id, "Version": "1"},
            MinSize=instances,
            MaxSize=instances,
            DesiredCapacity=instances,
            AvailabilityZones=["us-east-1a"],
        )
        fake.set_group_version(self.name, "1", instances=True)

    def target(self, version: str, **changes) -> RefreshTarget:
        return RefreshTarget(group_name=self.name, launch_template_id=self.template_id, version=version, **changes)

    def provider_update(self, version: str, script) -> str:
        """What the pulumi-aws provider does for a new version: update the group, start a refresh
        with that version as its desired configuration (auto_rollback), and return."""
        self.client.update_auto_scaling_group(
            AutoScalingGroupName=self.name, LaunchTemplate={"LaunchTemplateId": self.template_id, "Version": version}
        )
        self.fake.set_group_version(self.name, version)
        desired = {"LaunchTemplateId": self.template_id, "Version": version}
        return self.fake.start(self.name, desired, script, {"AutoRollback": True}).id

    @property
    def version(self) -> str:
        (group,) = self.client.describe_auto_scaling_groups(AutoScalingGroupNames=[self.name])["AutoScalingGroups"]
        return group["LaunchTemplate"]["Version"]


@pytest.fixture
def group(secrets_manager, instance_refreshes) -> Group:  # noqa: F811
    return Group(instance_refreshes)


class Clock:
    """time.monotonic and time.sleep for a test that must not wait."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def __call__(self) -> float:
        return self.now


def wait(group: Group, target: RefreshTarget, clock: Clock | None = None) -> RefreshOutcome:
    clock = clock or Clock()
    return await_refresh(group.client, target, sleep=clock.sleep, clock=clock)


def failure(group: Group, target: RefreshTarget, clock: Clock | None = None) -> str:
    with pytest.raises(InstanceRefreshError) as raised:
        wait(group, target, clock)
    message = str(raised.value)
    assert "\n" not in message
    return message


# --- the waiting, called directly -------------------------------------------------------------


def test_a_group_already_on_the_version_needs_no_refresh(group):
    """A new group (its first instances launched from this version): nothing to wait for."""
    assert wait(group, group.target("1")) == RefreshOutcome("", "NotNeeded")
    assert group.fake.started == []


def test_the_refresh_the_provider_started_is_followed_until_it_succeeds(group):
    # One status per DescribeInstanceRefreshes: finding the active refresh, then following it.
    refresh_id = group.provider_update("2", ["InProgress", "InProgress", "InProgress", "Successful"])
    clock = Clock()
    assert wait(group, group.target("2"), clock) == RefreshOutcome(refresh_id, "Successful")
    assert clock.sleeps == [POLL_SECONDS, POLL_SECONDS]  # polled until it ended, no longer
    assert group.fake.started == []  # followed, not started again
    assert group.version == "2" and group.fake.instances_on(group.name) == {"2"}


def test_a_refresh_that_succeeded_before_the_wait_looked_is_reported(group):
    refresh_id = group.provider_update("2", ["Successful"])
    assert wait(group, group.target("2")) == RefreshOutcome(refresh_id, "Successful")
    assert group.fake.started == []


def test_with_no_refresh_running_one_is_started_with_the_version_as_desired_configuration(group):
    outcome = wait(group, group.target("2"))
    (started,) = group.fake.started
    assert started == {
        "AutoScalingGroupName": group.name,
        "Strategy": "Rolling",
        "DesiredConfiguration": {"LaunchTemplate": {"LaunchTemplateId": group.template_id, "Version": "2"}},
        "Preferences": {
            "MinHealthyPercentage": 100,
            "MaxHealthyPercentage": 200,
            "InstanceWarmup": 600,
            "AutoRollback": True,
        },
    }
    assert outcome == RefreshOutcome(group.fake.refreshes[0].id, "Successful")
    assert group.version == "2" and group.fake.instances_on(group.name) == {"2"}


def test_a_rolled_back_refresh_fails_naming_it_with_the_group_back_on_the_previous_version(group):
    reason = "Instance refresh failed: instances failed to pass health checks (ELB) within the warmup"
    refresh_id = group.provider_update(
        "2", ["InProgress", ("RollbackInProgress", reason), ("RollbackSuccessful", reason)]
    )
    assert failure(group, group.target("2")) == (
        f"instance refresh {refresh_id} of {group.name} ended RollbackSuccessful: {reason}; the group is back on"
        " launch template version 1, the previous release (version 2 was not deployed)"
    )
    assert group.version == "1" and group.fake.instances_on(group.name) == {"1"}


def test_a_rollback_that_leaves_the_group_on_the_version_does_not_claim_the_previous_release(group):
    """A rollback restores the configuration saved before the refresh started; if that already
    named the new version, the line says so instead of "back on the previous release"."""
    refresh_id = group.provider_update("2", ["InProgress", ("RollbackSuccessful", "health checks failed")])
    group.fake.refreshes[0].previous = "2"
    assert failure(group, group.target("2")) == (
        f"instance refresh {refresh_id} of {group.name} ended RollbackSuccessful: health checks failed; the group"
        " still names launch template version 2, which its next launches run: see its activity history"
    )


@pytest.mark.parametrize("status", ["Failed", "Cancelled", "RollbackFailed"])
def test_a_refresh_that_ends_otherwise_fails_with_its_status_and_reason(group, status):
    refresh_id = group.provider_update("2", ["InProgress", (status, "The instance refresh\nstopped.")])
    assert failure(group, group.target("2")) == (
        f"instance refresh {refresh_id} of {group.name} ended {status}: The instance refresh stopped.;"
        " the group is on launch template version 2: see its activity history"
    )


def test_a_refresh_without_a_reason_says_so(group):
    refresh_id = group.provider_update("2", ["InProgress", "Cancelled"])
    assert failure(group, group.target("2")).startswith(
        f"instance refresh {refresh_id} of {group.name} ended Cancelled: no reason given;"
    )


def test_a_refresh_still_running_at_the_deadline_is_rolled_back(group):
    """A release whose instances never turn healthy may keep a refresh running: the wait is
    bounded, and what it leaves is the previous release, not a mix."""
    refresh_id = group.provider_update("2", ["InProgress"] * 1000)
    clock = Clock()
    assert failure(group, group.target("2", timeout_seconds=60), clock) == (
        f"instance refresh {refresh_id} of {group.name} did not finish within 1 min (InProgress: no reason given);"
        f" rolled back: instance refresh {refresh_id} of {group.name} ended RollbackSuccessful: rollback requested;"
        " the group is back on launch template version 1, the previous release (version 2 was not deployed)"
    )
    assert sum(clock.sleeps) == 60 + POLL_SECONDS  # to the deadline, then one poll of the rollback
    assert group.version == "1"


def test_a_refresh_that_cannot_be_rolled_back_at_the_deadline_says_it_is_still_running(group, monkeypatch):
    from moto.autoscaling.exceptions import ValidationError

    def refuse(_response):
        raise ValidationError("The rollback is not supported for this instance refresh.")

    monkeypatch.setattr(group.fake, "rollback_instance_refresh", refuse)
    refresh_id = group.provider_update("2", ["InProgress"] * 1000)
    assert failure(group, group.target("2", timeout_seconds=60)) == (
        f"instance refresh {refresh_id} of {group.name} did not finish within 1 min (InProgress: no reason given)"
        " and could not be rolled back (The rollback is not supported for this instance refresh.); it is still"
        " running: see the group's activity history"
    )


def test_a_missing_group_is_one_line(secrets_manager, instance_refreshes):  # noqa: F811
    client = boto3.client("autoscaling", region_name="us-east-1")
    target = RefreshTarget(group_name="swipesavvy-api-asg-gone", launch_template_id="lt-0abc", version="2")
    with pytest.raises(InstanceRefreshError, match=r"^the Auto Scaling group swipesavvy-api-asg-gone does not exist$"):
        await_refresh(client, target, sleep=Clock().sleep, clock=Clock())


# --- through the engine -------------------------------------------------------------------------


def declared_inputs(staging) -> dict:
    """What the program registers for the rollout (``__provider`` included)."""
    return staging.of_name(TYPE, NAME).inputs


def test_the_program_waits_for_its_group_with_the_groups_own_preferences(staging):
    inputs = {k: v for k, v in declared_inputs(staging).items() if k != "__provider"}
    group = staging.of_name("aws:autoscaling/group:Group", "swipesavvy-api-asg").inputs
    preferences = group["instanceRefresh"]["preferences"]
    assert inputs == {
        "region": "us-east-1",
        "group_name": "swipesavvy-api-asg",
        "launch_template_id": "swipesavvy-api-lt-id",
        "launch_template_version": group["launchTemplate"]["version"],
        "min_healthy_percentage": preferences["minHealthyPercentage"],
        "max_healthy_percentage": preferences["maxHealthyPercentage"],
        "instance_warmup_seconds": int(preferences["instanceWarmup"]),
        "timeout_seconds": 1200,
    }
    assert preferences["autoRollback"] is True
    assert group["launchTemplate"]["version"].isdigit()  # never $Latest or $Default: no rollback from those


def test_through_the_engine(staging, group, secrets_manager):
    fake = group.fake
    news = {
        **declared_inputs(staging),
        "group_name": group.name,
        "launch_template_id": group.template_id,
        "launch_template_version": "1",
    }
    engine = PulumiEngine(secrets_manager, f"urn:pulumi:staging::swipesavvy::{TYPE}::{NAME}")

    # The first preview: the group and its template do not exist yet; nothing is asked of AWS.
    unknown = dict.fromkeys(("group_name", "launch_template_id", "launch_template_version"), UNKNOWN)
    assert engine.preview({**news, **unknown}) is None
    assert fake.describes == 0

    assert engine.up(news) == "create"  # the new group's instances run version 1 already
    assert engine.state.id == group.name
    assert (engine.state.outputs["status"], engine.state.outputs["refresh_id"]) == ("NotNeeded", "")

    # A run that changes nothing calls nothing.
    describes = fake.describes
    assert engine.preview(news).changes == DIFF_NONE
    assert engine.up(news) == "same"
    assert fake.describes == describes
    # A preview before the new launch template version exists: a wait is coming.
    assert engine.preview({**news, "launch_template_version": UNKNOWN}).changes == DIFF_SOME

    # A release: the provider started the refresh; `pulumi up` returns when it succeeded.
    # (Statuses advance one per describe: the provider sees it running, then ended, and never sleeps.)
    refresh_id = group.provider_update("2", ["InProgress", "Successful"])
    assert engine.up({**news, "launch_template_version": "2"}) == "update"
    assert (engine.state.outputs["status"], engine.state.outputs["refresh_id"]) == ("Successful", refresh_id)

    # A broken release: rolled back; `pulumi up` fails with the line, and state keeps version 2.
    reason = "instances failed to pass health checks"
    failed_id = group.provider_update("3", ["InProgress", ("RollbackSuccessful", reason)])
    with pytest.raises(ProviderError) as raised:
        engine.up({**news, "launch_template_version": "3"})
    assert str(raised.value).strip().splitlines()[-1] == (
        f"components.instance_refresh.InstanceRefreshError: instance refresh {failed_id} of {group.name} ended"
        f" RollbackSuccessful: {reason}; the group is back on launch template version 2, the previous release"
        " (version 3 was not deployed)"
    )
    assert engine.state.inputs["launch_template_version"] == "2"
    assert group.version == "2"

    # The next `pulumi up` tries version 3 again: no refresh is running, so it starts one.
    fake.scripts.append(["Successful"])
    assert engine.up({**news, "launch_template_version": "3"}) == "update"
    assert fake.started[-1]["DesiredConfiguration"]["LaunchTemplate"]["Version"] == "3"
    # The preferences arrived as doubles (100.0): sent as the integers the API requires.
    assert fake.started[-1]["Preferences"] == {
        "MinHealthyPercentage": 100,
        "MaxHealthyPercentage": 200,
        "InstanceWarmup": 600,
        "AutoRollback": True,
    }
    assert engine.state.outputs["status"] == "Successful" and group.version == "3"

    # Refresh reads from state alone; destroy undoes nothing and calls nothing.
    engine.refresh()
    assert engine.state.inputs["launch_template_version"] == "3"
    describes = fake.describes
    engine.destroy()
    assert not engine.state.exists and fake.describes == describes


def test_refresh_forgets_it_when_its_group_is_gone(staging, group, secrets_manager):
    news = {
        **declared_inputs(staging),
        "group_name": group.name,
        "launch_template_id": group.template_id,
        "launch_template_version": "1",
    }
    engine = PulumiEngine(secrets_manager, f"urn:pulumi:staging::swipesavvy::{TYPE}::{NAME}")
    assert engine.up(news) == "create"
    group.client.delete_auto_scaling_group(AutoScalingGroupName=group.name, ForceDelete=True)
    engine.refresh()
    assert not engine.state.exists
