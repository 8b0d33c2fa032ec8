"""``Network``: the VPC the database and backend live in, or an existing one.

New VPC: a public and a private subnet in each of two availability zones (chosen by zone
ID where CloudFront VPC origins are supported, components/zones.py), an internet
gateway (the NAT gateway's way out, and what CloudFront's VPC origins require of the VPC),
and private subnets with no route to the internet unless ``network.natGateway`` is true
(then one NAT gateway, in the first zone; with ``network.natGatewayPerZone`` one in each
zone, each zone's private subnet routed through its own: "if the NAT gateway's Availability
Zone is down, resources in the other Availability Zones lose internet access", VPC user
guide, "NAT gateway basics"). Everything else lives in the private subnets,
the load balancer included. Existing VPC: the configured VPC and subnet ids are used as
they are; nothing is created (the VPC needs an internet gateway for the API's VPC origin).

It also owns the backend tier's security group, so the database can admit exactly that
group before the backend itself is deployed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.config import NetworkConfig
from components.zones import ZONE_COUNT, choose_zones


def subnet_cidrs(vpc_cidr: str) -> tuple[list[str], list[str]]:
    """Private and public subnet CIDRs: the VPC split in 16, the first two private, the next
    two public, the rest left free for later tiers."""
    network = ipaddress.ip_network(vpc_cidr)
    blocks = [str(block) for block in network.subnets(prefixlen_diff=4)]
    return blocks[:ZONE_COUNT], blocks[ZONE_COUNT : 2 * ZONE_COUNT]


def region_zones(opts: pulumi.InvokeOutputOptions | None = None) -> pulumi.Output[list]:
    """The names of the zones a new VPC uses: chosen by zone ID (components/zones.py)."""
    available = aws.get_availability_zones_output(state="available", opts=opts)
    return pulumi.Output.all(available.names, available.zone_ids).apply(
        lambda both: [name for name, _ in choose_zones(*both)]
    )


def _zone_name(name: str, zone: int) -> str:
    """The first zone's resource keeps the name it had when there was one for all zones."""
    return name if zone == 0 else f"{name}-{zone}"


@dataclass
class NetworkArgs:
    config: NetworkConfig
    tags: Mapping[str, str]
    zones: pulumi.Input[list] | None = None
    """The zones recorded by ``StackShape`` (pinned once chosen); None: from the config or the region."""


class Network(pulumi.ComponentResource):
    vpc_id: pulumi.Output[str]
    private_subnet_ids: pulumi.Output[list]
    public_subnet_ids: pulumi.Output[list]
    backend_security_group_id: pulumi.Output[str]

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("swipesavvy:network:Network", name, None, opts)
        config, tags = args.config, dict(args.tags)
        child = pulumi.ResourceOptions(parent=self)

        if config.uses_existing_vpc:
            self.vpc_id = pulumi.Output.from_input(config.existing_vpc_id)
            self.private_subnet_ids = pulumi.Output.from_input(list(config.private_subnet_ids))
            self.public_subnet_ids = pulumi.Output.from_input(list(config.public_subnet_ids))
        else:
            self._create_vpc(name, config, tags, child, args.zones)

        backend_sg = aws.ec2.SecurityGroup(
            f"{name}-backend",
            vpc_id=self.vpc_id,
            description="SwipeSavvy backend instances (rules are added by the tiers that talk to them)",
            tags={**tags, "Name": f"{name}-backend", "tier": "backend"},
            opts=child,
        )
        self.backend_security_group_id = backend_sg.id
        self.register_outputs(
            {
                "vpc_id": self.vpc_id,
                "private_subnet_ids": self.private_subnet_ids,
                "public_subnet_ids": self.public_subnet_ids,
                "backend_security_group_id": self.backend_security_group_id,
            }
        )

    def _create_vpc(
        self, name: str, config: NetworkConfig, tags: dict, child: pulumi.ResourceOptions, pinned: pulumi.Input | None
    ) -> None:
        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=config.vpc_cidr,
            enable_dns_support=True,
            enable_dns_hostnames=True,  # RDS endpoints resolve to private addresses inside the VPC
            tags={**tags, "Name": f"{name}-vpc"},
            opts=child,
        )
        if pinned is not None:
            zones = [pulumi.Output.from_input(pinned).apply(lambda z, i=i: z[i]) for i in range(ZONE_COUNT)]
        elif config.availability_zones:
            zones = [pulumi.Output.from_input(zone) for zone in config.availability_zones[:ZONE_COUNT]]
        else:
            chosen = region_zones(pulumi.InvokeOutputOptions(parent=self))
            zones = [chosen.apply(lambda n, i=i: n[i]) for i in range(ZONE_COUNT)]

        private_cidrs, public_cidrs = subnet_cidrs(config.vpc_cidr)
        private = [
            self._subnet(f"{name}-private-{i}", vpc, cidr, zones[i], False, tags, child)
            for i, cidr in enumerate(private_cidrs)
        ]
        public = [
            self._subnet(f"{name}-public-{i}", vpc, cidr, zones[i], True, tags, child)
            for i, cidr in enumerate(public_cidrs)
        ]

        gateway = aws.ec2.InternetGateway(
            f"{name}-igw", vpc_id=vpc.id, tags={**tags, "Name": f"{name}-igw"}, opts=child
        )
        public_routes = aws.ec2.RouteTable(
            f"{name}-public",
            vpc_id=vpc.id,
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=gateway.id)],
            tags={**tags, "Name": f"{name}-public"},
            opts=child,
        )
        # Without a NAT gateway the private subnets have no route out at all (only the VPC).
        # Zone 0's table and NAT keep their first names: a stack that adds the second zone's
        # replaces nothing.
        route_tables = ZONE_COUNT if config.nat_gateway_per_zone else 1
        private_routes = [
            aws.ec2.RouteTable(
                _zone_name(f"{name}-private", zone),
                vpc_id=vpc.id,
                routes=[
                    aws.ec2.RouteTableRouteArgs(
                        cidr_block="0.0.0.0/0",
                        nat_gateway_id=self._nat(
                            _zone_name(f"{name}-nat", zone), public[zone], gateway, tags, child
                        ).id,
                    )
                ]
                if config.nat_gateway
                else [],
                tags={**tags, "Name": _zone_name(f"{name}-private", zone)},
                opts=child,
            )
            for zone in range(route_tables)
        ]
        for i, subnet in enumerate(public):
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{i}", subnet_id=subnet.id, route_table_id=public_routes.id, opts=child
            )
        for i, subnet in enumerate(private):
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{i}",
                subnet_id=subnet.id,
                route_table_id=private_routes[i % route_tables].id,
                opts=child,
            )

        self.vpc_id = vpc.id
        self.private_subnet_ids = pulumi.Output.all(*[s.id for s in private])
        self.public_subnet_ids = pulumi.Output.all(*[s.id for s in public])

    @staticmethod
    def _subnet(
        name: str,
        vpc: aws.ec2.Vpc,
        cidr: str,
        zone: pulumi.Output[str],
        public: bool,
        tags: dict,
        child: pulumi.ResourceOptions,
    ) -> aws.ec2.Subnet:
        return aws.ec2.Subnet(
            name,
            vpc_id=vpc.id,
            cidr_block=cidr,
            availability_zone=zone,
            map_public_ip_on_launch=False,  # nothing gets a public IP by accident, even in public subnets
            tags={**tags, "Name": name, "tier": "public" if public else "private"},
            opts=child,
        )

    @staticmethod
    def _nat(
        name: str,  # the EIP's and the gateway's
        subnet: aws.ec2.Subnet,
        gateway: aws.ec2.InternetGateway,
        tags: dict,
        child: pulumi.ResourceOptions,
    ) -> aws.ec2.NatGateway:
        """One NAT gateway; AWS needs the internet gateway attached before it can work."""
        after_gateway = pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[gateway]))
        address = aws.ec2.Eip(name, domain="vpc", tags={**tags, "Name": name}, opts=after_gateway)
        return aws.ec2.NatGateway(
            name, allocation_id=address.id, subnet_id=subnet.id, tags={**tags, "Name": name}, opts=after_gateway
        )
