"""The runbook's smoke tests (phase 7, and 5.1-5.4 from the outside) against a running API and site.

Each check is a small function over an ``Http`` session that returns one ``SmokeResult``
(a mark, a figure, a detail); ``run_smoke`` runs them all, never stopping at the first
failure. Admin changes (a flag toggle, a rollout) are undone by ``Undo`` in a ``finally``,
so they are restored when a check fails, a request times out or the run is interrupted;
what could not be restored is named, with the request that restores it.

The endpoints (shared/reference/facts.md), as this module reads them:
- ``GET /api/health`` -> ``{"status": "healthy", "service": "swipesavvy-backend"}``
- ``GET /api/features/all`` -> a JSON array of the 10 flags, each ``{"key", "enabled",
  "rollout_percentage", ...}``
- ``GET /api/analytics/campaign/{id}/metrics`` -> 200 with JSON, or 404 without data
- ``POST /api/export`` ``{"format": "json"}`` -> 200 with JSON
- admin token: ``POST /api/features/{key}/toggle`` ``{"enabled": bool}``, ``POST
  /api/features/{key}/rollout`` ``{"percentage": n}``, ``GET /api/features/audit-log`` -> a
  JSON array of entries, each naming its flag in ``flag_key``
- the site's page contains "Reporting Dashboard".

Plain urllib and threads, no Pulumi.
"""

from __future__ import annotations

import json
import math
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

SERVICE = "swipesavvy-backend"
DASHBOARD_TEXT = "Reporting Dashboard"
FLAG_COUNT = 10
TOGGLE_FLAG = "tier_progress_bar"  # the flags the runbook's admin tests (7.3) change
ROLLOUT_FLAG = "community_feed"
ROLLOUT_PERCENTAGE = 25
CAMPAIGN_ID = 1
API_P95_TARGET_MS = 300.0  # "API response < 300 ms"
API_P99_TARGET_MS = 500.0  # the "API latency > 500 ms" alert
SITE_P95_TARGET_MS = 500.0  # "Frontend load < 500 ms"


@dataclass(frozen=True)
class Limits:
    requests: int = 50  # per latency check
    concurrency: int = 5
    timeout_s: float = 10.0  # per request


@dataclass(frozen=True)
class Answer:
    status: int | None  # None: no HTTP answer at all (see error)
    body: bytes
    ms: float
    error: str | None = None

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


@dataclass(frozen=True)
class SmokeResult:
    name: str
    passed: bool
    figure: str  # what was measured: a latency, a count
    detail: str


class CheckFailed(Exception):
    """Ends one check with this one-line detail."""


class Http:
    """The API and the site over HTTP; never raises for a network or HTTP failure."""

    def __init__(self, api_url: str, site_url: str, token: str, admin_token: str, timeout_s: float):
        self.api_url, self.site_url = api_url.rstrip("/"), site_url
        self.token, self.admin_token, self.timeout_s = token, admin_token, timeout_s

    def api(self, method: str, path: str, body: Any = None, *, admin: bool = False) -> Answer:
        # api_url ends in /api (the stack's output), the runbook's paths start with it.
        url = self.api_url.removesuffix("/api") + path
        return self.fetch(method, url, body, self.admin_token if admin else self.token)

    def site(self) -> Answer:
        return self.fetch("GET", self.site_url, None, None)

    def fetch(self, method: str, url: str, body: Any, token: str | None) -> Answer:
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = None if body is None else json.dumps(body).encode()
        if data is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return Answer(response.status, response.read(), _ms_since(started))
        except urllib.error.HTTPError as error:
            return Answer(error.code, error.read(), _ms_since(started))
        except TimeoutError:
            return Answer(None, b"", _ms_since(started), f"no answer within {self.timeout_s:g} s")
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            if isinstance(reason, TimeoutError):
                return Answer(None, b"", _ms_since(started), f"no answer within {self.timeout_s:g} s")
            return Answer(None, b"", _ms_since(started), f"no answer: {reason}")


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


# --- pure: figures and verdicts ----------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """The nearest-rank p-th percentile (p in 0..100): a value that was really measured."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def latency_verdict(answers: Sequence[Answer], targets: dict[int, float]) -> tuple[bool, str, str]:
    """(passed, figure, detail) for timed requests against ``{percentile: max ms}``."""
    failed = [a for a in answers if a.status != 200]
    timings = [a.ms for a in answers if a.status == 200]
    if not timings:
        return False, "-", f"all {len(answers)} requests failed: {describe(failed[0])}"
    figures = {p: percentile(timings, p) for p in (50, 95, 99)}
    misses = [f"p{p} {figures[p]:.0f} ms > {limit:g} ms" for p, limit in targets.items() if figures[p] > limit]
    detail = f"p50 {figures[50]:.0f} / p95 {figures[95]:.0f} / p99 {figures[99]:.0f} ms over {len(answers)} requests"
    if failed:
        misses.append(f"{len(failed)} of {len(answers)} failed ({describe(failed[0])})")
    detail += "; " + "; ".join(misses) if misses else f" (targets: {_targets(targets)})"
    figure = f"{figures[max(targets)]:.0f} ms"
    return not misses, figure, detail


def _targets(targets: dict[int, float]) -> str:
    return ", ".join(f"p{p} <= {limit:g} ms" for p, limit in targets.items())


def describe(answer: Answer) -> str:
    if answer.status is None:
        return answer.error or "no answer"
    return f"HTTP {answer.status}"


def flag_states(answer: Answer) -> dict[str, tuple[bool, int]]:
    """``{key: (enabled, rollout_percentage)}`` from ``/api/features/all``; CheckFailed otherwise."""
    expect_status(answer, 200)
    flags = answer.json()
    try:
        return {flag["key"]: (bool(flag["enabled"]), int(flag["rollout_percentage"])) for flag in flags}
    except (TypeError, KeyError, ValueError):
        raise CheckFailed("/api/features/all is not a JSON array of flags (key, enabled, rollout_percentage)") from None


def expect_status(answer: Answer, *statuses: int) -> None:
    if answer.status not in statuses:
        raise CheckFailed(f"{describe(answer)}, expected {' or '.join(map(str, statuses))}")


def state_text(enabled: bool, percentage: int) -> str:
    return f"{'on' if enabled else 'off'} at {percentage}%"


# --- undoing admin changes ---------------------------------------------------------------------


@dataclass
class Undo:
    """Admin changes to take back, newest first; each registered before its request is sent
    (a timed-out request may still have been applied, and restoring is idempotent)."""

    http: Http
    pending: list[tuple[str, str, dict]] = field(default_factory=list)  # (what, path, body)
    not_restored: list[str] = field(default_factory=list)

    def register(self, what: str, path: str, body: dict) -> None:
        self.pending.append((what, path, body))

    def restore_last(self) -> Answer:
        what, path, body = self.pending.pop()
        answer = self.http.api("POST", path, body, admin=True)
        if answer.status != 200:
            self.not_restored.append(f"{what} ({describe(answer)}; fix: POST {path} {json.dumps(body)})")
        return answer

    def restore_all(self) -> None:
        while self.pending:
            self.restore_last()


# --- the checks --------------------------------------------------------------------------------

Check = Callable[[Http, Undo, Limits], tuple[str, str]]  # -> (figure, detail), or CheckFailed


def check_health(http: Http, _undo: Undo, _limits: Limits) -> tuple[str, str]:
    answer = http.api("GET", "/api/health")
    expect_status(answer, 200)
    body = answer.json()
    if not isinstance(body, dict) or body.get("status") != "healthy" or body.get("service") != SERVICE:
        raise CheckFailed(f"body {answer.body[:120].decode(errors='replace')!r}, expected status healthy, {SERVICE}")
    return f"{answer.ms:.0f} ms", f"healthy, {SERVICE}"


def check_flags(http: Http, _undo: Undo, _limits: Limits) -> tuple[str, str]:
    answer = http.api("GET", "/api/features/all")
    flags = flag_states(answer)
    if len(flags) != FLAG_COUNT:
        raise CheckFailed(f"{len(flags)} flags, expected {FLAG_COUNT}")
    return f"{answer.ms:.0f} ms", f"{len(flags)} flags"


def check_campaign_metrics(http: Http, _undo: Undo, _limits: Limits) -> tuple[str, str]:
    answer = http.api("GET", f"/api/analytics/campaign/{CAMPAIGN_ID}/metrics")
    expect_status(answer, 200, 404)
    if answer.status == 200 and answer.json() is None:
        raise CheckFailed("HTTP 200 but the body is not JSON")
    return f"{answer.ms:.0f} ms", f"campaign {CAMPAIGN_ID}: " + ("metrics" if answer.status == 200 else "404, no data")


def check_export(http: Http, _undo: Undo, _limits: Limits) -> tuple[str, str]:
    answer = http.api("POST", "/api/export", {"format": "json"})
    expect_status(answer, 200)
    if answer.json() is None:
        raise CheckFailed("HTTP 200 but the body is not JSON")
    return f"{answer.ms:.0f} ms", f"json export, {len(answer.body):,} bytes"


def check_dashboard(http: Http, _undo: Undo, _limits: Limits) -> tuple[str, str]:
    answer = http.site()
    expect_status(answer, 200)
    if DASHBOARD_TEXT.encode() not in answer.body:
        raise CheckFailed(f"the page does not contain {DASHBOARD_TEXT!r}")
    return f"{answer.ms:.0f} ms", f"page contains {DASHBOARD_TEXT!r}"


def _change_flag(http: Http, undo: Undo, key: str, action: str, body: dict, restore: dict) -> dict:
    """Apply one admin change (undo registered first); the flags as they are after it."""
    path = f"/api/features/{key}/{action}"
    undo.register(f"{key} {action}", path, restore)
    answer = http.api("POST", path, body, admin=True)
    if answer.status is not None and 400 <= answer.status < 500:
        undo.pending.pop()  # refused: nothing changed, nothing to take back
    expect_status(answer, 200)
    return flag_states(http.api("GET", "/api/features/all"))


def _restore_flag(http: Http, undo: Undo, key: str, before: tuple[bool, int]) -> None:
    undo.restore_last()
    after = flag_states(http.api("GET", "/api/features/all")).get(key)
    if after != before:
        raise CheckFailed(
            f"{key} not restored: {state_text(*after) if after else 'missing'}, was {state_text(*before)}"
        )


def _audit_entries(http: Http, key: str) -> int:
    answer = http.api("GET", "/api/features/audit-log", admin=True)
    expect_status(answer, 200)
    entries = answer.json()
    if not isinstance(entries, list):
        raise CheckFailed("/api/features/audit-log is not a JSON array")
    return sum(1 for entry in entries if isinstance(entry, dict) and entry.get("flag_key") == key)


def check_admin_toggle(http: Http, undo: Undo, _limits: Limits) -> tuple[str, str]:
    """Runbook 7.3: toggle, see it in the flags and the audit log, toggle back."""
    started = time.perf_counter()
    before = flag_states(http.api("GET", "/api/features/all")).get(TOGGLE_FLAG)
    if before is None:
        raise CheckFailed(f"flag {TOGGLE_FLAG} not listed")
    entries = _audit_entries(http, TOGGLE_FLAG)
    toggled = not before[0]
    after = _change_flag(http, undo, TOGGLE_FLAG, "toggle", {"enabled": toggled}, {"enabled": before[0]})
    if after.get(TOGGLE_FLAG, (None,))[0] != toggled:
        raise CheckFailed(f"toggle answered 200 but {TOGGLE_FLAG} is still {'on' if before[0] else 'off'}")
    if _audit_entries(http, TOGGLE_FLAG) <= entries:
        raise CheckFailed(f"no new audit-log entry for {TOGGLE_FLAG} after the toggle")
    _restore_flag(http, undo, TOGGLE_FLAG, before)
    return f"{_ms_since(started):.0f} ms", f"{TOGGLE_FLAG} {'on' if toggled else 'off'}, audit entry, restored"


def check_admin_rollout(http: Http, undo: Undo, _limits: Limits) -> tuple[str, str]:
    """Runbook 7.3: set a rollout percentage, see it, set it back."""
    started = time.perf_counter()
    before = flag_states(http.api("GET", "/api/features/all")).get(ROLLOUT_FLAG)
    if before is None:
        raise CheckFailed(f"flag {ROLLOUT_FLAG} not listed")
    target = ROLLOUT_PERCENTAGE if before[1] != ROLLOUT_PERCENTAGE else ROLLOUT_PERCENTAGE * 2  # a real change
    after = _change_flag(http, undo, ROLLOUT_FLAG, "rollout", {"percentage": target}, {"percentage": before[1]})
    if after.get(ROLLOUT_FLAG, (None, None))[1] != target:
        raise CheckFailed(f"rollout answered 200 but {ROLLOUT_FLAG} is not at {target}%")
    _restore_flag(http, undo, ROLLOUT_FLAG, before)
    return f"{_ms_since(started):.0f} ms", f"{ROLLOUT_FLAG} {target}%, restored to {before[1]}%"


def timed_requests(send: Callable[[], Answer], limits: Limits) -> list[Answer]:
    """``limits.requests`` calls of ``send``, at most ``limits.concurrency`` at a time."""
    with ThreadPoolExecutor(max_workers=limits.concurrency) as pool:
        return list(pool.map(lambda _: send(), range(limits.requests)))


def _latency_check(send: Callable[[Http], Answer], targets: dict[int, float]) -> Check:
    def check(http: Http, _undo: Undo, limits: Limits) -> tuple[str, str]:
        passed, figure, detail = latency_verdict(timed_requests(lambda: send(http), limits), targets)
        if not passed:
            raise CheckFailed(detail)
        return figure, detail

    return check


CHECKS: tuple[tuple[str, Check], ...] = (
    ("health", check_health),
    ("feature_flags", check_flags),
    ("campaign_metrics", check_campaign_metrics),
    ("export", check_export),
    ("dashboard", check_dashboard),
    ("admin_toggle", check_admin_toggle),
    ("admin_rollout", check_admin_rollout),
    (
        "api_latency",
        _latency_check(
            lambda http: http.api("GET", "/api/features/all"), {95: API_P95_TARGET_MS, 99: API_P99_TARGET_MS}
        ),
    ),
    ("site_latency", _latency_check(lambda http: http.site(), {95: SITE_P95_TARGET_MS})),
)


def run_smoke(http: Http, limits: Limits, undo: Undo, checks=CHECKS) -> list[SmokeResult]:
    """Every check, in order; admin changes restored in the end whatever happened (``undo``
    then names what could not be). The last result compares all flags with how they were found."""
    results = []
    initial = http.api("GET", "/api/features/all")
    try:
        for name, check in checks:
            try:
                figure, detail = check(http, undo, limits)
                results.append(SmokeResult(name, True, figure, detail))
            except CheckFailed as failure:
                results.append(SmokeResult(name, False, "-", str(failure)))
    finally:
        undo.restore_all()
    if initial.status == 200:
        results.append(flags_unchanged(initial, http.api("GET", "/api/features/all")))
    return results


def flags_unchanged(initial: Answer, final: Answer) -> SmokeResult:
    try:
        before, after = flag_states(initial), flag_states(final)
    except CheckFailed as failure:
        return SmokeResult("flags_unchanged", False, "-", f"cannot read the flags after the run: {failure}")
    changed = [
        f"{key} {state_text(*after[key]) if key in after else 'missing'}, was {state_text(*state)}"
        for key, state in before.items()
        if after.get(key) != state
    ]
    if changed:
        return SmokeResult("flags_unchanged", False, f"{len(changed)}", "; ".join(changed))
    return SmokeResult("flags_unchanged", True, f"{len(before)}", "every flag as the run found it")
