"""``python -m ops drift``: what changed outside the stack, read from ``pulumi preview --refresh --json``.

Pure logic, no Pulumi, no I/O. The preview's JSON is Pulumi's ``PreviewDigest``
(pulumi/pulumi ``sdk/pkg/display/json.go``, filled in by ``pkg/backend/display/json.go``
``ShowPreviewDigest``): ``steps``, each with ``op``, ``urn``, ``oldState``/``newState``
(``apitype.ResourceV3``: ``type``, ``inputs``, ``outputs``), ``diffReasons`` (changed top-level
keys), ``detailedDiff`` (``{path: {"kind": "update"|"add"|"delete"[-replace], "inputDiff": bool}}``,
or null when the provider gave none) and ``changeSummary`` (``{op: count}``). Secret values are
already ``[secret]`` there (``MassageSecrets``); a secret envelope (the ``4dabf181...`` signature
key, as state exports hold them) is masked the same way here, so no secret reaches a line.

With ``--refresh`` the old state is what AWS, Datadog and the database hold now and the new
state what the program declares, so every step that would change something is drift: a
property changed by hand (``update``/``replace``), a resource deleted by hand (``create``).
Steps that change nothing are ``same``, ``read*`` (as Pulumi's ``ResourceChanges.HasChanges``
counts them) and ``refresh`` (the reading itself).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

SECRET_SIGNATURE = "4dabf18193072939515e22adb298388d"  # resource.SigKey: {SIG: "1b47061264138c4ac30d75fd1eb44270", ...}
MASKED = "[secret]"
ABSENT = "(absent)"
NO_CHANGE_OPS = frozenset({"same", "read", "read-discard", "read-replacement", "refresh"})
REPLACE_OPS = frozenset({"replace", "create-replacement", "delete-replaced", "discard-replaced"})
STACK_TYPE = "pulumi:pulumi:Stack"
HIDDEN_INPUTS = frozenset({"__provider"})  # a dynamic provider's pickled code: not a setting
FLAG_SETTINGS_TYPE = "pulumi-python:dynamic/db:FeatureFlagSettings"
FLAG_CONFIG_NAMES = {"enabled": "enabled", "rollout_percentage": "rolloutPercentage"}  # input -> featureFlags key
SHOWN_CHARS = 120  # longer values (queries, messages) are cut: the line stays readable
SYMBOLS = {"update": "~", "replace": "+-", "create": "+", "delete": "-"}


@dataclass(frozen=True)
class DriftedProperty:
    path: str  # Pulumi property path: flags.community_feed.enabled, monitorThresholds.critical
    found: str  # what the cloud or database holds (JSON text, secrets masked), or ABSENT
    declared: str  # what the program declares


@dataclass(frozen=True)
class DriftedResource:
    urn: str
    type: str
    name: str
    op: str  # what `pulumi up` would do: update, replace, create, delete
    properties: tuple[DriftedProperty, ...] = ()


@dataclass(frozen=True)
class DriftReport:
    stack: str  # as given to --stack (may be org/name)
    resources: tuple[DriftedResource, ...]
    unchanged: int  # resources the refresh found as declared
    failed_checks: tuple[tuple[str, str], ...] = ()  # (name, detail) of `verify` checks that failed
    notes: tuple[str, ...] = ()  # what was not checked, and why

    @property
    def drifted(self) -> bool:
        return bool(self.resources or self.failed_checks)

    @property
    def short_name(self) -> str:
        """The stack without its organization: the issue title and Pulumi.<name>.yaml use it."""
        return self.stack.rsplit("/", 1)[-1]


# --- reading the preview ----------------------------------------------------------------------


def masked(value: Any) -> Any:
    """``value`` with every secret envelope replaced by ``[secret]``."""
    if isinstance(value, Mapping):
        if SECRET_SIGNATURE in value:
            return MASKED
        return {k: masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [masked(v) for v in value]
    return value


def shown(value: Any) -> str:
    """One line for a property value: JSON text (secrets masked), cut at SHOWN_CHARS."""
    text = json.dumps(masked(value), sort_keys=True, ensure_ascii=False)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"


_SEGMENT = re.compile(r'\.?([^.\[\]"]+)|\[(\d+)\]|\["((?:[^"\\]|\\.)*)"\]')


def path_segments(path: str) -> list[str | int]:
    """A Pulumi property path as keys and indexes: ``a.b[0]["c.d"]`` -> ``["a", "b", 0, "c.d"]``."""
    segments: list[str | int] = []
    for name, index, quoted in _SEGMENT.findall(path):
        segments.append(int(index) if index else (json.loads(f'"{quoted}"') if quoted else name))
    return segments


def value_at(root: Any, path: str) -> tuple[bool, Any]:
    """``(True, value)`` at ``path`` in ``root``, ``(False, None)`` when it is not there."""
    value = root
    for segment in path_segments(path):
        in_list = isinstance(segment, int) and isinstance(value, list) and segment < len(value)
        in_object = isinstance(segment, str) and isinstance(value, Mapping) and segment in value
        if not (in_list or in_object):
            return False, None
        value = value[segment]
    return True, value


def _join(prefix: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{prefix}[{key}]"
    if re.fullmatch(r'[^.\[\]"]+', key):
        return f"{prefix}.{key}" if prefix else key
    return f"{prefix}[{json.dumps(key)}]"


def changed_paths(old: Any, new: Any, prefix: str = "") -> Iterator[str]:
    """The paths of the leaves that differ between ``old`` and ``new`` (objects by key, lists by index)."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        for key in sorted(set(old) | set(new)):
            if not prefix and key in HIDDEN_INPUTS:
                continue
            if key not in old or key not in new:
                yield _join(prefix, key)
            else:
                yield from changed_paths(old[key], new[key], _join(prefix, key))
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for index, (a, b) in enumerate(zip(old, new, strict=True)):
            yield from changed_paths(a, b, _join(prefix, index))
    elif old != new:
        yield prefix


def _state(step: Mapping[str, Any], which: str, part: str) -> Mapping[str, Any]:
    return (step.get(which) or {}).get(part) or {}


def _property(step: Mapping[str, Any], path: str, from_inputs: bool) -> DriftedProperty:
    """Found: the refreshed state's outputs (its inputs for an input diff); declared: the new inputs."""
    old_inputs, old_outputs = _state(step, "oldState", "inputs"), _state(step, "oldState", "outputs")
    found_in_outputs, found = (False, None) if from_inputs else value_at(old_outputs, path)
    if not found_in_outputs:
        found_in_outputs, found = value_at(old_inputs, path)
    has_declared, declared = value_at(_state(step, "newState", "inputs"), path)
    return DriftedProperty(
        path, shown(found) if found_in_outputs else ABSENT, shown(declared) if has_declared else ABSENT
    )


def step_properties(step: Mapping[str, Any]) -> list[DriftedProperty]:
    """What differs, by the most precise account the step has: the provider's detailed diff,
    else the leaves under its diff reasons, else (dynamic providers give neither) the leaves
    that differ between the refreshed inputs and the declared ones."""
    detailed = step.get("detailedDiff") or {}
    if detailed:
        return [_property(step, path, bool(diff.get("inputDiff"))) for path, diff in sorted(detailed.items())]
    old_inputs, new_inputs = _state(step, "oldState", "inputs"), _state(step, "newState", "inputs")
    reasons = [k for k in step.get("diffReasons") or [] if k not in HIDDEN_INPUTS]
    if reasons:
        paths = [p for key in reasons for p in changed_paths(old_inputs.get(key), new_inputs.get(key), key)]
    else:
        paths = list(changed_paths(old_inputs, new_inputs))
    return [_property(step, path, True) for path in paths]


def _urn_parts(urn: str) -> tuple[str, str]:
    """(type, name) from ``urn:pulumi:<stack>::<project>::<parent types$>type::name``."""
    parts = urn.split("::")
    return (parts[2].rsplit("$", 1)[-1], parts[3]) if len(parts) >= 4 else ("", urn)


def drifted_resources(digest: Mapping[str, Any]) -> list[DriftedResource]:
    """Each resource a step would change, once (a replacement's several steps are one), in step order."""
    steps: dict[str, list[Mapping[str, Any]]] = {}
    for step in digest.get("steps") or []:
        urn = step.get("urn", "")
        if step.get("op") in NO_CHANGE_OPS or _urn_parts(urn)[0] == STACK_TYPE:
            continue
        steps.setdefault(urn, []).append(step)
    resources = []
    for urn, group in steps.items():
        ops = {s["op"] for s in group}
        op = "replace" if ops & REPLACE_OPS else group[0]["op"]
        main = next((s for s in group if s["op"] in ("update", "replace")), group[0])
        properties = tuple(step_properties(main)) if op in ("update", "replace") else ()
        resources.append(DriftedResource(urn, *_urn_parts(urn), op=op, properties=properties))
    return resources


def unchanged_count(digest: Mapping[str, Any]) -> int:
    return int((digest.get("changeSummary") or {}).get("same", 0))


# --- the report as lines, and as a GitHub issue ---------------------------------------------------


def _what(resource: DriftedResource) -> str:
    return {
        "create": "is missing: deleted outside the stack (pulumi up creates it again)",
        "delete": "is in the stack's state but no longer declared (pulumi up deletes it)",
    }.get(resource.op, f"{resource.op} (no property detail in the preview)")


def drift_lines(report: DriftReport) -> list[str]:
    """One line per drifted property (per resource when the preview names none), then failed checks."""
    lines = []
    for resource in report.resources:
        head = f"{SYMBOLS.get(resource.op, '~')} {resource.name} [{resource.type}]"
        if not resource.properties:
            lines.append(f"{head} {_what(resource)}")
        for prop in resource.properties:
            lines.append(f"{head} {prop.path}: {prop.found} (declared {prop.declared})")
    lines += [f"✗ database check {name}: {detail}" for name, detail in report.failed_checks]
    return lines


def summary_line(report: DriftReport) -> str:
    if not report.drifted:
        return f"stack {report.stack}: no drift ({report.unchanged} resources as declared)"
    parts = [f"{len(report.resources)} resource(s) differ from the program"] if report.resources else []
    parts += [f"{len(report.failed_checks)} database check(s) failed"] if report.failed_checks else []
    return f"stack {report.stack}: drift: {', '.join(parts)}"


def restore_command(stack: str) -> str:
    return f"pulumi up --stack {stack}"


def adopt_commands(report: DriftReport) -> list[str]:
    """The exact ``pulumi config set`` for drift the stack file declares one to one (flag states)."""
    commands = []
    for resource in report.resources:
        if resource.type != FLAG_SETTINGS_TYPE:
            continue
        for prop in resource.properties:
            segments = path_segments(prop.path)
            if len(segments) == 3 and segments[0] == "flags" and segments[2] in FLAG_CONFIG_NAMES:
                key = f"swipesavvy:featureFlags.{segments[1]}.{FLAG_CONFIG_NAMES[segments[2]]}"
                commands.append(f"pulumi config set --path '{key}' {prop.found} --stack {report.stack}")
    return commands


def issue_title(stack: str) -> str:
    return f"Drift in {stack.rsplit('/', 1)[-1]}"


def _cell(text: str) -> str:
    """A Markdown table cell holding ``text`` as code (pipes escaped, as GFM tables need)."""
    return "`" + text.replace("`", "'").replace("|", "\\|") + "`"


def issue_body(report: DriftReport) -> str:
    """The issue a drift run opens or updates: what differs, then how to restore or adopt it."""
    stack, name = report.stack, report.short_name
    lines = [
        f"`python -m ops drift --stack {stack}` found that stack `{name}` no longer matches what it declares.",
        "",
    ]
    if report.resources:
        lines += ["| resource | type | property | found | declared |", "| --- | --- | --- | --- | --- |"]
        for resource in report.resources:
            for prop in resource.properties:
                lines.append(
                    f"| {_cell(resource.name)} | {_cell(resource.type)} | {_cell(prop.path)} "
                    f"| {_cell(prop.found)} | {_cell(prop.declared)} |"
                )
            if not resource.properties:
                lines.append(f"| {_cell(resource.name)} | {_cell(resource.type)} | | {_what(resource)} | |")
        lines.append("")
    if report.failed_checks:
        lines += [f"Database checks that failed (`python -m ops verify --stack {stack}`):", ""]
        lines += [f"- {_cell(check)}: {_cell(detail)}" for check, detail in report.failed_checks]
        lines.append("")
    if report.notes:
        lines += [f"Not checked: {note}" for note in report.notes] + [""]
    lines += [
        "**Restore** what the stack declares (a merge to main deploys the same):",
        "",
        "```",
        restore_command(stack),
        "```",
        "",
        f"**Or adopt** the change: make `Pulumi.{name}.yaml` (or the program) declare what was found, in a "
        "pull request; its preview then shows no change for these resources.",
    ]
    adopt = adopt_commands(report)
    if adopt:
        lines += ["", "```", *adopt, "```"]
    lines += ["", "This issue is updated by every drift run that finds drift and closed by the first clean one."]
    return "\n".join(lines) + "\n"


def report_document(report: DriftReport) -> dict[str, Any]:
    """``--json``: the report, its lines and the issue a workflow files from it."""
    return {
        "stack": report.stack,
        "drift": report.drifted,
        "unchanged": report.unchanged,
        "resources": [
            {
                "urn": r.urn,
                "type": r.type,
                "name": r.name,
                "op": r.op,
                "properties": [{"path": p.path, "found": p.found, "declared": p.declared} for p in r.properties],
            }
            for r in report.resources
        ],
        "failed_checks": [{"name": n, "detail": d} for n, d in report.failed_checks],
        "notes": list(report.notes),
        "lines": drift_lines(report),
        "issue": {"title": issue_title(report.stack), "body": issue_body(report)},
    }


def preview_failed(digest: Mapping[str, Any] | None) -> list[str]:
    """The preview's own error diagnostics, first line each without the ``error:`` prefix."""
    diagnostics = (digest or {}).get("diagnostics") or []
    messages = [(d.get("message") or "").strip() for d in diagnostics if d.get("severity") == "error"]
    return [m.splitlines()[0].removeprefix("error:").strip() for m in messages if m]
