"""``python -m ops rollback``: which earlier update of a stack to deploy again (pure logic).

Pulumi has no rollback command; its answer is to deploy the earlier program and config again.
Each update in ``pulumi stack history --json`` records the git commit it ran from
(``environment["git.head"]``) and whether the work tree was dirty (``git.dirty``): a rollback
redeploys that commit from a temporary worktree. This module checks the history against
``HISTORY_SCHEMA`` and turns it and ``--to`` into a plan, or a one-line refusal; no Pulumi,
git or AWS call happens here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_COMMIT = re.compile(r"[0-9a-f]{40}")  # fullmatch: "$" would let a trailing newline through
_ROLLBACK_MESSAGE = re.compile(r"rollback to version (\d+) \(commit [0-9a-f]{12}; sql/ kept from ")


class RollbackRefused(ValueError):
    """The chosen version cannot be redeployed; the message is one line naming the fix."""


class HistoryUnreadable(ValueError):
    """``pulumi stack history --json`` printed something that does not fit ``HISTORY_SCHEMA``;
    the message is one line naming the entry and the field."""


# What this module reads of each entry (pulumi's UpdateInfo): the field -> its JSON type. Other
# fields are ignored; version is required, the rest optional.
HISTORY_SCHEMA: dict[str, tuple[type, str]] = {
    "kind": (str, "a string"),
    "result": (str, "a string"),
    "startTime": (str, "a string"),
    "message": (str, "a string"),
    "environment": (dict, "an object"),
    "config": (dict, "an object"),
}


def _json(value: Any) -> str:
    return json.dumps(value)[:60]


def parse_history(history: Any) -> list[dict[str, Any]]:
    """The history's entries, each checked against ``HISTORY_SCHEMA`` (``environment`` of
    strings, ``config`` of objects); HistoryUnreadable for the first that does not fit."""
    if not isinstance(history, list):
        raise HistoryUnreadable("it is not a JSON list")
    for number, entry in enumerate(history, 1):
        if not isinstance(entry, dict):
            raise HistoryUnreadable(f"entry {number} is {_json(entry)}, not an object")
        if "version" not in entry:
            raise HistoryUnreadable(f"entry {number} has no version (an integer from 1)")
        version = entry["version"]
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise HistoryUnreadable(f"entry {number} has version {_json(version)}, not an integer from 1")
        where = f"entry {number} (version {version})"
        for name, (kind, what) in HISTORY_SCHEMA.items():
            if name in entry and not isinstance(entry[name], kind):
                raise HistoryUnreadable(f"{where} has {name} {_json(entry[name])}, not {what}")
        for key, value in entry.get("environment", {}).items():
            if not isinstance(value, str):
                raise HistoryUnreadable(f"{where} has environment.{key} {_json(value)}, not a string")
        for key, value in entry.get("config", {}).items():
            if not isinstance(value, dict):
                raise HistoryUnreadable(f"{where} has config.{key} {_json(value)}, not an object")
    return history


@dataclass(frozen=True)
class RollbackPlan:
    version: int
    commit: str
    started: str  # ISO time the update started
    result: str
    message: str
    config: Mapping[str, Any]


def _dirty(environment: Mapping[str, Any]) -> bool:
    """Whether the update ran from a work tree with uncommitted changes (recorded as "true")."""
    return str(environment.get("git.dirty")).lower() == "true"


def _updates(history: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The stack's ``update`` operations, newest first (previews, refreshes, destroys deploy nothing)."""
    return sorted((h for h in history if h.get("kind") == "update"), key=lambda h: h["version"], reverse=True)


def _default_target(updates: list[Mapping[str, Any]], stack: str) -> Mapping[str, Any]:
    """The newest successful update before the current one: what the stack was before it."""
    earlier = [u for u in updates[1:] if u.get("result") == "succeeded"]
    if not earlier:
        raise RollbackRefused(
            f"stack {stack!r} has no successful update before its latest one to roll back to "
            f"(fix: pulumi stack history --stack {stack} lists them; give one with --to VERSION)"
        )
    return earlier[0]


def plan_rollback(history: Sequence[Mapping[str, Any]], stack: str, to: int | None = None) -> RollbackPlan:
    """The update to redeploy: ``to``, or by default the last successful one before the latest."""
    updates = _updates(history)
    if to is None:
        chosen = _default_target(updates, stack)
    else:
        chosen = next((u for u in updates if u["version"] == to), None)
        if chosen is None:
            known = ", ".join(str(u["version"]) for u in updates) or "none"
            raise RollbackRefused(
                f"--to {to}: stack {stack!r} has no update with that version (updates: {known}) "
                f"(fix: pulumi stack history --stack {stack})"
            )
    if not chosen.get("config"):
        raise RollbackRefused(
            f"--to {chosen['version']}: the update recorded no config, so the settings it ran with cannot be "
            "recovered (fix: choose another version with --to, or redeploy by hand as docs/operations.md 'Rolling back' says)"
        )
    environment = chosen.get("environment") or {}
    commit = environment.get("git.head", "")  # pragma: no mutate (any other non-commit default is refused alike)
    if not _COMMIT.fullmatch(commit):
        raise RollbackRefused(
            f"--to {chosen['version']}: the update recorded no git commit, so its program cannot be recovered "
            "(fix: choose an update run from a git checkout, or redeploy by hand as docs/operations.md 'Rolling back' says)"
        )
    if _dirty(environment):
        # A rollback that kept this checkout's sql/ is recorded as dirty: return to what it redeployed.
        earlier = _ROLLBACK_MESSAGE.match(str(chosen.get("message", "")))
        fix = f"--to {earlier[1]}, the update it rolled back to" if earlier else "another version with --to"
        raise RollbackRefused(
            f"--to {chosen['version']}: the update ran from a dirty work tree at {commit[:12]}, so that commit is "
            f"not what was deployed (fix: choose {fix})"
        )
    return RollbackPlan(
        version=chosen["version"],
        commit=commit,
        started=str(chosen.get("startTime", "")),
        result=str(chosen.get("result", "")),
        message=str(chosen.get("message", "")),
        config=chosen.get("config") or {},
    )


def history_rows(history: Sequence[Mapping[str, Any]]) -> list[str]:
    """The stack's updates, newest first, one line each: version, time, result, commit, dirty flag."""
    rows = []
    for update in _updates(history):
        environment = update.get("environment") or {}
        commit = str(environment.get("git.head", ""))[:12] or "(no commit)"
        dirty = " dirty" if _dirty(environment) else ""
        started = str(update.get("startTime", ""))
        rows.append(f"{update['version']:>5}  {started:<24}  {update.get('result', ''):<10}  {commit}{dirty}")
    return rows


def config_lines(config: Mapping[str, Any]) -> list[str]:
    """The recorded config as ``key: value`` lines, secrets as ``[secret]`` (never their value)."""
    lines = []
    for key in sorted(config):
        entry = config[key] or {}
        if entry.get("secret"):
            shown = "[secret]"
        elif "objectValue" in entry:
            shown = json.dumps(entry["objectValue"], sort_keys=True)
        else:
            shown = str(entry.get("value", ""))
        lines.append(f"  {key}: {shown}")
    return lines


# Counters a rollback keeps at the stack's newest value: they only go up, since a lower one
# would generate a new password for the login the instances use (docs/operations.md "Secrets").
KEPT_COUNTERS = (("swipesavvy:database", "credentialRotation"), ("swipesavvy:backend", "apiTokenRotation"))


def newest_config(history: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    """The config recorded with the stack's newest update (what it runs with now)."""
    updates = _updates(history)
    return (updates[0].get("config") or {}) if updates else {}


def keep_counters(config: dict[str, Any], newest: Mapping[str, Any]) -> list[str]:
    """Set in ``config`` (a settings file's, objects as objects) each of ``KEPT_COUNTERS`` that
    it holds to its value in ``newest`` (recorded config) where that is higher; the changed
    settings as ``section.key: old -> new``. A section without the counter is left alone: the
    earlier program may not know the setting."""
    changed = []
    for section, key in KEPT_COUNTERS:
        target = config.get(section)
        now = ((newest.get(section) or {}).get("objectValue") or {}).get(key)
        if isinstance(target, dict) and key in target and isinstance(now, int) and now > target[key]:
            changed.append(f"{section}.{key}: {target[key]} -> {now}")
            config[section] = {**target, key: now}
    return changed


def rollback_settings(plan: RollbackPlan, committed: Mapping[str, Any] | None, stack: str) -> dict[str, Any]:
    """The stack settings file the rollback deploys with: the recorded config of ``plan``'s update.

    ``committed`` is ``Pulumi.<stack>.yaml`` as it is at the recorded commit (parsed). Its
    top-level settings (secrets provider, encryption salt) are kept, its ``config`` replaced by
    the recorded one: plain values as recorded (objects as objects), secrets as the commit's
    ciphertext, since ``stack history --show-secrets=false`` records only that a key was
    secret. A recorded secret the commit's file does not hold cannot be recovered: refused.
    """
    if not isinstance(committed or {}, Mapping) or not isinstance((committed or {}).get("config") or {}, Mapping):
        raise RollbackRefused(
            f"--to {plan.version}: Pulumi.{stack}.yaml at {plan.commit[:12]} is not a mapping with a config: mapping, "
            "so its secrets cannot be recovered (fix: choose another version with --to)"
        )
    committed = dict(committed or {})
    committed_config = committed.get("config") or {}
    config: dict[str, Any] = {}
    for key in sorted(plan.config):
        entry = plan.config[key] or {}
        if entry.get("secret"):
            held = committed_config.get(key)
            if not (isinstance(held, Mapping) and "secure" in held):
                raise RollbackRefused(
                    f"--to {plan.version}: the update's secret {key} is not in Pulumi.{stack}.yaml at "
                    f"{plan.commit[:12]}, so its value cannot be recovered (fix: choose another version with --to, "
                    "or redeploy by hand as docs/operations.md 'Rolling back' says)"
                )
            config[key] = dict(held)
        elif "objectValue" in entry:
            config[key] = entry["objectValue"]
        else:
            config[key] = str(entry.get("value", ""))
    return {**committed, "config": config}
