"""``swipesavvy:network``: the VPC the stack creates, or the one it uses."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any

from components.config.section import _fail, _is_cidr, _Section

_AZ = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d[a-z]$")
_RESOURCE_ID = {
    "vpc": re.compile(r"^vpc-[0-9a-f]{8,17}$"),
    "subnet": re.compile(r"^subnet-[0-9a-f]{8,17}$"),
    "sg": re.compile(r"^sg-[0-9a-f]{8,17}$"),
}


@dataclass(frozen=True)
class NetworkConfig:
    """Where the database and backend live. Either a new VPC, or an existing one by id."""

    vpc_cidr: str = "10.40.0.0/16"
    availability_zones: tuple[str, ...] = ()  # empty: the region's first two
    nat_gateway: bool = False
    existing_vpc_id: str | None = None
    private_subnet_ids: tuple[str, ...] = ()
    public_subnet_ids: tuple[str, ...] = ()
    # The security group of a Secrets Manager endpoint with private DNS already in the existing
    # VPC (a review stack in staging's): its private DNS answers for the whole VPC, so this
    # stack admits its own readers on it.
    existing_secrets_endpoint_security_group_id: str | None = None
    # A NAT gateway in each zone, each zone's private subnet routed through its own.
    nat_gateway_per_zone: bool = False

    @property
    def uses_existing_vpc(self) -> bool:
        return self.existing_vpc_id is not None


def parse_network(raw: Any, region: str | None = None) -> NetworkConfig:
    s = _Section("network", raw)
    d = NetworkConfig()
    cidr_rule = "must be an IPv4 network in CIDR form with a /16 to /24 prefix"
    vpc_cidr = s.text(
        "vpcCidr",
        d.vpc_cidr,
        allowed=cidr_rule,
        example=d.vpc_cidr,  # pragma: no mutate (the example is the default, which text() falls back to)
    )
    network = ipaddress.ip_network(vpc_cidr) if _is_cidr(vpc_cidr) else None
    if network is None or network.version != 4 or not 16 <= network.prefixlen <= 24:
        raise _fail(s.path("vpcCidr"), vpc_cidr, cidr_rule, d.vpc_cidr)
    zones = s.strings(
        "availabilityZones",
        lambda z: bool(_AZ.match(z)),
        "must be a list of at least two availability zone names",
        ["us-east-1a"],
    )
    for index, zone in enumerate(zones):
        if region and zone[:-1] != region:  # a zone is its region's name plus one letter
            raise _fail(
                s.path(f"availabilityZones[{index}]"),
                zone,
                f"must be a zone of aws:region {region}",
                f"{region}{zone[-1]}",
            )
    if zones and len(set(zones)) < 2:
        raise _fail(
            s.path("availabilityZones"),
            list(zones),
            "must name at least two distinct availability zones",
            ["us-east-1a"],
        )
    existing = s.text("existingVpcId", None, _RESOURCE_ID["vpc"], "must be a VPC id like vpc-0123abcd", "vpc-0123abcd")
    subnet_check = lambda v: bool(_RESOURCE_ID["subnet"].match(v))  # noqa: E731
    private = s.strings(
        "privateSubnetIds", subnet_check, "must be a list of subnet ids like subnet-0123abcd", ["subnet-0123abcd"]
    )
    public = s.strings(
        "publicSubnetIds", subnet_check, "must be a list of subnet ids like subnet-0123abcd", ["subnet-0123abcd"]
    )
    for key, subnets, tier in (("privateSubnetIds", private, "private"), ("publicSubnetIds", public, "public")):
        if existing and len(subnets) < 2:
            raise _fail(
                s.path(key),
                list(subnets),
                f"an existing VPC needs at least two {tier} subnets in different zones",
                ["subnet-0123abcd"],
            )
    if not existing and (private or public):
        raise _fail(
            s.path("existingVpcId"), None, "subnet ids are only used together with an existing VPC id", "vpc-0123abcd"
        )
    nat = s.boolean("natGateway", d.nat_gateway)
    per_zone = s.boolean("natGatewayPerZone", d.nat_gateway_per_zone)
    if per_zone and not nat:
        raise _fail(
            s.path("natGateway"), nat, "natGatewayPerZone needs natGateway (a NAT gateway in each zone)", "true"
        )
    if per_zone and existing:
        raise _fail(
            s.path("natGatewayPerZone"),
            per_zone,
            "an existing VPC's routes are its own: set it only for a new VPC",
            "false",
        )
    endpoint_group = s.text(
        "existingSecretsEndpointSecurityGroupId",
        None,
        _RESOURCE_ID["sg"],
        "must be a security group id like sg-0123abcd",
        "sg-0123abcd",
    )
    if endpoint_group and not existing:
        raise _fail(
            s.path("existingSecretsEndpointSecurityGroupId"),
            endpoint_group,
            "is only used with existingVpcId (an endpoint already in that VPC)",
            "sg-0123abcd",
        )
    s.finish()
    return NetworkConfig(vpc_cidr, zones, nat, existing, private, public, endpoint_group, nat_gateway_per_zone=per_zone)
