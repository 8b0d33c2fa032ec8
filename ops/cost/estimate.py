"""What a stack costs per month, from its plan: ``python -m ops cost``.

Pure logic, no Pulumi: a plan is a list of ``PlannedResource`` (type token, name, inputs,
top-level component). Each resource's pricer (``ops/cost/pricers.py``) says what it is billed
for; ``estimate`` looks each charge's price up in the region's ``PriceTable``
(``ops/cost/price_tables.py``: every price with its source, the kind of source and the date it was
read), with the stack's usage (``swipesavvy:cost``, and per resource its usage file,
``ops/cost/usage.py``). A charge whose price is not in the table, and a type nobody priced,
are lines marked ``no price``, never a zero; a burstable class's bound and an always-free
allowance are lines beside the total, never in it. ``estimate_for_stack`` is the one call
that runs the program under mocks (as ``rehearse`` does) and prices its plan.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from components.config import COST_INTEGERS, COST_NUMBERS, CostConfig
from ops.cost.free import FREE
from ops.cost.price_list import query_for
from ops.cost.price_tables import CostError, PriceTable, check_region, load_price_table
from ops.cost.pricers import FREE_CHARGE, PRICERS, Charge, Context, PlannedResource
from ops.cost.usage import UsageFile, load_usage_file, usage_path

NO_PRICE = "no price"
DEFAULT_USAGE = CostConfig()
NO_USAGE_FILE = UsageFile()
SETTING_OF_FIELD = {f: key for key, (f, _) in COST_NUMBERS.items()} | {f: key for key, f in COST_INTEGERS.items()}


@dataclass(frozen=True)
class Line:
    component: str
    resource: str  # "type name"
    what: str
    quantity: float
    unit: str
    unit_price: float | None  # None: no price in the table
    monthly: float | None  # None: no price
    status: str  # "priced", "free", "no price", or beside the total: "risk", "free tier"
    price_key: str = ""
    note: str = ""
    usage: str = ""  # usage-based: the settings the quantity comes from, their values and where they are set
    source_kind: str = ""  # the price's kind of source (ops/cost/price_tables.py KINDS)


@dataclass(frozen=True)
class Estimate:
    stack: str
    region: str
    lines: list[Line]
    subtotals: dict[str, float]
    total: float
    assumptions: dict[str, float]
    no_price: list[str] = field(default_factory=list)  # "resource: what" of each line without a price
    budget: float | None = None  # the usage file's monthlyBudgetUsd
    assumption_sources: dict[str, str] = field(default_factory=dict)  # setting: "default" or "swipesavvy:cost"
    usage_file: str = ""  # the usage file read, "" when the stack has none

    def by_source(self) -> dict[str, float]:
        """Dollars of the total per kind of price source."""
        shares: dict[str, float] = {}
        for line in self.lines:
            if line.status == "priced" and line.monthly:
                shares[line.source_kind] = shares.get(line.source_kind, 0.0) + line.monthly
        return shares

    def to_json(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "region": self.region,
            "total": round(self.total, 2),
            "subtotals": {k: round(v, 2) for k, v in self.subtotals.items()},
            "budget": self.budget,
            "price_sources": {k: round(v, 2) for k, v in sorted(self.by_source().items())},
            "no_price": self.no_price,
            "assumptions": self.assumptions,
            "assumption_sources": self.assumption_sources,
            "usage_file": self.usage_file,
            "lines": [asdict(line) for line in self.lines],
        }


def _usage_note(
    resource: PlannedResource, charge: Charge, context: Context, usage_file: UsageFile, sources: dict
) -> str:
    notes = []
    own = usage_file.overrides.get(resource.name, {})
    for name in charge.usage:
        setting = SETTING_OF_FIELD[name]
        value = own.get(name, getattr(context.usage, name))
        where = usage_file.path if name in own else sources[setting]
        notes.append(f"{setting} {value:,g} ({where})")
    return ", ".join(notes)


def _line(resource: PlannedResource, charge: Charge, table: PriceTable, stack: str, usage: str) -> Line:
    label = f"{resource.type} {resource.name}"
    if charge.key == FREE_CHARGE:
        return Line(resource.component, label, charge.what, charge.quantity, charge.unit, 0.0, 0.0, "free")
    price = table.get(charge.key)
    if price is None:
        fix = (
            f"python -m ops cost --refresh-prices --stack {stack} fetches it from the Price List API"
            if query_for(charge.key)
            else f"add it to ops/cost/prices/{table.region}.json from the provider's pricing page"
        )
        return Line(
            resource.component, label, charge.what, charge.quantity, charge.unit, None, None, NO_PRICE, charge.key,
            f"{charge.key} is not in the {table.region} price table (fix: {fix})", usage,
        )  # fmt: skip
    return Line(
        resource.component, label, charge.what, charge.quantity, charge.unit, price.usd, charge.quantity * price.usd,
        charge.status, charge.key, "", usage, price.kind,
    )  # fmt: skip


def _resource_lines(
    resource: PlannedResource, context: Context, table: PriceTable, stack: str, usage_file: UsageFile,
    sources: dict[str, str],
) -> list[Line]:  # fmt: skip
    """``sources``: where each usage setting the stack uses is set ("default" or "swipesavvy:cost")."""
    label = f"{resource.type} {resource.name}"
    pricer = PRICERS.get(resource.type)
    if pricer is not None:
        return [
            _line(resource, c, table, stack, _usage_note(resource, c, context, usage_file, sources) if c.usage else "")
            for c in pricer(resource, context)
        ]
    free = FREE.get(resource.type) or (
        "a provider's configuration" if resource.type.startswith("pulumi:providers:") else None
    )
    if free:
        return [Line(resource.component, label, free, 1, "resources", 0.0, 0.0, "free")]
    return [
        Line(
            resource.component, label, "a type the cost table does not know", 1, "resources", None, None, NO_PRICE,
            note=f"add a pricer for {resource.type} to ops/cost/pricers.py (or list it as free)",
        )
    ]  # fmt: skip


def estimate(
    stack: str,
    plan: list[PlannedResource],
    table: PriceTable,
    usage: CostConfig = DEFAULT_USAGE,
    usage_file: UsageFile = NO_USAGE_FILE,
    set_in_stack: Iterable[str] = (),
) -> Estimate:
    """``set_in_stack``: the ``swipesavvy:cost`` keys the stack file sets (the rest are defaults)."""
    context = Context(plan, usage, table.hours_per_month, usage_file.overrides)
    sources = {setting: "swipesavvy:cost" if setting in set_in_stack else "default" for setting in _settings()}
    lines = [
        line for resource in plan for line in _resource_lines(resource, context, table, stack, usage_file, sources)
    ]
    subtotals: dict[str, float] = {}
    for line in lines:
        counted = line.monthly if line.status in ("priced", "free") else 0.0
        subtotals[line.component] = subtotals.get(line.component, 0.0) + (counted or 0.0)
    missing = [f"{line.resource}: {line.what}" for line in lines if line.status == NO_PRICE]
    assumptions = {SETTING_OF_FIELD[name]: value for name, value in asdict(usage).items()}
    return Estimate(
        stack, table.region, lines, subtotals, sum(subtotals.values()), assumptions, missing,
        usage_file.budget, sources, usage_file.path,
    )  # fmt: skip


def _settings() -> list[str]:
    return [SETTING_OF_FIELD[name] for name in asdict(DEFAULT_USAGE)]


# --- the plan of a stack (runs the program under mocks) -----------------------------------------


def plan_from_run(run: Any) -> list[PlannedResource]:
    """A recorded program run (``ops.rehearsal.mock_program.ProgramRun``) as a plan: custom resources,
    secrets unwrapped, each under its top-level component."""
    from pulumi.runtime import rpc

    from ops.rehearsal.plan import STACK_GROUP, group_of

    def plain(value: Any) -> Any:
        if rpc.is_rpc_secret(value):
            return plain(rpc.unwrap_rpc_secret(value))
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value

    plan = []
    for resource in run.resources:
        if not resource.custom:
            continue
        group = group_of((resource.typ, resource.name), run.parent_keys)
        component = "(stack)" if group == STACK_GROUP else group[1]
        plan.append(PlannedResource(resource.typ, resource.name, plain(dict(resource.inputs)), component))
    return plan


def estimate_for_stack(stack: str, run: Any = None, table: PriceTable | None = None) -> Estimate:
    """The monthly estimate of ``Pulumi.<stack>.yaml``: its program under mocks (or the given
    run of it), priced with its own region's table, its ``swipesavvy:cost`` settings and its
    usage file. Bad input of any kind is a ConfigError or CostError of one line."""
    import pulumi

    from components.config import parse_cost
    from ops.rehearsal.mock_program import run_program, stack_config

    config = stack_config(stack)
    raw_cost = config.get("swipesavvy:cost")
    usage = parse_cost(raw_cost)  # refused in one line before the program runs
    set_in_stack = set(json.loads(raw_cost) if isinstance(raw_cost, str) else raw_cost or {})
    stack_file = f"Pulumi.{stack}.yaml"
    region = check_region(
        config.get("aws:region", "us-east-1"),
        f"{stack_file}: aws:region",
        f"pulumi config set aws:region us-east-1 --stack {stack}",
    )
    table = table or load_price_table(region)
    if run is None:
        try:
            run = run_program(config, stack=stack)
        except pulumi.RunError as error:  # the program refused a setting: its one line
            raise CostError(f"{stack_file}: {error}") from None
    plan = plan_from_run(run)
    usage_file = load_usage_file(usage_path(stack), [(r.type, r.name) for r in plan])
    return estimate(stack, plan, table, usage, usage_file, set_in_stack)
