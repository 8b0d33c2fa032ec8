"""``python -m ops smoke`` against tests/smoke_fixture.py: a healthy API, each way of being
broken in turn, a slow one, one that hangs and one that dies mid-run; admin changes are
always taken back. The percentile maths and the latency verdict are tested on their own.
"""

from __future__ import annotations

import io
import json
import re
import time
import urllib.request

import pytest
from smoke_fixture import ADMIN_TOKEN, FAILURES, TOKEN, SmokeFixture
from test_ops_stack_cli import STACK, one_line_error, pulumi, run  # noqa: F401  (pulumi: a fixture)

from ops import smoke, smoke_cli
from ops.cli import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_NOT_RESTORED, EXIT_OK, EXIT_USAGE
from ops.smoke import Answer, latency_verdict, percentile

CHECK_NAMES = [name for name, _ in smoke.CHECKS] + ["flags_unchanged"]
# Which checks each fixture failure must fail (and no others).
FAILED_CHECKS = {
    "health_body": ["health"],
    "flag_count": ["feature_flags"],
    "metrics_error": ["campaign_metrics"],
    "export_error": ["export"],
    "dashboard_text": ["dashboard"],
    "toggle_ignored": ["admin_toggle"],
    "no_audit": ["admin_toggle"],
    "rollout_refused": ["admin_rollout"],
    "slow_api": ["api_latency"],
}


def smoke_argv(fixture: SmokeFixture, *extra: str) -> list[str]:
    return [
        "smoke", "--api-url", f"{fixture.url}/api", "--site-url", f"{fixture.url}/",
        "--token", TOKEN, "--admin-token", ADMIN_TOKEN, "--requests", "20", *extra,
    ]  # fmt: skip


def marks(out: str) -> dict[str, bool]:
    """{check name: passed} from the printed checklist."""
    return {line.split()[1]: line.startswith("✓") for line in out.splitlines() if line[:1] in "✓✗"}


def restore_curl(fixture: SmokeFixture, key: str, action: str, body: str) -> str:
    return (
        f"curl -X POST -H \"Authorization: Bearer $SWIPESAVVY_ADMIN_TOKEN\" -H 'Content-Type: application/json' "
        f"-d '{body}' {fixture.url}/api/features/{key}/{action}"
    )


# --- pure: percentiles and the verdict --------------------------------------------------------


def test_percentile_is_nearest_rank():
    values = list(range(1, 101))  # 1..100 ms
    assert (percentile(values, 50), percentile(values, 95), percentile(values, 99)) == (50, 95, 99)
    assert percentile([7.0], 99) == 7.0
    assert percentile([30, 10, 20], 50) == 20  # order of arrival does not matter
    with pytest.raises(ValueError):
        percentile([], 50)


def test_latency_verdict_names_the_missed_target_and_failed_requests():
    fast = [Answer(200, b"", ms) for ms in range(1, 101)]
    assert latency_verdict(fast, {95: 300})[:2] == (True, "95 ms")
    slow = [Answer(200, b"", 310.0)] * 10
    passed, _, detail = latency_verdict(slow, {95: 300, 99: 500})
    assert not passed and "p95 310 ms > 300 ms" in detail and "p99" not in detail.split(";", 1)[1]
    broken = [*fast[:9], Answer(None, b"", 5.0, "no answer within 1 s")]
    passed, _, detail = latency_verdict(broken, {95: 300})
    assert not passed and "1 of 10 failed (no answer within 1 s)" in detail
    assert latency_verdict([Answer(503, b"", 1.0)], {95: 300})[:2] == (False, "-")


# --- against the fixture ------------------------------------------------------------------------


def test_a_healthy_deployment_passes_every_check_and_leaves_the_flags_as_found(capsys):
    with SmokeFixture() as fixture:
        before = fixture.state()
        code, out, err = run(capsys, *smoke_argv(fixture))
        assert fixture.state() == before
        assert [entry["action"] for entry in fixture.audit] == ["TOGGLE", "TOGGLE", "ROLLOUT", "ROLLOUT"]
    assert code == EXIT_OK, err
    assert marks(out) == dict.fromkeys(CHECK_NAMES, True)
    assert f"all {len(CHECK_NAMES)} checks passed on {fixture.url}/api" in out
    assert "p50 " in out and "p95 " in out and "p99 " in out


@pytest.mark.parametrize("failure", sorted(FAILED_CHECKS))
def test_each_injected_failure_is_named_and_the_flags_are_restored(capsys, failure):
    with SmokeFixture(failure) as fixture:
        before = fixture.state()
        code, out, err = run(capsys, *smoke_argv(fixture))
        assert fixture.state() == before, FAILURES[failure]
    assert code == EXIT_FAILED
    failed = [name for name, passed in marks(out).items() if not passed]
    assert failed == FAILED_CHECKS[failure]
    assert one_line_error(err, ADMIN_TOKEN) == f"error: smoke failed: {', '.join(failed)}"


def test_a_slow_api_fails_the_300_ms_target_with_its_figures(capsys):
    with SmokeFixture("slow_api") as fixture:
        code, out, _ = run(capsys, *smoke_argv(fixture, "--requests", "10"))
    latency = next(line for line in out.splitlines() if " api_latency " in line)
    # The fixture answers in about 350 ms; a busy machine only adds to that.
    figures = re.fullmatch(
        r"✗ api_latency +- +p50 (\d+) / p95 (\d+) / p99 (\d+) ms over 10 requests; p95 (\d+) ms > 300 ms", latency
    )
    assert code == EXIT_FAILED and figures, latency
    p50, p95, p99, reported = map(int, figures.groups())
    assert 300 < p50 <= p95 <= p99 and reported == p95


def test_a_hanging_api_times_out_cleanly(capsys):
    with SmokeFixture("hang", hang_s=2.0) as fixture:
        before = fixture.state()
        started = time.monotonic()
        code, out, err = run(capsys, *smoke_argv(fixture, "--timeout", "0.3", "--requests", "5"))
        elapsed = time.monotonic() - started
    assert code == EXIT_FAILED and elapsed < 15
    assert "no answer within 0.3 s" in out
    assert marks(out)["dashboard"] and marks(out)["site_latency"]  # the site is not the API
    assert fixture.state() == before
    assert one_line_error(err).startswith("error: smoke failed: health, feature_flags")


def test_an_api_that_dies_mid_run_fails_the_rest_and_had_restored_its_flags(capsys):
    with SmokeFixture(die_after=25) as fixture:  # during the latency run, after the admin checks
        before = fixture.state()
        code, out, err = run(capsys, *smoke_argv(fixture))
        assert fixture.state() == before
    assert code == EXIT_FAILED
    assert [name for name, passed in marks(out).items() if not passed] == [
        "api_latency", "site_latency", "flags_unchanged",
    ]  # fmt: skip
    assert "cannot read the flags after the run" in out


def test_an_api_that_dies_after_a_toggle_names_what_is_left_changed(capsys):
    with SmokeFixture(die_after=9) as fixture:  # the 9th request is the toggle itself
        code, _, err = run(capsys, *smoke_argv(fixture))
        assert fixture.state()["tier_progress_bar"] == (False, 100)  # nobody left to restore it
    assert code == EXIT_NOT_RESTORED
    line = one_line_error(err, ADMIN_TOKEN)
    assert "NOT restored: tier_progress_bar toggle" in line
    assert "fix: " + restore_curl(fixture, "tier_progress_bar", "toggle", '{"enabled": true}') in line


def test_a_refused_restore_is_named_with_the_request_that_fixes_it(capsys):
    with SmokeFixture("restore_refused") as fixture:
        code, _, err = run(capsys, *smoke_argv(fixture))
    assert code == EXIT_NOT_RESTORED
    line = one_line_error(err)
    toggle, rollout = (
        f"POST {fixture.url}/api/features/{path}" for path in ("tier_progress_bar/toggle", "community_feed/rollout")
    )
    assert f"tier_progress_bar toggle ({toggle}: HTTP 503, {smoke.RESTORE_ATTEMPTS} attempts; fix: curl" in line
    assert f"community_feed rollout ({rollout}: HTTP 503, {smoke.RESTORE_ATTEMPTS} attempts; fix: curl" in line


def test_an_interrupt_mid_change_restores_then_exits_130(capsys, monkeypatch):
    real = smoke._audit_entries
    calls = []

    def interrupt_after_the_toggle(http, key):
        calls.append(key)
        if len(calls) == 2:  # the read that follows the toggle
            raise KeyboardInterrupt
        return real(http, key)

    monkeypatch.setattr(smoke, "_audit_entries", interrupt_after_the_toggle)
    with SmokeFixture() as fixture:
        before = fixture.state()
        code, _, err = run(capsys, *smoke_argv(fixture))
        assert fixture.state() == before
    assert code == EXIT_INTERRUPTED
    assert one_line_error(err) == "error: interrupted: every admin change was restored"


def test_json_for_ci(capsys):
    with SmokeFixture("export_error") as fixture:
        code, out, err = run(capsys, *smoke_argv(fixture, "--json"))
    document = json.loads(out)
    assert code == EXIT_FAILED and document["passed"] is False and document["not_restored"] == []
    assert [c["name"] for c in document["checks"] if not c["passed"]] == ["export"]
    assert set(document["checks"][0]) == {"name", "passed", "figure", "detail"}
    assert one_line_error(err) == "error: smoke failed: export"


def test_urls_and_tokens_from_the_stack_and_the_environment(capsys, pulumi, monkeypatch):  # noqa: F811
    monkeypatch.setenv("SWIPESAVVY_API_TOKEN", TOKEN)
    monkeypatch.setenv("SWIPESAVVY_ADMIN_TOKEN", ADMIN_TOKEN)
    with SmokeFixture() as fixture:
        pulumi.set_outputs({"api_url": f"{fixture.url}/api", "site_url": fixture.url})
        code, out, err = run(capsys, "smoke", "--stack", STACK, "--requests", "5")
    assert code == EXIT_OK, err
    assert pulumi.calls() == [["stack", "output", "--json", "--show-secrets=false", "--stack", STACK]]
    pulumi.set_outputs({"db_connection": {}})
    code, _, err = run(capsys, "smoke", "--stack", STACK)
    assert code == EXIT_USAGE and "has no api_url or site_url output" in one_line_error(err)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["smoke", "--api-url", "http://x/api"], "give --api-url and --site-url, or --stack NAME"),
        (["smoke", "--api-url", "http://x/api", "--site-url", "http://x/"], "--token is required"),
        (["smoke", "--stack", STACK, "--site-url", "http://x/"], "--stack and --api-url/--site-url are alternatives"),
        (["smoke", "--requests", "0"], "--requests: must be an integer from 1 to 10000"),
        (["smoke", "--timeout", "0"], "--timeout must be more than 0 seconds"),
    ],
)
def test_bad_arguments_are_usage_errors(capsys, monkeypatch, argv, message):
    monkeypatch.delenv("SWIPESAVVY_API_TOKEN", raising=False)
    code, _, err = run(capsys, *argv)
    assert code == EXIT_USAGE and message in one_line_error(err)


# --- honest to the end: interrupts, broken answers, redirects, bad URLs -------------------------


def test_an_interrupt_during_a_restore_is_exit_5_naming_the_change_and_the_request(capsys, monkeypatch):
    """The restore never reaches the API (Ctrl-C as it is sent, and again in the final restore):
    the change is not restored, and the run must not say it was."""
    real = smoke.Http.api

    def interrupted_restores(http, method, path, body=None, *, admin=False):
        if path.endswith("/toggle") and body == {"enabled": True}:  # taking the toggle back
            raise KeyboardInterrupt
        return real(http, method, path, body, admin=admin)

    monkeypatch.setattr(smoke.Http, "api", interrupted_restores)
    with SmokeFixture() as fixture:
        code, _, err = run(capsys, *smoke_argv(fixture))
        assert fixture.state()["tier_progress_bar"] == (False, 100)
    assert code == EXIT_NOT_RESTORED
    assert one_line_error(err, ADMIN_TOKEN) == (
        "error: interrupted: NOT restored: tier_progress_bar toggle (interrupted before the API confirmed it; fix: "
        + restore_curl(fixture, "tier_progress_bar", "toggle", '{"enabled": true}')
        + ")"
    )


def test_an_interrupt_once_during_a_restore_is_restored_by_the_final_one(capsys, monkeypatch):
    real, interrupts = smoke.Http.api, []

    def one_interrupted_restore(http, method, path, body=None, *, admin=False):
        if path.endswith("/toggle") and body == {"enabled": True} and not interrupts:
            interrupts.append(path)
            raise KeyboardInterrupt
        return real(http, method, path, body, admin=admin)

    monkeypatch.setattr(smoke.Http, "api", one_interrupted_restore)
    with SmokeFixture() as fixture:
        before = fixture.state()
        code, _, err = run(capsys, *smoke_argv(fixture))
        assert fixture.state() == before
    assert code == EXIT_INTERRUPTED and interrupts
    assert one_line_error(err) == "error: interrupted: every admin change was restored"


@pytest.mark.parametrize(
    ("failure", "reason"),
    [
        ("bad_status_line", "not an HTTP answer (status line 'HTTP/1.1 TWO-HUNDRED OK')"),
        ("truncated_body", "answer cut short (2 of 500 bytes)"),
    ],
)
def test_a_broken_http_answer_is_one_line_per_check_naming_the_url(capsys, failure, reason):
    with SmokeFixture(failure) as fixture:
        before = fixture.state()
        code, out, err = run(capsys, *smoke_argv(fixture, "--requests", "3"))
        assert fixture.state() == before
    assert code == EXIT_FAILED and "Traceback" not in out + err
    health = next(line for line in out.splitlines() if " health " in line)
    assert health.endswith(f"GET {fixture.url}/api/health: {reason}, expected 200")
    assert [name for name, passed in marks(out).items() if not passed] == [
        "health", "feature_flags", "campaign_metrics", "admin_toggle", "admin_rollout", "api_latency",
    ]  # fmt: skip
    assert one_line_error(err).startswith("error: smoke failed: health, feature_flags")


def test_a_garbage_answer_to_a_restore_is_retried(capsys):
    with SmokeFixture("restore_garbage", garbage_restores=1) as fixture:
        before = fixture.state()
        code, out, err = run(capsys, *smoke_argv(fixture))
        assert fixture.state() == before
    assert code == EXIT_OK, err
    assert marks(out)["admin_toggle"]


def test_a_restore_that_never_gets_a_valid_answer_is_named(capsys):
    with SmokeFixture("restore_garbage") as fixture:
        code, _, err = run(capsys, *smoke_argv(fixture))
        assert fixture.state()["tier_progress_bar"] == (False, 100)  # never applied
    assert code == EXIT_NOT_RESTORED
    line = one_line_error(err, ADMIN_TOKEN)
    toggle = f"POST {fixture.url}/api/features/tier_progress_bar/toggle"
    assert (
        f"tier_progress_bar toggle ({toggle}: not an HTTP answer (status line 'HTTP/1.1 TWO-HUNDRED OK'), "
        f"{smoke.RESTORE_ATTEMPTS} attempts; fix: "
        + restore_curl(fixture, "tier_progress_bar", "toggle", '{"enabled": true}')
        + ")"
    ) in line


def test_an_infinite_rollout_is_a_failed_check_not_a_traceback(capsys):
    with SmokeFixture("infinite_rollout") as fixture:
        code, out, err = run(capsys, *smoke_argv(fixture, "--requests", "3"))
    assert code == EXIT_FAILED and "Traceback" not in err
    flags = next(line for line in out.splitlines() if " feature_flags " in line)
    assert flags.endswith(
        f"GET {fixture.url}/api/features/all: flag community_feed has rollout_percentage Infinity, "
        "expected an integer from 0 to 100"
    )


def test_a_string_where_a_boolean_belongs_is_not_read_as_true(capsys):
    with SmokeFixture("string_enabled") as fixture:
        code, out, _ = run(capsys, *smoke_argv(fixture, "--requests", "3"))
    assert code == EXIT_FAILED
    flags = next(line for line in out.splitlines() if " feature_flags " in line)
    assert flags.endswith(
        f'GET {fixture.url}/api/features/all: flag tier_progress_bar has enabled "false", expected true or false'
    )


def test_api_latency_counts_an_html_answer_as_failed(capsys):
    with SmokeFixture("html_api") as fixture:
        code, out, _ = run(capsys, *smoke_argv(fixture, "--requests", "3"))
    assert code == EXIT_FAILED
    latency = next(line for line in out.splitlines() if " api_latency " in line)
    assert latency.endswith(
        f"all 3 requests failed: GET {fixture.url}/api/features/all: HTTP 200 but the body is not a JSON array"
    )


def test_a_failing_check_names_the_url_it_tried(capsys):
    with SmokeFixture() as fixture:
        url = fixture.url
    code, out, _ = run(capsys, *smoke_argv(fixture, "--requests", "2"))  # the server is gone
    assert code == EXIT_FAILED
    health = next(line for line in out.splitlines() if " health " in line)
    assert health.endswith(f"GET {url}/api/health: no answer: [Errno 111] Connection refused, expected 200")


def test_the_token_is_never_sent_to_another_host_on_a_redirect(capsys):
    with SmokeFixture() as elsewhere, SmokeFixture("redirect", redirect_to=elsewhere.url) as fixture:
        code, out, _ = run(capsys, *smoke_argv(fixture, "--requests", "2"))
        assert elsewhere.tokens == [None, None, None]  # the site (no token), followed: the page, 2 latency requests
    assert code == EXIT_FAILED
    health = next(line for line in out.splitlines() if " health " in line)
    assert health.endswith(
        f"GET {fixture.url}/api/health: redirected to {elsewhere.url}/api/health: not followed "
        "(a token goes only to the scheme, host and port given), expected 200"
    )


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://[::1", "'http://[::1'"),
        ("ftp://example.com/api", "'ftp://example.com/api'"),
        ("file:///etc/passwd", "'file:///etc/passwd'"),
        ("example.com/api", "'example.com/api'"),
        ("http:///api", "'http:///api'"),
        ("http://example.com:99999/api", "'http://example.com:99999/api'"),
        ("https://user:pw@example.com/api", "with a user or password"),
    ],
)
def test_urls_are_checked_before_anything_runs(capsys, url, shown):
    argv = ["smoke", "--api-url", url, "--site-url", "https://example.com/", "--token", "t", "--admin-token", "a"]
    code, _, err = run(capsys, *argv)
    assert code == EXIT_USAGE
    assert one_line_error(err, ":pw@") == (
        f"error: --api-url {shown} is not an http:// or https:// URL with a host and no user or password "
        "(fix: e.g. --api-url https://d111.cloudfront.net/api)"
    )


def test_stack_urls_are_checked_too(capsys, pulumi):  # noqa: F811
    pulumi.set_outputs({"api_url": "ftp://example.com/api", "site_url": "https://example.com/"})
    code, _, err = run(capsys, "smoke", "--stack", STACK, "--token", "t", "--admin-token", "a")
    assert code == EXIT_USAGE
    assert one_line_error(err) == (
        f"error: stack {STACK!r} output api_url 'ftp://example.com/api' is not an http:// or https:// URL with a "
        "host and no user or password (fix: `pulumi up` with this version of the program, or give --api-url)"
    )


@pytest.mark.parametrize(
    ("old", "new", "followed"),
    [
        ("https://api.example.com/api/health", "https://api.example.com/api/v2/health", True),
        ("http://api.example.com/api/health", "https://api.example.com/api/health", True),  # an upgrade
        ("https://api.example.com/api/health", "http://api.example.com/api/health", False),  # a downgrade
        ("https://api.example.com/api/health", "https://api.example.com:8443/api/health", False),
        ("https://api.example.com/api/health", "https://evil.example.net/api/health", False),
        ("https://api.example.com/api/health", "file:///etc/passwd", False),
    ],
)
def test_a_redirect_carries_the_token_only_to_the_same_host(old, new, followed):
    handler = smoke._TokenStaysHome()
    request = urllib.request.Request(old, headers={"Authorization": "Bearer t"})
    response = io.BytesIO()
    if followed:
        redirected = handler.redirect_request(request, response, 302, "Found", {}, new)
        assert redirected.full_url == new and redirected.get_header("Authorization") == "Bearer t"
    else:
        with pytest.raises(smoke.RedirectRefused, match=re.escape(new)):
            handler.redirect_request(request, response, 302, "Found", {}, new)
        assert response.closed


def test_an_interrupt_before_any_request_says_nothing_was_changed(capsys, monkeypatch):
    def interrupted(*_args):
        raise KeyboardInterrupt

    monkeypatch.setattr(smoke_cli, "stack_outputs", interrupted)
    code, _, err = run(capsys, "smoke", "--stack", STACK, "--token", "t", "--admin-token", "a")
    assert code == EXIT_INTERRUPTED
    assert one_line_error(err) == "error: interrupted before any request: nothing was changed"
