"""Serves the pack to the Pulumi CLI (``pulumi preview --policy-pack policy``); the policies are in policies.py."""

from policies import POLICIES
from pulumi_policy import EnforcementLevel, PolicyPack

PolicyPack(name="swipesavvy-change-control", policies=POLICIES, enforcement_level=EnforcementLevel.MANDATORY)
