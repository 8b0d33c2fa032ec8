"""``InstanceRefreshWait`` (components/instance_refresh.py): `pulumi up` ends green only when
the instances run the new launch template version.

On moto (the ``secrets_manager`` fixture's server): a real Auto Scaling group, launch
template and instances. moto has no instance refresh API at all, so tests/fake_instance_refresh.py
adds StartInstanceRefresh, DescribeInstanceRefreshes and RollbackInstanceRefresh to it, each
refresh following a status script the test writes. Called directly (a fake clock: no test
waits) and driven as the engine drives it (tests/engine.py).

The statuses and their meaning are the API reference's (InstanceRefresh.Status); that a
rollback needs a desired configuration and a numbered launch template version, and restores
the configuration saved on the group before the refresh started, is the EC2 Auto Scaling
user guide's ("Undo changes with a manual or auto rollback").
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
from components.refresh_timing import refresh_timeout

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

    def save_then_refresh(self, version: str, script) -> str:
        """What the pulumi-aws provider does for a group with an ``instance_refresh`` block:
        save the new version on the group, then start a refresh towards it, and return."""
        self.client.update_auto_scaling_group(
            AutoScalingGroupName=self.name, LaunchTemplate={"LaunchTemplateId": self.template_id, "Version": version}
        )
        self.fake.set_group_version(self.name, version)
        return self.refresh_left_running(version, script)

    def refresh_left_running(self, version: str, script) -> str:
        """A refresh towards ``version`` already active (a cancelled `pulumi up` started it)."""
        desired = {"LaunchTemplateId": self.template_id, "Version": version}
        return self.fake.start(self.name, desired, script, {"AutoRollback": True}).id

    @property
    def version(self) -> str:
        return self.template["Version"]

    @property
    def template(self) -> dict:
        """The launch template the group has saved: what it launches, and what a rollback restores."""
        (group,) = self.client.describe_auto_scaling_groups(AutoScalingGroupNames=[self.name])["AutoScalingGroups"]
        return {k: group["LaunchTemplate"][k] for k in ("LaunchTemplateId", "Version")}


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


def test_the_refresh_is_started_with_the_version_as_desired_configuration_and_followed(group):
    group.fake.scripts.append(["InProgress", "InProgress", "Successful"])
    clock = Clock()
    outcome = wait(group, group.target("2"), clock)
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
    assert clock.sleeps == [POLL_SECONDS, POLL_SECONDS]  # polled until it ended, no longer
    assert outcome == RefreshOutcome(group.fake.refreshes[0].id, "Successful")
    assert group.version == "2" and group.fake.instances_on(group.name) == {"2"}


def test_the_group_keeps_the_previous_version_saved_while_the_refresh_runs(group):
    """Any instance the group launches meanwhile (a failed health check's replacement) and a
    rollback both run what the group has saved: the previous release until the refresh succeeds."""
    saved = []
    group.fake.scripts.append(["InProgress", "InProgress", "Successful"])
    clock = Clock()

    def sleep(seconds: float) -> None:
        saved.append(group.version)
        clock.sleep(seconds)

    await_refresh(group.client, group.target("2"), sleep=sleep, clock=clock)
    assert saved == ["1", "1"] and group.version == "2"


def test_a_refresh_left_running_is_followed_not_started_again(group):
    refresh_id = group.refresh_left_running("2", ["InProgress", "InProgress", "InProgress", "Successful"])
    assert wait(group, group.target("2")) == RefreshOutcome(refresh_id, "Successful")
    assert group.fake.started == []


def test_a_refresh_that_succeeded_before_the_wait_looked_is_reported(group):
    refresh_id = group.refresh_left_running("2", ["Successful"])
    assert wait(group, group.target("2")) == RefreshOutcome(refresh_id, "Successful")
    assert group.fake.started == []


def test_a_release_that_never_turns_healthy_leaves_everything_on_the_previous_release(group):
    """The group's saved launch template and version, and every instance: version 1."""
    reason = "Instance refresh failed: instances failed to pass health checks (ELB) within the warmup"
    group.fake.scripts.append(["InProgress", ("RollbackInProgress", reason), ("RollbackSuccessful", reason)])
    message = failure(group, group.target("2"))
    assert message == (
        f"instance refresh {group.fake.refreshes[0].id} of {group.name} ended RollbackSuccessful: {reason}; the"
        " group is back on launch template version 1, the previous release (version 2 was not deployed)"
    )
    assert group.template == {"LaunchTemplateId": group.template_id, "Version": "1"}
    assert group.fake.instances_on(group.name) == {"1"}


def test_saving_the_version_before_the_refresh_would_roll_back_to_the_broken_release(group):
    """Why the group ignores its version: with the version saved first (the provider's way,
    terraform-provider-aws#34189) a rollback restores the broken one, and the line says so
    instead of "back on the previous release"."""
    refresh_id = group.save_then_refresh("2", ["InProgress", ("RollbackSuccessful", "health checks failed")])
    assert failure(group, group.target("2")) == (
        f"instance refresh {refresh_id} of {group.name} ended RollbackSuccessful: health checks failed; the group"
        " still names launch template version 2, which its next launches run: see its activity history"
    )
    assert group.version == "2" and group.fake.instances_on(group.name) == {"2"}


@pytest.mark.parametrize("status", ["Failed", "Cancelled", "RollbackFailed"])
def test_a_refresh_that_ends_otherwise_fails_with_its_status_and_reason(group, status):
    group.fake.scripts.append(["InProgress", (status, "The instance refresh\nstopped.")])
    message = failure(group, group.target("2"))
    assert message == (
        f"instance refresh {group.fake.refreshes[0].id} of {group.name} ended {status}: The instance refresh"
        " stopped.; the group is on launch template version 1: see its activity history"
    )


def test_a_refresh_without_a_reason_says_so(group):
    group.fake.scripts.append(["InProgress", "Cancelled"])
    message = failure(group, group.target("2"))
    assert message.startswith(
        f"instance refresh {group.fake.refreshes[0].id} of {group.name} ended Cancelled: no reason given;"
    )


def test_a_refresh_still_running_at_the_deadline_is_rolled_back(group):
    """A release whose instances never turn healthy may keep a refresh running: the wait is
    bounded, and what it leaves is the previous release, not a mix."""
    group.fake.scripts.append(["InProgress"] * 1000)
    clock = Clock()
    message = failure(group, group.target("2", timeout_seconds=60), clock)
    refresh_id = group.fake.refreshes[0].id
    assert message == (
        f"instance refresh {refresh_id} of {group.name} did not finish within 1 min (InProgress: no reason given);"
        f" rolled back: instance refresh {refresh_id} of {group.name} ended RollbackSuccessful: rollback requested;"
        " the group is back on launch template version 1, the previous release (version 2 was not deployed)"
    )
    assert sum(clock.sleeps) == 60 + POLL_SECONDS  # to the deadline, then one poll of the rollback
    assert group.version == "1" and group.fake.instances_on(group.name) == {"1"}


def test_a_refresh_that_cannot_be_rolled_back_at_the_deadline_says_it_is_still_running(group, monkeypatch):
    from moto.autoscaling.exceptions import ValidationError

    def refuse(_response):
        raise ValidationError("The rollback is not supported for this instance refresh.")

    monkeypatch.setattr(group.fake, "rollback_instance_refresh", refuse)
    group.fake.scripts.append(["InProgress"] * 1000)
    message = failure(group, group.target("2", timeout_seconds=60))
    assert message == (
        f"instance refresh {group.fake.refreshes[0].id} of {group.name} did not finish within 1 min (InProgress: no"
        " reason given) and could not be rolled back (The rollback is not supported for this instance refresh.);"
        " it is still running: see the group's activity history"
    )


@pytest.mark.parametrize(
    ("instances", "warmup", "healthy", "seconds"),
    [
        (1, 600, (100, 200), 1200),  # one batch: launch (10 min) and warm up
        (2, 600, (100, 200), 1200),  # 100 % above the minimum: every instance at once
        (2, 600, (100, 150), 2400),  # one at a time
        (4, 300, (100, 150), 1800),  # two at a time, two batches
        (1, 3600, (100, 200), 4200),
    ],
)
def test_the_deadline_follows_the_warmup_and_the_batches(instances, warmup, healthy, seconds):
    """ "A larger range increases the number of instances that can be replaced at the same time"
    (EC2 Auto Scaling user guide, "Instance maintenance policies")."""
    assert refresh_timeout(instances, warmup, *healthy) == seconds


def test_a_missing_group_is_one_line(secrets_manager, instance_refreshes):  # noqa: F811
    client = boto3.client("autoscaling", region_name="us-east-1")
    target = RefreshTarget(group_name="swipesavvy-api-asg-gone", launch_template_id="lt-0abc", version="2")
    with pytest.raises(InstanceRefreshError, match=r"^the Auto Scaling group swipesavvy-api-asg-gone does not exist$"):
        await_refresh(client, target, sleep=Clock().sleep, clock=Clock())


# --- through the engine -------------------------------------------------------------------------


def declared_inputs(staging) -> dict:
    """What the program registers for the rollout (``__provider`` included)."""
    return staging.of_name(TYPE, NAME).inputs


def test_the_program_refreshes_its_group_with_the_warmup_its_health_check_allows(staging):
    inputs = {k: v for k, v in declared_inputs(staging).items() if k != "__provider"}
    group = staging.of_name("aws:autoscaling/group:Group", "swipesavvy-api-asg").inputs
    assert inputs == {
        "region": "us-east-1",
        "group_name": "swipesavvy-api-asg",
        "launch_template_id": "swipesavvy-api-lt-id",
        "launch_template_version": group["launchTemplate"]["version"],
        "min_healthy_percentage": 100,
        "max_healthy_percentage": 200,
        "instance_warmup_seconds": group["healthCheckGracePeriod"],
        "timeout_seconds": refresh_timeout(1, group["healthCheckGracePeriod"]),
    }
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

    # A release: the group still saves version 1 (it ignores its version); the rollout starts
    # the refresh towards 2 and returns when it succeeded. (Statuses advance one per describe:
    # the provider sees it running, then ended, and never sleeps.)
    fake.scripts.append(["InProgress", "Successful"])
    assert engine.up({**news, "launch_template_version": "2"}) == "update"
    assert (engine.state.outputs["status"], engine.state.outputs["refresh_id"]) == ("Successful", fake.refreshes[0].id)
    assert fake.started[-1]["DesiredConfiguration"]["LaunchTemplate"]["Version"] == "2"
    assert group.version == "2" and fake.instances_on(group.name) == {"2"}
    # The next `pulumi up` with nothing new: no change, nothing asked of AWS.
    describes = fake.describes
    assert engine.up({**news, "launch_template_version": "2"}) == "same" and fake.describes == describes

    # A release whose instances never turn healthy: rolled back; `pulumi up` fails with the
    # line, state keeps version 2, and the group and every instance are on version 2.
    reason = "instances failed to pass health checks"
    fake.scripts.append(["InProgress", ("RollbackInProgress", reason), ("RollbackSuccessful", reason)])
    with pytest.raises(ProviderError) as raised:
        engine.up({**news, "launch_template_version": "3"})
    assert str(raised.value).strip().splitlines()[-1] == (
        f"components.instance_refresh.InstanceRefreshError: instance refresh {fake.refreshes[0].id} of {group.name}"
        f" ended RollbackSuccessful: {reason}; the group is back on launch template version 2, the previous release"
        " (version 3 was not deployed)"
    )
    assert engine.state.inputs["launch_template_version"] == "2"
    assert group.template == {"LaunchTemplateId": group.template_id, "Version": "2"}
    assert fake.instances_on(group.name) == {"2"}

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
