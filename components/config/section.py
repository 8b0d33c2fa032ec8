"""What every section's validator shares: ``ConfigError`` (one line naming the key, the bad
value, what is allowed and the command that fixes it), ``_Section`` (reads one config object and
refuses keys nobody read), the typed readers behind it, and the limits several sections use."""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

NAMESPACE = "swipesavvy"
MAX_ROTATION = 1_000_000  # credentialRotation, apiTokenRotation: counters, one more per rotation
# Pulumi hands every number to dynamic providers as a protobuf double: integers beyond
# 2**53 - 1 arrive changed, so no integer setting may exceed it.
MAX_EXACT_INTEGER = 2**53 - 1


class ConfigError(ValueError):
    """Invalid stack configuration; the message is a single line for the operator."""


def _fail(key: str, value: Any, allowed: str, example: Any) -> ConfigError:
    shown = json.dumps(value) if not isinstance(value, str) else repr(value)
    fix_key = key
    if isinstance(example, (list, tuple)):  # lists are set one element at a time
        fix_key, example = f"{key}[0]", example[0]
    fix = f"pulumi config set --path '{NAMESPACE}:{fix_key}' {example}"
    return ConfigError(f"{NAMESPACE}:{key} = {shown} is invalid: {allowed} (fix: {fix})")


def _not_known(path: str, what: str, known: Iterable[str]) -> ConfigError:
    """A key that is not there to set: the fix is to remove it (or correct its spelling)."""
    section = path.rsplit(".", 1)[0]
    return ConfigError(
        f"{NAMESPACE}:{path} is not {what}; {section} takes {', '.join(sorted(known))} "
        f"(fix: pulumi config rm --path '{NAMESPACE}:{path}')"
    )


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


class _Section:
    """Reads one config object, tracking which keys were used so typos are reported."""

    def __init__(self, key: str, raw: Any):
        if raw is None:
            raw = {}
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except json.JSONDecodeError:
                raise _fail(key, raw, "must be an object", "'{...}'") from None
        if not isinstance(raw, Mapping):
            raise _fail(key, raw, "must be an object", "'{...}'")
        self.key, self.raw, self.used = key, dict(raw), set()

    def path(self, name: str) -> str:
        return f"{self.key}.{name}"

    def get(self, name: str, default: Any) -> Any:
        self.used.add(name)
        return self.raw.get(name, default)

    def integer(self, name: str, default: int, low: int, high: int, unit: str = "") -> int:
        value = self.get(name, default)
        number = _as_int(value)
        if number is None or not low <= number <= high:
            raise _fail(self.path(name), value, f"must be an integer from {low} to {high}{unit}", default)
        return number

    def optional_integer(self, name: str, low: int, high: int, example: int) -> int | None:
        if self.raw.get(name) is None:
            self.used.add(name)
            return None
        return self.integer(name, example, low, high)

    def number(self, name: str, default: float, low: float, high: float) -> float:
        value = self.get(name, default)
        try:
            number = float(value) if not isinstance(value, bool) else None
        except (TypeError, ValueError):
            number = None
        if number is None or not low <= number <= high:
            raise _fail(self.path(name), value, f"must be a number from {low:g} to {high:g}", default)
        return number

    def boolean(self, name: str, default: bool) -> bool:
        value = self.get(name, default)
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise _fail(self.path(name), value, "must be true or false", str(default).lower())

    def text(
        self,
        name: str,
        default: str | None,
        pattern: re.Pattern | None = None,
        allowed: str = "",  # pragma: no mutate (every caller passes allowed: this default is never used)
        example: str = "",  # pragma: no mutate (every caller passes example: this default is never used)
    ) -> str | None:
        value = self.get(name, default)
        if value is None:
            return None
        if not isinstance(value, str) or (pattern is not None and not pattern.match(value)):
            raise _fail(
                self.path(name),
                value,
                allowed or "must be a string",  # pragma: no mutate (every caller names what is allowed)
                example or default,
            )
        return value

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.get(name, default)
        value = str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value
        if value not in choices:
            raise _fail(self.path(name), value, f"must be one of {', '.join(choices)}", default)
        return value

    def strings(self, name: str, check: Callable[[str], bool], allowed: str, example: list[str]) -> tuple[str, ...]:
        value = self.get(name, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and check(v) for v in value):
            raise _fail(self.path(name), value, allowed, example)
        return tuple(value)

    def finish(self) -> None:
        """Refuse keys nobody read: a typo must not silently fall back to a default."""
        unknown = sorted(set(self.raw) - self.used)
        if unknown:
            raise _not_known(self.path(unknown[0]), "a setting", self.used)


def _as_int(value: Any) -> int | None:
    """An int, or a string of digits (``pulumi config set`` stores strings); anything else,
    floats included even when integral (5432.0), is no integer setting: YAML and the CLI
    give ints for integers, so a float was written as one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    return None


def _is_cidr(value: str) -> bool:
    try:
        ipaddress.ip_network(value, strict=True)  # pragma: no mutate (strict=True is also the default)
    except ValueError:
        return False
    return "/" in value
