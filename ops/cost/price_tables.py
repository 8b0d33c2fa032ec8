"""The price tables of ``python -m ops cost``: one JSON file per region, ``ops/cost/prices/<region>.json``.

A table holds its ``region``, the ``hoursPerMonth`` its hourly prices are multiplied by, and
``prices``: per price key, ``usd`` (a positive number, or null for a price known to exist
but not found: the line then says ``no price``), ``per`` (the unit), ``source`` (where it was
read), ``read`` (the date) and ``kind``, what the source is worth:

- ``provider``: the provider's own pricing page (AWS's, Datadog's);
- ``price-list-api``: AWS's Price List Query API (written by ``--refresh-prices``);
- ``third-party``: only a third party's page (a blog, a price tracker) shows it;
- ``unconfirmed``: no page found shows it; the usual list price, to be checked.

Every way a file can be wrong is one line (``CostError``) naming the file, the key and the fix.
Pure logic, no Pulumi.
"""

from __future__ import annotations

import datetime
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PRICES_DIR = Path(__file__).resolve().parent / "prices"
PROJECT_ROOT = PRICES_DIR.parents[2]  # ops/cost/prices/ is three below the project
KINDS = ("provider", "price-list-api", "third-party", "unconfirmed")
CONFIRMED = ("provider", "price-list-api")  # the provider itself says so
HOURS_PER_MONTH = 730  # AWS's calculator month
MONTH_HOURS = (672, 744)  # February to a 31-day month
REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")


class CostError(ValueError):
    """Bad input to ``ops cost`` (a price table, a usage file, a stack's region); one line."""


@dataclass(frozen=True)
class Price:
    usd: float
    per: str
    source: str
    read: str
    kind: str = "unconfirmed"


@dataclass(frozen=True)
class PriceTable:
    region: str
    prices: Mapping[str, Price]
    hours_per_month: float = HOURS_PER_MONTH

    def get(self, key: str) -> Price | None:
        return self.prices.get(key)


def price_table_path(region: str) -> Path:
    return PRICES_DIR / f"{region}.json"


def shown(path: Path) -> str:
    """``path`` as the user would type it from the project's root."""
    try:
        return str(path.resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def refresh_fix(region: str) -> str:
    return f"python -m ops cost --refresh-prices --region {region} rebuilds it from the Price List API"


def check_region(region: Any, where: str, fix: str) -> str:
    if not isinstance(region, str) or not REGION.match(region):
        raise CostError(f"{where} = {region!r} is invalid: must be an AWS region like us-east-1 (fix: {fix})")
    return region


def load_price_table(region: str, path: Path | None = None) -> PriceTable:
    """The table of ``region``; refused when missing, unreadable or another region's."""
    path = path or price_table_path(region)
    if not path.is_file():
        raise CostError(f"no price table for {region}: {shown(path)} does not exist (fix: {refresh_fix(region)})")
    table = price_table_from_json(read_table_document(path, region), shown(path), region)
    if table.region != region:
        raise CostError(
            f"{shown(path)} holds {table.region}'s prices, not {region}'s: its region is {table.region!r}"
            f" (fix: {refresh_fix(region)}; never copy another region's table)"
        )
    return table


def read_table_document(path: Path, region: str) -> dict[str, Any]:
    """The JSON object of a price file, or a CostError naming what is wrong with it."""
    fix = f"git checkout -- {shown(path)}, or {refresh_fix(region)}"
    try:
        document = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as error:
        raise CostError(f"{shown(path)} is not UTF-8 text (byte {error.start}) (fix: {fix})") from None
    except json.JSONDecodeError as error:
        raise CostError(
            f"{shown(path)} is not valid JSON: line {error.lineno}, column {error.colno}: {error.msg} (fix: {fix})"
        ) from None
    if not isinstance(document, dict):
        raise CostError(
            f"{shown(path)} holds a JSON {type(document).__name__}, not a price table"
            f" (an object with region, hoursPerMonth and prices) (fix: {fix})"
        )
    return document


def price_table_from_json(document: Mapping[str, Any], where: str = "the price table", region: str = "") -> PriceTable:
    def fail(key: str, value: Any, must: str, fix: str) -> CostError:
        return CostError(f"{where}: {key} = {value!r} is invalid: {must} (fix: {fix})")

    table_region = document.get("region")
    if not isinstance(table_region, str) or not table_region:
        raise fail("region", table_region, "must be the region the prices are for", '"region": "us-east-1"')
    hours = document.get("hoursPerMonth", HOURS_PER_MONTH)
    if not _is_number(hours) or not MONTH_HOURS[0] <= hours <= MONTH_HOURS[1]:
        low, high = MONTH_HOURS
        raise fail("hoursPerMonth", hours, f"must be a number of hours from {low} to {high}", "730, AWS's calculator")
    entries = document.get("prices")
    if not isinstance(entries, dict) or not entries:
        raise fail("prices", entries, "must be an object of price entries", refresh_fix(region or table_region))
    prices = {}
    for key, entry in entries.items():
        price = _price(key, entry, fail)
        if price is not None:
            prices[key] = price
    return PriceTable(table_region, prices, float(hours))


def _price(key: str, entry: Any, fail: Any) -> Price | None:
    name = f"prices.{key}"
    fix = "correct it from its source (every entry has usd, per, source, read and kind)"
    if not isinstance(entry, dict):
        raise fail(name, entry, "must be an object with usd, per, source, read and kind", fix)
    for field in ("per", "source"):
        if not isinstance(entry.get(field), str) or not entry[field].strip():
            raise fail(f"{name}.{field}", entry.get(field), "must be a non-empty text", fix)
    try:
        datetime.date.fromisoformat(entry.get("read"))
    except (TypeError, ValueError):
        raise fail(f"{name}.read", entry.get("read"), "must be the date it was read, YYYY-MM-DD", fix) from None
    if entry.get("kind") not in KINDS:
        raise fail(f"{name}.kind", entry.get("kind"), f"must be one of {', '.join(KINDS)}", fix)
    usd = entry.get("usd", "missing")
    if usd is None:  # a price known to exist but not found: the line says no price
        return None
    if not _is_number(usd) or usd <= 0:
        raise fail(
            f"{name}.usd", usd, "must be a positive number of US dollars, or null when not found",
            f"the price per {entry['per']} from {entry['source']}",
        )  # fmt: skip
    return Price(float(usd), entry["per"], entry["source"], entry["read"], entry["kind"])


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
