"""The two availability zones a new VPC's subnets go into, chosen by zone ID.

A zone *name* (us-east-1a) maps to a different physical zone in every account; a zone *ID*
(use1-az1) is the same everywhere. CloudFront VPC origins, which serve the API from the
private subnets, are not supported in some zone IDs, so a name-based "first two" can land a
stack in one of them in some accounts. Pure Python: the program (components/network.py) and
``python -m ops preflight`` choose with the same function from the region's zone list.
"""

from __future__ import annotations

from collections.abc import Sequence

ZONE_COUNT = 2

# CloudFront developer guide, "Restrict access with VPC origins", section "Supported AWS
# Regions": zone IDs where VPC origins are not supported. Zone IDs are unique across regions,
# so one set serves every region. Only the entry verified against the page is here; a region
# whose exceptions are not listed gets no exclusion, and preflight names it.
VPC_ORIGIN_UNSUPPORTED_ZONE_IDS = frozenset({"use1-az3"})  # us-east-1
REGIONS_CHECKED = frozenset({"us-east-1"})


class ZoneChoiceError(ValueError):
    """Too few zones the stack can use; the message is one line: the problem and the fix."""

    FIX = "deploy the stack in another aws:region, or set swipesavvy:network.existingVpcId"

    def __init__(self, problem: str):
        super().__init__(f"{problem} (fix: {self.FIX})")
        self.problem = problem


def choose_zones(names: Sequence[str], zone_ids: Sequence[str], count: int = ZONE_COUNT) -> list[tuple[str, str]]:
    """``(name, zone ID)`` of the first ``count`` zones in zone-ID order that CloudFront VPC
    origins support. ``names`` and ``zone_ids`` are parallel, as EC2's DescribeAvailabilityZones
    and the provider's getAvailabilityZones give them."""
    usable = sorted(
        (zone_id, name)
        for name, zone_id in zip(names, zone_ids, strict=True)
        if zone_id not in VPC_ORIGIN_UNSUPPORTED_ZONE_IDS
    )
    if len(usable) < count:
        raise ZoneChoiceError(
            f"the region has {len(usable)} available zones that CloudFront VPC origins support"
            f" ({', '.join(zone_id for zone_id, _ in usable) or 'none'}), the network needs {count}"
        )
    return [(name, zone_id) for zone_id, name in usable[:count]]


def unsupported(zone_ids: Sequence[str]) -> list[str]:
    """The zone IDs among ``zone_ids`` where CloudFront VPC origins are not supported."""
    return [zone_id for zone_id in zone_ids if zone_id in VPC_ORIGIN_UNSUPPORTED_ZONE_IDS]
