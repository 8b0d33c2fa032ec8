"""A recorded program run (``ops.rehearsal.mock_program.ProgramRun``) as a readable plan and as a picture.

Pure functions, no I/O: ``plan_groups`` puts each resource under the top-level component
it belongs to, ``plan_lines`` prints that like a preview, ``plan_dot`` draws it as Graphviz
DOT text (components as clusters, resources inside, dependency edges, and the database work
chained in the order the runbook does it).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ops.rehearsal.mock_program import ProgramRun

STACK_TYPE = "pulumi:pulumi:Stack"
STACK_GROUP = (STACK_TYPE, "(stack)")  # resources registered directly in the stack
Key = tuple[str, str]  # (type, name): names repeat across types

# The runbook's database work, in its order (1.2 schema, 1.5 backup, 2.2 data, 2.4 backup,
# 5.1 the logins, then flag states): (type, name suffix or "" for any).
DATABASE_WORK = (
    ("pulumi-python:dynamic/db:DatabaseSchema", ""),
    ("aws:rds/snapshot:Snapshot", "-after-schema"),
    ("pulumi-python:dynamic/db:MockDataSeed", ""),
    ("aws:rds/snapshot:Snapshot", "-after-seed"),
    ("pulumi-python:dynamic/db:LoginRole", ""),
    ("pulumi-python:dynamic/db:FeatureFlagSettings", ""),
)


@dataclass(frozen=True)
class PlanGroup:
    component: Key
    resources: list[Key]


def top_component(key: Key, parents: dict[Key, Key]) -> Key:
    """The component directly under the stack that the component ``key`` belongs to (itself if it is one)."""
    while key in parents and parents[key][0] != STACK_TYPE:
        key = parents[key]
    return key


def group_of(key: Key, parents: dict[Key, Key]) -> Key:
    """The group a custom resource is listed in: its top-level component, or the stack's."""
    parent = parents.get(key)
    return STACK_GROUP if parent is None or parent[0] == STACK_TYPE else top_component(parent, parents)


def plan_groups(run: ProgramRun) -> list[PlanGroup]:
    """Custom resources grouped by top-level component, in registration order (an empty
    component, e.g. one that reuses an existing VPC, still shows)."""
    groups: dict[Key, list[Key]] = {}
    for resource in run.resources:
        key = (resource.typ, resource.name)
        if resource.custom:
            groups.setdefault(group_of(key, run.parent_keys), []).append(key)
        else:
            groups.setdefault(top_component(key, run.parent_keys), [])
    return [PlanGroup(component, resources) for component, resources in groups.items()]


def plan_lines(groups: Iterable[PlanGroup]) -> list[str]:
    """``+ type name`` per resource under ``+ component``, as ``pulumi preview`` lists creates."""
    lines = []
    for group in groups:
        typ, name = group.component
        lines.append(f"+ {typ}  {name}  ({len(group.resources)} resources)")
        width = max((len(t) for t, _ in group.resources), default=0)
        lines += [f"    + {t:<{width}}  {n}" for t, n in group.resources]
    return lines


def database_work(run: ProgramRun) -> list[Key]:
    """The database work the program declares, in the runbook's order."""
    keys = [(r.typ, r.name) for r in run.resources if r.custom]
    return [key for typ, suffix in DATABASE_WORK for key in keys if key[0] == typ and key[1].endswith(suffix)]


def _node(key: Key) -> str:
    return _quote(f"{key[0]}::{key[1]}")


def _quote(text: str) -> str:
    """A DOT string; a newline in ``text`` becomes a line break in the label."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _resource_label(key: Key) -> str:
    return f"{key[1]}\n{key[0]}"


def dependency_edges(run: ProgramRun) -> list[tuple[Key, Key]]:
    """(dependency, dependent) between custom resources. Dependencies are recorded by name,
    which several types may share: each such name links to all of them (never to itself)."""
    by_name: dict[str, list[Key]] = {}
    for resource in run.resources:
        if resource.custom:
            by_name.setdefault(resource.name, []).append((resource.typ, resource.name))
    edges = []
    for resource in run.resources:
        key = (resource.typ, resource.name)
        if not resource.custom:
            continue
        for name in dict.fromkeys(run.dependencies.get(key, [])):
            edges += [(dep, key) for dep in by_name.get(name, []) if dep != key and (dep, key) not in edges]
    return edges


def plan_dot(run: ProgramRun, title: str) -> str:
    """Graphviz DOT: a cluster per component, a box per resource, dependency edges (grey),
    and the database work as a numbered bold chain in the runbook's order."""
    lines = [
        "digraph plan {",
        f"  label={_quote(title)}; labelloc=t; fontname=Helvetica; rankdir=LR; compound=true;",
        "  node [shape=box, style=rounded, fontname=Helvetica, fontsize=10];",
        "  edge [color=gray60, arrowsize=0.6];",
    ]
    for index, group in enumerate(plan_groups(run)):
        typ, name = group.component
        lines.append(f"  subgraph cluster_{index} {{")
        lines.append(f"    label={_quote(f'{name} ({typ})')}; style=rounded; color=steelblue;")
        lines += [f"    {_node(key)} [label={_quote(_resource_label(key))}];" for key in group.resources]
        lines.append("  }")
    lines += [f"  {_node(dep)} -> {_node(key)};" for dep, key in dependency_edges(run)]
    work = database_work(run)
    for step, (before, after) in enumerate(zip(work, work[1:], strict=False), start=1):
        lines.append(f"  {_node(before)} -> {_node(after)} [color=firebrick, penwidth=2.5, label={_quote(str(step))}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


# The resources that say what a component is; the architecture picture shows these (counted
# per type) and leaves the wiring (policies, rules, attachments, versions) to --graph-detail.
MAIN_TYPES = (
    "aws:ec2/vpc:Vpc",
    "aws:ec2/subnet:Subnet",
    "aws:ec2/natGateway:NatGateway",
    "aws:rds/instance:Instance",
    "aws:secretsmanager/secret:Secret",
    "aws:lambda/function:Function",
    "pulumi-python:dynamic/db:DatabaseSchema",
    "aws:rds/snapshot:Snapshot",
    "pulumi-python:dynamic/db:MockDataSeed",
    "pulumi-python:dynamic/db:LoginRole",
    "pulumi-python:dynamic/db:FeatureFlagSettings",
    "aws:lb/loadBalancer:LoadBalancer",
    "aws:ec2/launchTemplate:LaunchTemplate",
    "aws:autoscaling/group:Group",
    "aws:s3/bucket:Bucket",
    "aws:cloudfront/function:Function",
    "aws:cloudfront/vpcOrigin:VpcOrigin",
    "aws:wafv2/webAcl:WebAcl",
    "aws:cloudfront/distribution:Distribution",
    "datadog:index/monitor:Monitor",
    "datadog:index/syntheticsTest:SyntheticsTest",
    "datadog:index/serviceLevelObjective:ServiceLevelObjective",
    "datadog:index/dashboard:Dashboard",
)


def short_type(typ: str) -> str:
    """``aws:rds/instance:Instance`` -> ``rds Instance``; ``datadog:index/monitor:Monitor`` -> ``datadog Monitor``."""
    provider, module_path, kind = typ.split(":")
    module = module_path.split("/")[0]
    if module == "index":
        module = provider
    elif module == "dynamic":
        module = module_path.split("/")[1]
    return f"{module} {kind}"


def component_edges(run: ProgramRun) -> list[tuple[Key, Key]]:
    """(component depended on, dependent component): the dependencies between resources of
    different top-level components, once per pair."""
    edges: dict[tuple[Key, Key], None] = {}
    for dep, key in dependency_edges(run):
        pair = (group_of(dep, run.parent_keys), group_of(key, run.parent_keys))
        if pair[0] != pair[1]:
            edges[pair] = None
    return list(edges)


def architecture_dot(run: ProgramRun, title: str) -> str:
    """Graphviz DOT on one screen: a cluster per component with its main resources counted by
    type, and an edge where one component depends on another."""
    lines = [
        "digraph architecture {",
        f"  label={_quote(title)}; labelloc=t; fontname=Helvetica; rankdir=LR; compound=true; nodesep=0.2;",
        "  node [shape=box, style=rounded, fontname=Helvetica, fontsize=10];",
        "  edge [color=gray40, arrowsize=0.7];",
    ]
    anchors: dict[Key, str] = {}
    for index, group in enumerate(plan_groups(run)):
        typ, name = group.component
        counts = {t: sum(1 for k in group.resources if k[0] == t) for t in MAIN_TYPES}
        shown = [(t, n) for t, n in counts.items() if n]
        lines.append(f"  subgraph cluster_{index} {{")
        label = f"{name}\n{typ.split(':')[-1]}: {len(group.resources)} resources"
        lines.append(f"    label={_quote(label)}; style=rounded; color=steelblue;")
        texts = [short_type(t) + (f" x{n}" if n > 1 else "") for t, n in shown]
        if not texts:  # nothing main: its own resources by name (the stack's guards), or a place holder
            texts = [f"{short_type(t)} {n}" for t, n in group.resources] or ["(nothing created)"]
        for position, text in enumerate(texts):
            lines.append(f"    {_quote(f'{index}:{position}')} [label={_quote(text)}];")
        anchors[group.component] = _quote(f"{index}:0")
        lines.append("  }")
    clusters = {group.component: index for index, group in enumerate(plan_groups(run))}
    for dep, key in component_edges(run):
        # The stack's own guards touch every component (all wait for the shape check; the destroy
        # guard waits for all): edges to them would only hide the architecture.
        if dep in anchors and key in anchors and STACK_TYPE not in (dep[0], key[0]):
            lines.append(
                f"  {anchors[dep]} -> {anchors[key]} [ltail=cluster_{clusters[dep]}, lhead=cluster_{clusters[key]}];"
            )
    lines.append("}")
    return "\n".join(lines) + "\n"
