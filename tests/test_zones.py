"""Zones chosen by zone ID (components/zones.py): the rule, and the program that follows it.

CloudFront developer guide, "Restrict access with VPC origins", section "Supported AWS
Regions": VPC origins are not supported in some zone IDs (us-east-1: use1-az3), and zone names
map to different zone IDs in every account (EC2 user guide, "AZ IDs"), so the zones are chosen
by ID.
"""

from __future__ import annotations

import pulumi
import pytest
from pulumi_program import RecordingMocks, run_program, stack_config

from components.zones import ZoneChoiceError, choose_zones

SHAPE = "pulumi-python:dynamic/stack:StackShape"


def test_use1_az3_is_never_chosen_whatever_its_name():
    # This account maps us-east-1a to use1-az3: the name-based "first two" would take it.
    names = ["us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d"]
    zone_ids = ["use1-az3", "use1-az6", "use1-az1", "use1-az2"]
    assert choose_zones(names, zone_ids) == [("us-east-1c", "use1-az1"), ("us-east-1d", "use1-az2")]


def test_zones_are_ordered_by_id_so_every_account_lands_in_the_same_physical_zones():
    one = choose_zones(["us-east-1a", "us-east-1b", "us-east-1c"], ["use1-az4", "use1-az2", "use1-az1"])
    other = choose_zones(["us-east-1a", "us-east-1b", "us-east-1c"], ["use1-az1", "use1-az4", "use1-az2"])
    assert [zone_id for _, zone_id in one] == [zone_id for _, zone_id in other] == ["use1-az1", "use1-az2"]


def test_too_few_supported_zones_is_one_line_with_the_fix():
    with pytest.raises(ZoneChoiceError) as refused:
        choose_zones(["us-east-1a", "us-east-1b"], ["use1-az3", "use1-az1"])
    assert str(refused.value) == (
        "the region has 1 available zones that CloudFront VPC origins support (use1-az1), the network needs 2"
        " (fix: deploy the stack in another aws:region, or set swipesavvy:network.existingVpcId)"
    )


class Use1Az3First(RecordingMocks):
    """An account whose us-east-1a is use1-az3."""

    def call(self, args: pulumi.runtime.MockCallArgs):
        if args.token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            return {
                "id": "us-east-1",
                "names": ["us-east-1a", "us-east-1b", "us-east-1c"],
                "zoneIds": ["use1-az3", "use1-az4", "use1-az1"],
            }
        return super().call(args)


def test_the_program_places_and_pins_its_subnets_outside_use1_az3():
    run = run_program(stack_config("staging"), mocks=Use1Az3First())
    subnets = {r.name: r.inputs["availabilityZone"] for r in run.of_type("aws:ec2/subnet:Subnet")}
    assert subnets == {
        "swipesavvy-private-0": "us-east-1c",
        "swipesavvy-private-1": "us-east-1b",
        "swipesavvy-public-0": "us-east-1c",
        "swipesavvy-public-1": "us-east-1b",
    }
    assert run.one(SHAPE).inputs["zones"] == ["us-east-1c", "us-east-1b"]
