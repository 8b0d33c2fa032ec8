"""What ``python -m ops cost`` prints: the estimate as text, and the pull-request comment from
two ``--json`` estimates (the branch's and main's): the totals' line, the per-resource
difference (added, removed and changed resources with their monthly delta, largest first)
and the budget verdict. Pure logic, no Pulumi.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ops.cost.estimate import NO_PRICE, Estimate
from ops.cost.price_tables import CONFIRMED
from ops.cost.pricers import ALLOWANCE, RISK

COST_MARKER = "<!-- swipesavvy-cost -->"
DIFF_ROWS = 20  # the comment's table: the largest differences, then a count of the rest
CROSSED_ITEMS = 5
WIDTH = 150  # the notes under the total are wrapped to the width of the lines above  # the budget verdict names at most this many resources
KIND_NAMES = {
    "provider": "the provider's pages",
    "price-list-api": "the Price List API",
    "third-party": "third-party pages only",
    "unconfirmed": "no page found",
}


def money(usd: float) -> str:
    return f"{'-' if usd < 0 else ''}${abs(usd):,.2f}"


def signed(usd: float) -> str:
    return f"{'+' if usd > 0 else '-'}{money(abs(usd))}"


def _quantity(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 or value == int(value) else f"{value:,.4g}"


def _usd(value: float) -> str:
    """A unit price in full (0.0000133334, not 1.33e-05)."""
    return "$" + (f"{value:.10f}".rstrip("0").rstrip(".") or "0")


def _cost(line: Any) -> str:
    if line.status == NO_PRICE:
        return NO_PRICE
    if line.status == RISK:
        return f"up to {money(line.monthly)}"
    return money(line.monthly)


def render_text(estimate: Estimate) -> str:
    """Per component: one line per charge (resource, what, quantity x unit price, $/month;
    ``*``: usage-based), the number of free resources and the subtotal; then the total, the
    lines beside it (a burstable class's bound, an always-free allowance), what has no price,
    the price sources' shares, the budget and the usage assumed."""
    out = [f"stack {estimate.stack} ({estimate.region}), monthly estimate from the plan:"]
    for component, subtotal in sorted(estimate.subtotals.items()):  # sorted: the plan's order varies by run
        lines = sorted(
            (line for line in estimate.lines if line.component == component), key=lambda line: line.resource.split()[1]
        )
        out.append(component)
        for line in lines:
            if line.status == "free":
                continue
            name = line.resource.split(" ", 1)[1]
            amount = f"{_quantity(line.quantity)} {line.unit}"
            if line.unit_price is not None:
                amount += f" x {_usd(line.unit_price)}"
            what = f"{'* ' if line.usage else ''}{line.what}"
            out.append(f"  {name:<38} {what:<58} {amount:>34} {_cost(line):>14}")
        free = {line.resource for line in lines if line.status == "free" and line.unit == "resources"}
        out.append(f"  {'':<38} {f'{len(free)} free resources':<58} {'subtotal':>34} {money(subtotal):>14}")
    out.append(f"total {money(estimate.total)}/month")
    notes = [(note, ", ") for note in _beside_the_total(estimate)]
    if estimate.no_price:  # broken between the charges, whose names may hold commas
        notes.append((f"not in the total ({NO_PRICE}): " + "; ".join(estimate.no_price), "; "))
        fixes = dict.fromkeys(line.note for line in estimate.lines if line.status == NO_PRICE and line.note)
        notes += [(fix, " ") for fix in fixes]
    notes.append((price_sources(estimate.by_source(), estimate.total), ", "))
    if estimate.budget is not None:
        notes.append((budget_line(estimate.total, estimate.budget, estimate.usage_file), ", "))
    notes.append((_assumptions(estimate), ", "))
    return "\n".join(out + [line for note, separator in notes for line in _wrap(note, separator)])


def _wrap(note: str, separator: str) -> list[str]:
    """``note`` in lines of at most WIDTH, broken only after a ``separator`` of its list (never
    inside a command or a ``setting value`` pair); a ``(fix: ...)`` on a line of its own."""
    text, fix = note.split(" (fix: ", 1) if " (fix: " in note else (note, "")
    pieces = text.replace(separator, separator.rstrip() + "\0").split("\0")
    lines = [""]
    for piece in pieces:
        if lines[-1] and len(lines[-1]) + 1 + len(piece) > WIDTH:
            lines.append("  " + piece)
        else:
            lines[-1] += (" " if lines[-1] else "") + piece
    return lines + ([f"  (fix: {fix}"] if fix else [])


def _beside_the_total(estimate: Estimate) -> list[str]:
    risk = sum(line.monthly or 0 for line in estimate.lines if line.status == RISK)
    allowance = -sum(line.monthly or 0 for line in estimate.lines if line.status == ALLOWANCE)
    out = []
    if risk:
        out.append(
            f"not in the total: up to {money(risk)}/month more if the burstable classes ran at 100% CPU all month"
            " (unlimited mode bills CPU credits above the baseline)"
        )
    if allowance:
        out.append(
            f"not in the total: CloudFront's always-free tier would take up to {money(allowance)}/month off,"
            " once per account (shared by every distribution in it)"
        )
    return out


def price_sources(shares: Mapping[str, float], total: float) -> str:
    """Where the total's prices come from, and the share the provider has not confirmed."""
    parts = [f"{money(shares[kind])} {KIND_NAMES[kind]}" for kind in KIND_NAMES if shares.get(kind)]
    unconfirmed = sum(v for kind, v in shares.items() if kind not in CONFIRMED)
    share = unconfirmed / total if total else 0
    text = f"prices: {', '.join(parts) or 'none'}; unconfirmed by the provider: {money(unconfirmed)} ({share:.0%})"
    return (
        text + " (fix: python -m ops cost --refresh-prices, with AWS credentials, confirms AWS's)"
        if unconfirmed
        else text
    )


def budget_line(total: float, budget: float, where: str) -> str:
    if total <= budget:
        return f"budget: {money(total)} of {money(budget)}/month ({where} monthlyBudgetUsd), {money(budget - total)} to spare"
    return (
        f"over budget: {money(total)}/month is {money(total - budget)} above {money(budget)} ({where} monthlyBudgetUsd)"
    )


def _assumptions(estimate: Estimate) -> str:
    sources = estimate.assumption_sources
    settings = ", ".join(
        f"{key} {_quantity(value)}{' (swipesavvy:cost)' if sources.get(key) == 'swipesavvy:cost' else ''}"
        for key, value in estimate.assumptions.items()
    )
    text = f"* usage-based; usage assumed (defaults unless marked): {settings}"
    if any(estimate.usage_file and estimate.usage_file in line.usage for line in estimate.lines):
        text += f"; {estimate.usage_file} sets the usage of the marked lines that name it"
    return text


# --- the pull-request comment ---------------------------------------------------------------------


def comment_line(head: Mapping[str, Any], base: Mapping[str, Any] | None) -> str:
    """``staging: $212.40/month (+$16.20)`` from two ``--json`` estimates (``base``: main's, or
    None when main has none); lines without a price are counted, never silently zero."""
    total = float(head["total"])
    if base is None:
        change = "no estimate for main"
    else:
        difference = round(total - float(base["total"]), 2)
        change = "no change" if difference == 0 else signed(difference)
    text = f"{head['stack']}: {money(total)}/month ({change})"
    if head.get("no_price"):
        text += f", {len(head['no_price'])} charges without a price"
    return text


def resource_totals(document: Mapping[str, Any]) -> dict[str, float]:
    """$/month per resource ("type name") of a ``--json`` estimate; lines beside the total left out."""
    totals: dict[str, float] = {}
    for line in document.get("lines") or []:
        counted = line.get("monthly") if line.get("status") in ("priced", "free") else 0
        totals[line["resource"]] = totals.get(line["resource"], 0.0) + (counted or 0.0)
    return totals


def resource_diff(head: Mapping[str, Any], base: Mapping[str, Any]) -> list[tuple[str, str, float, float]]:
    """(change, resource, $/month on the branch, difference) for each resource added, removed
    or changed by at least a cent, the largest difference first."""
    new, old = resource_totals(head), resource_totals(base)
    rows = []
    for resource in new.keys() | old.keys():
        delta = round(new.get(resource, 0.0) - old.get(resource, 0.0), 2)
        change = "added" if resource not in old else "removed" if resource not in new else "changed"
        if delta or change != "changed":
            rows.append((change, resource, new.get(resource, 0.0), delta))
    return sorted(rows, key=lambda row: (-abs(row[3]), row[1]))


def _name(resource: str) -> str:
    typ, _, name = resource.partition(" ")
    return f"`{name}` ({typ})"


def diff_table(rows: list[tuple[str, str, float, float]]) -> str:
    if not rows:
        return ""
    out = ["| change | resource | $/month | difference |", "| --- | --- | --- | --- |"]
    out += [f"| {c} | {_name(r)} | {money(m)} | {signed(d) if d else '$0.00'} |" for c, r, m, d in rows[:DIFF_ROWS]]
    if len(rows) > DIFF_ROWS:
        out.append(f"| ... | {len(rows) - DIFF_ROWS} more resources | | |")
    return "\n".join(out)


def budget_verdict(head: Mapping[str, Any], base: Mapping[str, Any] | None) -> tuple[bool, str]:
    """(over budget, the verdict line; "" without a budget). Over it, the line names the
    resources that grew (largest first), or without main's estimate the largest ones."""
    budget = head.get("budget")
    if budget is None:
        return False, ""
    total, where = float(head["total"]), head.get("usage_file") or "the usage file"
    line = f"{head['stack']}: {budget_line(total, float(budget), where)}"
    if total <= budget:
        return False, line
    if base is not None:
        grown = [(r, d) for _, r, _, d in resource_diff(head, base) if d > 0]
        named = ", ".join(f"{_name(r)} {signed(d)}" for r, d in grown[:CROSSED_ITEMS])
        return True, f"{line}; what crossed it: {named or 'no resource grew (the budget was lowered)'}"
    largest = sorted(resource_totals(head).items(), key=lambda item: -item[1])[:CROSSED_ITEMS]
    return True, f"{line}; the largest: " + ", ".join(f"{_name(r)} {money(m)}" for r, m in largest)


def comment_details(head: Mapping[str, Any], base: Mapping[str, Any] | None) -> tuple[bool, str]:
    """(over budget, what follows the line in the comment: the per-resource table, the verdict)."""
    over, verdict = budget_verdict(head, base)
    table = diff_table(resource_diff(head, base)) if base is not None else ""
    return over, "\n\n".join(part for part in (table, f"**{verdict}**" if over else verdict) if part)


def comment_with_cost(body: str, line: str, details: str = "") -> str:
    """A pull-request comment (the stack's preview) with its cost section set to ``line`` and
    ``details``: a section added by an earlier run is replaced, so a re-run never stacks them."""
    kept = body.split(COST_MARKER, 1)[0].rstrip()
    section = f"{COST_MARKER}\n**Monthly cost** (`python -m ops cost`, difference from main): {line}\n"
    if details:
        section += f"\n{details}\n"
    return f"{kept}\n\n{section}" if kept else section
