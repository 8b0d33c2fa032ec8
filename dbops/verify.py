"""The runbook's verification queries as code: each check is one query and one verdict.

Phase 1.3 (tables, indexes, key tables), 1.4 (the ten flags, as seeded or as the stack set
them) and 5.5 (data integrity) are SCHEMA_CHECKS; phase 2.3 (the mock data's content,
volumes and shape) is SEED_CHECKS, which read the seeder's manifest and pass with "no mock
data seeded" when there is neither a manifest nor mock rows (unless built with
``seed_checks(require_seed=True)``).
``run_checks`` never stops at the first failure: the operator sees the whole checklist.
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import psycopg

from dbops.flags import SEEDED_FLAGS, SETTINGS_TABLE
from seed.generator import AFFINITY_MERCHANTS_PER_USER, DAYS, SEGMENTS
from seed.loader import MOCK_ROWS, Manifest, content_digests, count_mock_rows, read_manifest

EXPECTED_TABLES = frozenset(
    {
        "campaigns",
        "merchants",
        "feature_flags",
        "feature_flag_rollouts",
        "feature_flag_usage",
        "feature_flag_analytics",
        "feature_flag_audit_log",
        "campaign_analytics_daily",
        "campaign_analytics_segments",
        "ab_tests",
        "ab_test_assignments",
        "ab_test_results",
        "ml_models",
        "user_merchant_affinity",
        "user_optimal_send_times",
        "campaign_optimizations",
    }
)
KEY_TABLES = ("feature_flags", "campaign_analytics_daily", "ab_tests")
MIN_INDEXES = 20


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    detail: str


Check = Callable[[psycopg.Connection], CheckResult]


def _scalar(conn: psycopg.Connection, query: str, params: tuple = ()) -> int:
    return conn.execute(query, params).fetchone()[0]


# The relations information_schema.tables lists in public (tables, views, foreign tables),
# from the catalog: information_schema shows only what the current login has privileges on,
# and verify also runs as logins that may only read (the read-only operator, the app logins).
PUBLIC_TABLES = (
    "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'f')"
)


def check_tables(conn: psycopg.Connection) -> CheckResult:
    names = {row[0] for row in conn.execute(PUBLIC_TABLES)}
    missing, extra = sorted(EXPECTED_TABLES - names), sorted(names - EXPECTED_TABLES)
    detail = f"{len(names)} tables in public (expected {len(EXPECTED_TABLES)})"
    if missing:
        detail += f"; missing: {', '.join(missing)}"
    if extra:
        detail += f"; unexpected: {', '.join(extra)}"
    return CheckResult("tables", not missing and not extra, detail)


def check_key_tables(conn: psycopg.Connection) -> CheckResult:
    present = {row[0] for row in conn.execute(f"{PUBLIC_TABLES} AND c.relname = ANY(%s)", (list(KEY_TABLES),))}
    missing = [t for t in KEY_TABLES if t not in present]
    detail = ", ".join(f"{t}: {'present' if t in present else 'MISSING'}" for t in KEY_TABLES)
    return CheckResult("key_tables", not missing, detail)


def check_indexes(conn: psycopg.Connection) -> CheckResult:
    count = _scalar(conn, "SELECT count(*) FROM pg_indexes WHERE schemaname = 'public'")
    return CheckResult("indexes", count >= MIN_INDEXES, f"{count} indexes in public (expected {MIN_INDEXES}+)")


def applied_flag_settings(conn: psycopg.Connection) -> dict[str, tuple[bool, int, str]]:
    """``{key: (enabled, rollout_percentage, actor)}`` as the stack last applied them."""
    if not _scalar(conn, "SELECT to_regclass(%s) IS NOT NULL", (SETTINGS_TABLE,)):
        return {}  # migration 008 not applied yet: nothing recorded
    query = f"SELECT key, enabled, rollout_percentage, actor FROM {SETTINGS_TABLE}"
    return {key: (enabled, percentage, actor) for key, enabled, percentage, actor in conn.execute(query)}


def expected_flag_states(conn: psycopg.Connection) -> dict[str, tuple[bool, int, str]]:
    """``{key: (enabled, rollout_percentage, where that expectation comes from)}``: the
    migration's defaults overlaid with what the stack applied."""
    expected = {
        key: (enabled, percentage, "migration default") for key, (_, enabled, percentage) in SEEDED_FLAGS.items()
    }
    for key, (enabled, percentage, actor) in applied_flag_settings(conn).items():
        expected[key] = (enabled, percentage, f"applied by {actor}")
    return expected


def _flag_state(enabled: bool, percentage: int) -> str:
    return f"{'on' if enabled else 'off'} at {percentage}%"


def check_feature_flags(conn: psycopg.Connection) -> CheckResult:
    """Runbook 1.4: the ten flags in their categories, each flag's state as migration 003
    seeded it or as the stack last set it; anything else was changed outside the stack."""
    flags = {
        key: (category, enabled, percentage)
        for key, category, enabled, percentage in conn.execute(
            "SELECT key, category, enabled, rollout_percentage FROM feature_flags"
        )
    }
    expected = expected_flag_states(conn)
    problems = []
    for key, (enabled, percentage, source) in expected.items():
        if key not in flags:
            problems.append(f"{key} missing")
            continue
        category, *state = flags[key]
        if key in SEEDED_FLAGS and category != SEEDED_FLAGS[key][0]:
            problems.append(f"{key} is in {category}, expected {SEEDED_FLAGS[key][0]}")
        if state != [enabled, percentage]:
            problems.append(f"{key} is {_flag_state(*state)}, expected {_flag_state(enabled, percentage)} ({source})")
    unexpected = sorted(set(flags) - set(expected))
    if unexpected:
        problems.append(f"unexpected: {', '.join(unexpected)}")
    detail = f"{len(flags)} flags (expected {len(SEEDED_FLAGS)})"
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
        " WHERE NOT EXISTS (SELECT 1 FROM feature_flag_audit_log a WHERE a.flag_id = f.id)",
    )
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


# --- runbook phase 2.3: the mock data ---------------------------------------------------------
# Each seed check reads the seeder's manifest; without one there is nothing to check and
# the check passes saying so (``seed_checks(require_seed=True)`` fails the manifest check).

# Runbook 2.3 volumes at scale 1 -> how a count at scale s is judged:
# "exact" = max(1, round(n * s)); "~" = within 2% of n * s or one whole campaign / user
# (the plan rounds campaigns and users to whole ones); "+" = at least round(n * s).
RUNBOOK_SEED_VOLUMES: dict[str, tuple[int, str, int]] = {  # table -> (n, kind, granule)
    "campaign_analytics_daily": (4_500, "~", DAYS),
    "campaign_analytics_segments": (27_000, "~", DAYS * len(SEGMENTS)),
    "ab_tests": (20, "exact", 0),
    "ab_test_assignments": (20_000, "~", 0),
    "user_merchant_affinity": (15_000, "~", AFFINITY_MERCHANTS_PER_USER),
    "user_optimal_send_times": (500, "exact", 0),
    "campaign_optimizations": (100, "+", 0),
}
VOLUME_TOLERANCE = 0.02
VARIANT_BALANCE = 0.02  # largest minus smallest arm, relative to an even third


def volume_problem(table: str, count: int, scale: float) -> str | None:
    """Why ``count`` rows of ``table`` is not what runbook 2.3 expects at ``scale`` (None: it is)."""
    nominal, kind, granule = RUNBOOK_SEED_VOLUMES[table]
    target = nominal * scale
    if kind == "exact":
        expected = max(1, round(target))
        return None if count == expected else f"{table} {count:,} (expected {expected:,})"
    if kind == "+":
        expected = max(1, round(target))
        return None if count >= expected else f"{table} {count:,} (expected {expected:,}+)"
    tolerance = max(VOLUME_TOLERANCE * target, granule)
    return None if abs(count - target) <= tolerance else f"{table} {count:,} (expected ~{target:,.0f})"


def _when_seeded(check: Callable[[psycopg.Connection, Manifest], CheckResult]) -> Check:
    """Run ``check`` with the seeder's manifest; without one it passes as skipped."""
    name = check.__name__.removeprefix("check_")

    @functools.wraps(check)
    def run(conn: psycopg.Connection) -> CheckResult:
        manifest = read_manifest(conn)
        if manifest is None:
            return CheckResult(name, True, "skipped: no mock data seeded")
        return check(conn, manifest)

    return run


def _manifest_check(require_seed: bool) -> Check:
    def check_seed_manifest(conn: psycopg.Connection) -> CheckResult:
        manifest = read_manifest(conn)
        if manifest is None:
            orphans = sum(count_mock_rows(conn).values())
            if orphans:
                return CheckResult(
                    "seed_manifest",
                    False,
                    f"no manifest, yet {orphans:,} mock rows are loaded: `python -m ops db seed` reloads them, "
                    "`python -m ops db unseed` removes them",
                )
            return CheckResult(
                "seed_manifest",
                not require_seed,
                "no mock data seeded" + (" (required by --require-seed)" if require_seed else ""),
            )
        total = sum(manifest.counts.values())
        return CheckResult(
            "seed_manifest",
            True,
            f"{total:,} mock rows: scale {manifest.scale:g}, rng seed {manifest.rng_seed}, "
            f"anchor {manifest.anchor_date.isoformat()}, dataset v{manifest.dataset_version}, "
            f"checksum {manifest.checksum[:12]}",
        )

    return check_seed_manifest


@_when_seeded
def check_seed_counts(conn: psycopg.Connection, manifest: Manifest) -> CheckResult:
    """The mock rows each table holds are exactly those the manifest recorded."""
    actual = count_mock_rows(conn)
    wrong = [
        f"{table} has {actual.get(table, 0):,}, manifest says {n:,}"
        for table, n in manifest.counts.items()
        if actual.get(table, 0) != n
    ]
    detail = f"{sum(actual.values()):,} mock rows in {len(actual)} tables match the manifest"
    return CheckResult("seed_counts", not wrong, "; ".join(wrong) if wrong else detail)


def reseed_command(manifest: Manifest) -> str:
    """The plain re-seed that restores what the manifest describes."""
    params = manifest.params
    return (
        f"`python -m ops db seed --scale {params.scale:g} --rng-seed {params.rng_seed} "
        f"--anchor-date {params.anchor_date.isoformat()} --dataset-version {params.dataset_version}`"
    )


@_when_seeded
def check_seed_content(conn: psycopg.Connection, manifest: Manifest) -> CheckResult:
    """Every seeded row is exactly as loaded: the content digests match the manifest's."""
    if manifest.content_digests is None:
        return CheckResult(
            "seed_content",
            False,
            f"the manifest predates content digests (migration 009): {reseed_command(manifest)} records them",
        )
    actual = content_digests(conn)
    changed = [table for table, digest in actual.items() if manifest.content_digests.get(table) != digest]
    if changed:
        detail = f"mock rows differ from the manifest in {', '.join(changed)}: {reseed_command(manifest)} reloads them"
    else:
        detail = f"the mock rows of {len(actual)} tables match the manifest's sha256 digests"
    return CheckResult("seed_content", not changed, detail)


@_when_seeded
def check_seed_volumes(conn: psycopg.Connection, manifest: Manifest) -> CheckResult:
    """Runbook 2.3: the seeded volumes for the manifest's scale."""
    problems = [
        p
        for table in RUNBOOK_SEED_VOLUMES
        if (p := volume_problem(table, manifest.counts.get(table, 0), manifest.scale))
    ]
    detail = ", ".join(f"{table} {manifest.counts.get(table, 0):,}" for table in RUNBOOK_SEED_VOLUMES)
    return CheckResult(
        "seed_volumes", not problems, f"scale {manifest.scale:g}: " + ("; ".join(problems) if problems else detail)
    )


@_when_seeded
def check_seed_analytics_window(conn: psycopg.Connection, manifest: Manifest) -> CheckResult:
    """Every mock campaign has one daily row per day and six segment rows per day, for the
    DAYS days before the anchor date and none after it."""
    first, last = (
        manifest.anchor_date - datetime.timedelta(days=DAYS),
        manifest.anchor_date - datetime.timedelta(days=1),
    )
    bad = _scalar(
        conn,
        f"""
        SELECT count(*) FROM campaigns c
        WHERE {MOCK_ROWS["campaigns"]} AND (
            (SELECT count(*) FILTER (WHERE d.date BETWEEN %(first)s AND %(last)s) <> %(days)s OR count(*) <> %(days)s
               FROM campaign_analytics_daily d WHERE d.campaign_id = c.id)
            OR (SELECT count(*) FILTER (WHERE s.date BETWEEN %(first)s AND %(last)s) <> %(segs)s
                       OR count(*) <> %(segs)s
                  FROM campaign_analytics_segments s WHERE s.campaign_id = c.id))""",
        {"first": first, "last": last, "days": DAYS, "segs": DAYS * len(SEGMENTS)},
    )
    return CheckResult(
        "seed_analytics_window",
        bad == 0,
        f"{bad} mock campaigns without exactly {DAYS} days x (1 + {len(SEGMENTS)} segments) "
        f"from {first.isoformat()} to {last.isoformat()}",
    )


@_when_seeded
def check_seed_no_future_dates(conn: psycopg.Connection, manifest: Manifest) -> CheckResult:
    future = _scalar(
        conn,
        f"""
        SELECT (SELECT count(*) FROM campaign_analytics_daily WHERE date > current_date
                   AND {MOCK_ROWS["campaign_analytics_daily"]})
             + (SELECT count(*) FROM campaign_analytics_segments WHERE date > current_date
                   AND {MOCK_ROWS["campaign_analytics_segments"]})
             + (SELECT count(*) FROM ab_tests WHERE (start_date > current_date OR end_date > current_date)
                   AND {MOCK_ROWS["ab_tests"]})
             + (SELECT count(*) FROM ab_test_assignments WHERE assigned_at > now()
                   AND {MOCK_ROWS["ab_test_assignments"]})
             + (SELECT count(*) FROM user_merchant_affinity
                 WHERE (last_transaction_at > now() OR computed_at > now()) AND {MOCK_ROWS["user_merchant_affinity"]})
             + (SELECT count(*) FROM user_optimal_send_times WHERE updated_at > now()
                   AND {MOCK_ROWS["user_optimal_send_times"]})""",
    )
    return CheckResult(
        "seed_no_future_dates",
        future == 0,
        f"{future} mock rows dated in the future (anchor date {manifest.anchor_date.isoformat()})",
    )


@_when_seeded
def check_seed_variant_balance(conn: psycopg.Connection, manifest: Manifest) -> CheckResult:
    """Each mock A/B test's three arms hold the same number of users, within 2%."""
    rows = conn.execute(f"""
        SELECT t.id, count(*) FILTER (WHERE a.variant = 'control'), count(*) FILTER (WHERE a.variant = 'variant_a'),
               count(*) FILTER (WHERE a.variant = 'variant_b')
        FROM ab_tests t LEFT JOIN ab_test_assignments a ON a.test_id = t.id
        WHERE {MOCK_ROWS["ab_tests"].replace("campaign_id", "t.campaign_id")}
        GROUP BY t.id ORDER BY t.id""").fetchall()
    unbalanced, worst = [], 0.0
    for test_id, *arms in rows:
        third = sum(arms) / 3
        spread = (max(arms) - min(arms)) / third if third else 1.0
        worst = max(worst, spread)
        if max(arms) - min(arms) > max(1, VARIANT_BALANCE * third):
            unbalanced.append(f"test {test_id} {'/'.join(map(str, arms))}")
    detail = f"{len(rows)} mock tests, largest spread {worst:.1%} of a third (limit {VARIANT_BALANCE:.0%})"
    if unbalanced:
        detail += "; unbalanced: " + ", ".join(unbalanced[:5])
    return CheckResult("seed_variant_balance", not unbalanced, detail)


@_when_seeded
def check_seed_ab_results(conn: psycopg.Connection, manifest: Manifest) -> CheckResult:
    """Every mock test has one result per variant whose counts match its assignments."""
    mismatched = _scalar(
        conn,
        f"""
        SELECT count(*) FROM ab_tests t CROSS JOIN (VALUES ('control'), ('variant_a'), ('variant_b')) AS v(variant)
        LEFT JOIN ab_test_results r ON r.test_id = t.id AND r.variant = v.variant AND r.metric_name = 'conversion'
        LEFT JOIN LATERAL (SELECT count(*) AS n, count(*) FILTER (WHERE converted) AS c FROM ab_test_assignments a
                           WHERE a.test_id = t.id AND a.variant = v.variant) a ON true
        WHERE {MOCK_ROWS["ab_tests"].replace("campaign_id", "t.campaign_id")}
          AND (r.id IS NULL OR r.sample_size <> a.n OR r.conversions <> a.c)""",
    )
    return CheckResult(
        "seed_ab_results",
        mismatched == 0,
        f"{mismatched} mock test variants whose results disagree with their assignments",
    )


@_when_seeded
def check_seed_send_times(conn: psycopg.Connection, manifest: Manifest) -> CheckResult:
    """One send-time row per mock user with merchant affinities, and no other mock send times."""
    users, rows, unmatched = conn.execute(f"""
        WITH profiled AS (SELECT DISTINCT user_id FROM user_merchant_affinity
                          WHERE {MOCK_ROWS["user_merchant_affinity"]}),
             timed AS (SELECT user_id FROM user_optimal_send_times WHERE {MOCK_ROWS["user_optimal_send_times"]})
        SELECT (SELECT count(*) FROM profiled), (SELECT count(*) FROM timed),
               (SELECT count(*) FROM profiled p FULL JOIN timed t USING (user_id)
                 WHERE p.user_id IS NULL OR t.user_id IS NULL)""").fetchone()
    return CheckResult(
        "seed_send_times",
        unmatched == 0 and users == rows,
        f"{users:,} mock users with affinities, {rows:,} mock send-time rows, {unmatched} without a counterpart",
    )


def seed_checks(require_seed: bool = False) -> tuple[Check, ...]:
    return (
        _manifest_check(require_seed),
        check_seed_counts,
        check_seed_content,
        check_seed_volumes,
        check_seed_analytics_window,
        check_seed_no_future_dates,
        check_seed_variant_balance,
        check_seed_ab_results,
        check_seed_send_times,
    )


SEED_CHECKS: tuple[Check, ...] = seed_checks()
