"""The runbook's verification queries as code: each check is one query and one verdict.

Phase 1.3 (tables, indexes, key tables), 1.4 (the ten flags) and 5.5 (data integrity).
``run_checks`` never stops at the first failure: the operator sees the whole checklist.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import psycopg

EXPECTED_TABLES = frozenset({
    "campaigns", "merchants",
    "feature_flags", "feature_flag_rollouts", "feature_flag_usage", "feature_flag_analytics",
    "feature_flag_audit_log",
    "campaign_analytics_daily", "campaign_analytics_segments",
    "ab_tests", "ab_test_assignments", "ab_test_results",
    "ml_models",
    "user_merchant_affinity", "user_optimal_send_times", "campaign_optimizations",
})
KEY_TABLES = ("feature_flags", "campaign_analytics_daily", "ab_tests")
MIN_INDEXES = 20
# key -> (category, enabled): the flags migration 003 seeds.
EXPECTED_FLAGS = {
    "tier_progress_bar": ("UI", True),
    "amount_chip_selector": ("UI", True),
    "platform_goal_meter": ("UI", True),
    "ai_concierge_chat": ("UI", True),
    "dark_mode": ("UI", True),
    "social_sharing": ("Advanced", True),
    "receipt_generation": ("Advanced", True),
    "community_feed": ("Experimental", False),
    "notification_center": ("Experimental", False),
    "advanced_analytics": ("Experimental", False),
}


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    detail: str


Check = Callable[[psycopg.Connection], CheckResult]


def _scalar(conn: psycopg.Connection, query: str, params: tuple = ()) -> int:
    return conn.execute(query, params).fetchone()[0]


def check_tables(conn: psycopg.Connection) -> CheckResult:
    names = {row[0] for row in conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")}
    missing, extra = sorted(EXPECTED_TABLES - names), sorted(names - EXPECTED_TABLES)
    detail = f"{len(names)} tables in public (expected {len(EXPECTED_TABLES)})"
    if missing:
        detail += f"; missing: {', '.join(missing)}"
    if extra:
        detail += f"; unexpected: {', '.join(extra)}"
    return CheckResult("tables", not missing and not extra, detail)


def check_key_tables(conn: psycopg.Connection) -> CheckResult:
    present = {row[0] for row in conn.execute(
        "SELECT table_name FROM information_schema.tables"
        " WHERE table_schema = 'public' AND table_name = ANY(%s)", (list(KEY_TABLES),))}
    missing = [t for t in KEY_TABLES if t not in present]
    detail = ", ".join(f"{t}: {'present' if t in present else 'MISSING'}" for t in KEY_TABLES)
    return CheckResult("key_tables", not missing, detail)


def check_indexes(conn: psycopg.Connection) -> CheckResult:
    count = _scalar(conn, "SELECT count(*) FROM pg_indexes WHERE schemaname = 'public'")
    return CheckResult("indexes", count >= MIN_INDEXES, f"{count} indexes in public (expected {MIN_INDEXES}+)")


def check_feature_flags(conn: psycopg.Connection) -> CheckResult:
    flags = {key: (category, enabled) for key, category, enabled in conn.execute(
        "SELECT key, category, enabled FROM feature_flags")}
    problems = []
    for key, expected in EXPECTED_FLAGS.items():
        if key not in flags:
            problems.append(f"{key} missing")
        elif flags[key] != expected:
            problems.append(f"{key} is {flags[key][0]}/{'on' if flags[key][1] else 'off'}, "
                            f"expected {expected[0]}/{'on' if expected[1] else 'off'}")
    detail = f"{len(flags)} flags (expected {len(EXPECTED_FLAGS)})"
    if len(flags) != len(EXPECTED_FLAGS):
        problems.append(f"{len(flags)} flags")
    if problems:
        detail += "; " + "; ".join(problems)
    return CheckResult("feature_flags", not problems, detail)


def _zero_check(name: str, query: str, what: str) -> Check:
    def check(conn: psycopg.Connection) -> CheckResult:
        count = _scalar(conn, query)
        return CheckResult(name, count == 0, f"{count} {what}")
    check.__name__ = f"check_{name}"
    return check


check_orphaned_rollouts = _zero_check(
    "orphaned_rollouts",
    "SELECT count(*) FROM feature_flag_rollouts WHERE flag_id NOT IN (SELECT id FROM feature_flags)",
    "rollouts without a flag",
)
check_invalid_percentages = _zero_check(
    "invalid_percentages",
    "SELECT count(*) FROM feature_flags WHERE rollout_percentage < 0 OR rollout_percentage > 100",
    "flags with a rollout percentage outside 0..100",
)
check_future_timestamps = _zero_check(
    "future_timestamps",
    "SELECT count(*) FROM feature_flags WHERE created_at > now() OR updated_at > now()",
    "flags with a timestamp in the future",
)


def check_audit_log(conn: psycopg.Connection) -> CheckResult:
    flags_without_entry = _scalar(
        conn,
        "SELECT count(*) FROM feature_flags f"
        " WHERE NOT EXISTS (SELECT 1 FROM feature_flag_audit_log a WHERE a.flag_id = f.id)")
    entries = _scalar(conn, "SELECT count(*) FROM feature_flag_audit_log")
    detail = f"{entries} audit entries"
    if flags_without_entry:
        detail += f"; {flags_without_entry} flags have no audit entry"
    return CheckResult("audit_log", entries > 0 and flags_without_entry == 0, detail)


SCHEMA_CHECKS: tuple[Check, ...] = (
    check_tables,
    check_key_tables,
    check_indexes,
    check_feature_flags,
    check_orphaned_rollouts,
    check_invalid_percentages,
    check_audit_log,
    check_future_timestamps,
)


def run_checks(conn: psycopg.Connection, checks: Iterable[Check] = SCHEMA_CHECKS) -> list[CheckResult]:
    """Run every check; a check whose query fails is reported failed, not raised."""
    results = []
    for check in checks:
        try:
            with conn.transaction():
                results.append(check(conn))
        except psycopg.Error as error:
            name = check.__name__.removeprefix("check_")
            results.append(CheckResult(name, False, f"query failed: {str(error).strip().splitlines()[0]}"))
    return results
