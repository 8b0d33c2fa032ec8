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

import dataclasses
import http.client
import json
import math
import shlex
import time
import urllib.error
import urllib.parse
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
API_TOKEN_ENV, ADMIN_TOKEN_ENV = "SWIPESAVVY_API_TOKEN", "SWIPESAVVY_ADMIN_TOKEN"
RESTORE_ATTEMPTS = 3  # a restore is idempotent (it sets a state): retried when the answer is not a clear one
RESTORE_RETRY_DELAY_S = 0.5
URL_SCHEMES = ("http", "https")


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
    error: str | None = None  # set: the answer is not usable (no answer, a broken one, the wrong content)
    request: str = ""  # "GET https://...": named in every failure

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.error is None

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except (ValueError, RecursionError):
            return None


@dataclass(frozen=True)
class SmokeResult:
    name: str
    passed: bool
    figure: str  # what was measured: a latency, a count
    detail: str


class CheckFailed(Exception):
    """Ends one check with this one-line detail."""


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be smoke-tested (not http/https, no host, a bad port, credentials in
    it: they would be printed with every failure); None when it can."""
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError for a port that is not one)
    except ValueError:
        return repr(url)
    if parts.username is not None or parts.password is not None:
        return "with a user or password"
    if parts.scheme not in URL_SCHEMES or not parts.hostname:
        return repr(url)
    return None


class RedirectRefused(Exception):
    """A redirect that would carry the bearer token to another host (or over plain HTTP)."""


def _origin(url: str) -> tuple[str, str | None, int | None]:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme, parts.hostname, parts.port or {"http": 80, "https": 443}.get(parts.scheme)


class _TokenStaysHome(urllib.request.HTTPRedirectHandler):
    """urllib follows redirects with every header, the token included, wherever they lead: a
    request with a token follows one only to its own scheme, host and port, or from http to
    https on the same host; anything else is refused (and no request goes to a non-HTTP URL)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        (scheme, host, port), (new_scheme, new_host, new_port) = _origin(req.full_url), _origin(newurl)
        same = (new_scheme, new_host, new_port) == (scheme, host, port)
        upgrade = (scheme, new_scheme, new_host) == ("http", "https", host)
        if new_scheme not in URL_SCHEMES or (req.has_header("Authorization") and not (same or upgrade)):
            fp.close()
            raise RedirectRefused(newurl)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class Http:
    """The API and the site over HTTP; never raises for a network or HTTP failure."""

    def __init__(self, api_url: str, site_url: str, token: str, admin_token: str, timeout_s: float):
        self.api_url, self.site_url = api_url.rstrip("/"), site_url
        self.token, self.admin_token, self.timeout_s = token, admin_token, timeout_s
        self.opener = urllib.request.build_opener(_TokenStaysHome)

    def url(self, path: str) -> str:
        # api_url ends in /api (the stack's output), the runbook's paths start with it.
        return self.api_url.removesuffix("/api") + path

    def api(self, method: str, path: str, body: Any = None, *, admin: bool = False) -> Answer:
        return self.fetch(method, self.url(path), body, self.admin_token if admin else self.token)

    def site(self) -> Answer:
        return self.fetch("GET", self.site_url, None, None)

    def fetch(self, method: str, url: str, body: Any, token: str | None) -> Answer:
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"  # pragma: no mutate (urllib capitalizes header names)
        data = None if body is None else json.dumps(body).encode()
        if data is not None:
            headers["Content-Type"] = "application/json"  # pragma: no mutate (urllib capitalizes header names)
        label = f"{method} {url}"
        started = time.perf_counter()
        status = None
        try:
            request = urllib.request.Request(url, data=data, headers=headers, method=method)
            try:
                response = self.opener.open(request, timeout=self.timeout_s)
            except urllib.error.HTTPError as error:  # 4xx/5xx: an answer all the same
                response = error
            with response:
                status = response.status
                return Answer(status, response.read(), _ms_since(started), request=label)
        except RedirectRefused as error:
            reason = f"redirected to {error}: not followed (a token goes only to the scheme, host and port given)"
        except (OSError, http.client.HTTPException, ValueError) as error:  # every way a request fails: _failure
            reason = self._failure(error)
        return Answer(status, b"", _ms_since(started), reason, label)

    def _failure(self, error: Exception) -> str:
        # pragma: no mutate start (a URLError always has a reason: getattr's default is never used)
        reason = getattr(error, "reason", error) if isinstance(error, urllib.error.URLError) else error
        # pragma: no mutate end
        if isinstance(reason, TimeoutError):
            return f"no answer within {self.timeout_s:g} s"
        if isinstance(reason, http.client.IncompleteRead):
            expected = len(reason.partial) + reason.expected if reason.expected is not None else "?"
            return f"answer cut short ({len(reason.partial)} of {expected} bytes)"
        if isinstance(reason, http.client.RemoteDisconnected):
            return "no answer: the server closed the connection"
        if isinstance(reason, http.client.BadStatusLine):
            return f"not an HTTP answer (status line {str(reason.line).strip()[:60]!r})"
        if isinstance(reason, (http.client.HTTPException, ValueError)):
            return f"not a valid HTTP answer ({type(reason).__name__}: {str(reason)[:80]})"
        return f"no answer: {reason}"


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
    failed = [a for a in answers if not a.ok]
    timings = [a.ms for a in answers if a.ok]
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
    """What came back, with the request it answered: ``GET https://.../api/health: HTTP 503``."""
    outcome = answer.error or (f"HTTP {answer.status}" if answer.status is not None else "no answer")
    return f"{answer.request}: {outcome}" if answer.request else outcome


def flag_states(answer: Answer) -> dict[str, tuple[bool, int]]:
    """``{key: (enabled, rollout_percentage)}`` from ``/api/features/all``, each of the type the
    API promises (never coerced: "false" is not false); CheckFailed otherwise."""
    expect_status(answer, 200)
    flags = answer.json()
    if not isinstance(flags, list) or not all(isinstance(f, dict) and isinstance(f.get("key"), str) for f in flags):
        raise CheckFailed(f"{answer.request}: not a JSON array of flags (key, enabled, rollout_percentage)")
    states = {}
    for flag in flags:
        key, enabled, percentage = flag["key"], flag.get("enabled"), flag.get("rollout_percentage")
        if not isinstance(enabled, bool):
            raise CheckFailed(f"{answer.request}: flag {key} has enabled {_shown(enabled)}, expected true or false")
        if isinstance(percentage, bool) or not isinstance(percentage, int) or not 0 <= percentage <= 100:
            raise CheckFailed(
                f"{answer.request}: flag {key} has rollout_percentage {_shown(percentage)}, "
                "expected an integer from 0 to 100"
            )
        states[key] = (enabled, percentage)
    return states


def _shown(value: Any) -> str:
    return json.dumps(value)[:40]


def expect_status(answer: Answer, *statuses: int) -> None:
    if answer.error or answer.status not in statuses:
        raise CheckFailed(f"{describe(answer)}, expected {' or '.join(map(str, statuses))}")


def expect_json_array(answer: Answer) -> Answer:
    """``answer``, marked failed when it is a 200 whose body is not a JSON array (an HTML page)."""
    if answer.ok and not isinstance(answer.json(), list):
        return dataclasses.replace(answer, error="HTTP 200 but the body is not a JSON array")
    return answer


def state_text(enabled: bool, percentage: int) -> str:
    return f"{'on' if enabled else 'off'} at {percentage}%"


# --- undoing admin changes ---------------------------------------------------------------------


@dataclass
class Undo:
    """Admin changes to take back, newest first; each registered before its request is sent
    (a timed-out request may still have been applied, and restoring is idempotent). A change
    leaves ``pending`` only when the API confirmed its restore (HTTP 200, read in full) or
    gave up on it (then it is in ``not_restored``): an interrupt never loses one."""

    http: Http
    pending: list[tuple[str, str, dict]] = field(default_factory=list)  # (what, path, body)
    not_restored: list[str] = field(default_factory=list)

    def register(self, what: str, path: str, body: dict) -> None:
        self.pending.append((what, path, body))

    def restore_last(self) -> Answer:
        what, path, body = self.pending[-1]
        for attempt in range(1, RESTORE_ATTEMPTS + 1):  # pragma: no mutate (the last attempt breaks out)
            answer = self.http.api("POST", path, body, admin=True)
            refused = answer.error is None and answer.status is not None and 400 <= answer.status < 500
            if answer.ok or refused or attempt == RESTORE_ATTEMPTS:
                break
            time.sleep(RESTORE_RETRY_DELAY_S * attempt)
        if not answer.ok:
            tries = f", {attempt} attempts" if attempt > 1 else ""
            self.not_restored.append(f"{what} ({describe(answer)}{tries}; fix: {self.fix(path, body)})")
        self.pending.pop()
        return answer

    def restore_all(self) -> None:
        while self.pending:
            self.restore_last()

    def fix(self, path: str, body: dict) -> str:
        """The request that restores a change, to paste into a shell."""
        return (
            f"curl -X POST -H \"Authorization: Bearer ${ADMIN_TOKEN_ENV}\" -H 'Content-Type: application/json' "
            f"-d {shlex.quote(json.dumps(body))} {shlex.quote(self.http.url(path))}"
        )

    def left_in_place(self) -> list[str]:
        """Every change not confirmed restored: given up on, or still pending (interrupted)."""
        unconfirmed = [
            f"{what} (interrupted before the API confirmed it; fix: {self.fix(path, body)})"
            for what, path, body in reversed(self.pending)
        ]
        return self.not_restored + unconfirmed


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
    if answer.error is None and answer.status is not None and 400 <= answer.status < 500:
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
    """Timed ``send`` calls against ``targets``; an answer counts when ``send`` found it ok."""

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
            lambda http: expect_json_array(http.api("GET", "/api/features/all")),
            {95: API_P95_TARGET_MS, 99: API_P99_TARGET_MS},
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
    if initial.ok:
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
