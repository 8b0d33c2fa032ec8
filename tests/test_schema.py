"""The migrated schema's contract (runbook phase 1 and facts.md) on a real PostgreSQL."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors

from dbops.flags import SEEDED_FLAGS
from dbops.verify import EXPECTED_TABLES


def _rows(dsn: str, query: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(query, params).fetchall()


def test_exactly_the_sixteen_tables_in_public(migrated_dsn):
    tables = {
        name
        for (name,) in _rows(
            migrated_dsn, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        )
    }
    assert tables == EXPECTED_TABLES
    assert len(tables) == 16


def test_twenty_or_more_indexes(migrated_dsn):
    ((count,),) = _rows(migrated_dsn, "SELECT count(*) FROM pg_indexes WHERE schemaname = 'public'")
    assert count >= 20


def test_ten_seeded_flags_with_categories_and_states(migrated_dsn):
    flags = {
        key: (category, enabled, percentage)
        for key, category, enabled, percentage in _rows(
            migrated_dsn, "SELECT key, category, enabled, rollout_percentage FROM feature_flags"
        )
    }
    assert flags == SEEDED_FLAGS


def test_every_object_is_owned_by_the_nologin_owner(migrated_dsn):
    owners = {
        owner
        for (owner,) in _rows(
            migrated_dsn,
            "SELECT DISTINCT pg_get_userbyid(c.relowner) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname IN ('public', 'reporting', 'swipesavvy_meta') AND c.relkind IN ('r', 'v', 'S', 'i')",
        )
    }
    assert owners == {"swipesavvy_owner"}
    ((can_login,),) = _rows(migrated_dsn, "SELECT rolcanlogin FROM pg_roles WHERE rolname = 'swipesavvy_owner'")
    assert can_login is False


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE feature_flags SET rollout_percentage = 150 WHERE key = 'dark_mode'",
        "UPDATE feature_flags SET rollout_percentage = -1 WHERE key = 'dark_mode'",
        "UPDATE feature_flags SET category = 'Beta' WHERE key = 'dark_mode'",
        "INSERT INTO feature_flags (key, name, category) VALUES ('dark_mode', 'dup', 'UI')",
        "INSERT INTO feature_flags (key, name, category, created_at) VALUES ('later', 'x', 'UI', now() + interval '1 day')",
        "INSERT INTO feature_flag_rollouts (flag_id, percentage) VALUES (999999, 10)",
        "INSERT INTO merchants (id, name, category) VALUES (1, 'm', 'food');"
        "INSERT INTO user_merchant_affinity (user_id, merchant_id, affinity_score) VALUES (1, 1, 1.5)",
        "INSERT INTO user_optimal_send_times (user_id, best_hour, best_day_of_week, confidence) VALUES (1, 24, 0, 0.5)",
        "INSERT INTO campaigns (id, name, channel, start_date) VALUES (1, 'c', 'email', '2025-01-01');"
        "INSERT INTO campaign_analytics_daily (campaign_id, date, impressions, clicks, conversions, spend, revenue,"
        " engagement_rate) VALUES (1, '2025-01-02', 10, 11, 0, 0, 0, 0)",
        "INSERT INTO campaigns (id, name, channel, start_date) VALUES (1, 'c', 'email', '2025-01-01');"
        "INSERT INTO ab_tests (name, campaign_id, status, control_config, variant_a_config, variant_b_config,"
        " start_date) VALUES ('t', 1, 'exploding', '{}', '{}', '{}', '2025-01-01')",
        "INSERT INTO campaigns (id, name, channel, start_date) VALUES (1, 'c', 'email', current_date + 400);"
        "INSERT INTO campaign_analytics_daily (campaign_id, date, impressions, clicks, conversions, spend, revenue,"
        " engagement_rate) VALUES (1, current_date + 1, 10, 1, 0, 0, 0, 0)",
    ],
    ids=[
        "pct-150",
        "pct-negative",
        "category",
        "duplicate-key",
        "future-created-at",
        "orphan-rollout",
        "affinity-above-1",
        "hour-24",
        "clicks-above-impressions",
        "test-status",
        "future-analytics-date",
    ],
)
def test_constraint_violations_are_rejected(migrated_dsn, statement):
    with psycopg.connect(migrated_dsn) as conn, pytest.raises(psycopg.errors.IntegrityError):
        conn.execute(statement)


def test_generated_rates_match_their_counts(migrated_dsn):
    with psycopg.connect(migrated_dsn) as conn:
        conn.execute("INSERT INTO campaigns (id, name, channel, start_date) VALUES (1, 'c', 'email', '2025-01-01')")
        row = conn.execute(
            "INSERT INTO campaign_analytics_daily (campaign_id, date, impressions, clicks, conversions, spend, revenue,"
            " engagement_rate) VALUES (1, '2025-01-02', 1000, 50, 5, 100, 250, 0.1)"
            " RETURNING click_through_rate, conversion_rate, avg_order_value, roi"
        ).fetchone()
    assert [float(v) for v in row] == [0.05, 0.1, 50.0, 1.5]


def test_audit_row_for_every_flag_change(migrated_dsn):
    with psycopg.connect(migrated_dsn, autocommit=True) as conn:

        def audit(key):
            return conn.execute(
                "SELECT action, old_value->>'enabled', new_value->>'enabled', changed_by, reason"
                " FROM feature_flag_audit_log WHERE flag_key = %s ORDER BY id",
                (key,),
            ).fetchall()

        assert [a[0] for a in audit("community_feed")] == ["CREATE"]
        with conn.transaction():
            conn.execute(
                "SELECT set_config('swipesavvy.actor', 'alice@swipesavvy.com', true),"
                " set_config('swipesavvy.change_reason', 'UAT', true)"
            )
            conn.execute("UPDATE feature_flags SET enabled = true WHERE key = 'community_feed'")
        conn.execute("UPDATE feature_flags SET rollout_percentage = 25 WHERE key = 'community_feed'")
        conn.execute("UPDATE feature_flags SET updated_at = now() WHERE key = 'community_feed'")  # not a change
        conn.execute("DELETE FROM feature_flags WHERE key = 'community_feed'")
        entries = audit("community_feed")
    assert [e[0] for e in entries] == ["CREATE", "TOGGLE", "UPDATE", "DELETE"]
    assert entries[1][1:] == ("false", "true", "alice@swipesavvy.com", "UAT")


def test_updated_at_is_kept_current(migrated_dsn):
    with psycopg.connect(migrated_dsn) as conn:
        before = conn.execute("SELECT updated_at FROM feature_flags WHERE key = 'dark_mode'").fetchone()[0]
        conn.commit()
        conn.execute("UPDATE feature_flags SET description = 'new' WHERE key = 'dark_mode'")
        after = conn.execute("SELECT updated_at FROM feature_flags WHERE key = 'dark_mode'").fetchone()[0]
    assert after > before


def test_audit_log_is_append_only_even_for_its_owner(migrated_dsn):
    with psycopg.connect(migrated_dsn, autocommit=True) as conn:
        for statement in (
            "UPDATE feature_flag_audit_log SET reason = 'x'",
            "DELETE FROM feature_flag_audit_log",
            "TRUNCATE feature_flag_audit_log",
        ):
            with pytest.raises(errors.InsufficientPrivilege, match="append-only"):
                conn.execute(statement)


def test_readonly_member_reads_but_cannot_write_or_create(migrated_dsn, as_role):
    dsn = as_role(migrated_dsn, "swipesavvy_readonly")
    forbidden = [
        "INSERT INTO merchants (name, category) VALUES ('m', 'food')",
        "UPDATE feature_flags SET enabled = true",
        "DELETE FROM feature_flags",
        "TRUNCATE feature_flags",
        "CREATE TABLE public.sneaky (id int)",
        "CREATE TEMP TABLE sneaky (id int)",
        "CREATE SCHEMA sneaky",
        "SELECT nextval('merchants_id_seq')",
        "INSERT INTO feature_flag_audit_log (flag_id, flag_key, action, changed_by) VALUES (1, 'x', 'CREATE', 'me')",
    ]
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM feature_flags").fetchone()[0] == 10
        assert conn.execute("SELECT count(*) FROM reporting.feature_flag_status").fetchone()[0] == 10
        for statement in forbidden:
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute(statement)


def test_readwrite_member_writes_rows_but_cannot_change_the_schema(migrated_dsn, as_role):
    dsn = as_role(migrated_dsn, "swipesavvy_readwrite")
    forbidden = [
        "CREATE TABLE public.sneaky (id int)",
        "ALTER TABLE feature_flags ADD COLUMN sneaky int",
        "DROP TABLE feature_flags",
        "TRUNCATE feature_flags",
        "CREATE TEMP TABLE sneaky (id int)",
        "UPDATE feature_flag_audit_log SET reason = 'rewritten'",
        "DELETE FROM feature_flag_audit_log",
        "INSERT INTO feature_flag_audit_log (flag_id, flag_key, action, changed_by) VALUES (1, 'x', 'CREATE', 'me')",
    ]
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO merchants (name, category) VALUES ('Corner Cafe', 'food')")
        conn.execute("UPDATE feature_flags SET enabled = true WHERE key = 'notification_center'")
        conn.execute("DELETE FROM merchants WHERE name = 'Corner Cafe'")
        # The audit trigger writes on the member's behalf, though it holds no INSERT itself.
        actor = conn.execute(
            "SELECT changed_by FROM feature_flag_audit_log WHERE flag_key = 'notification_center' AND action = 'TOGGLE'"
        ).fetchone()
        assert actor is not None
        for statement in forbidden:
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute(statement)


def test_public_cannot_connect_without_a_group(migrated_dsn, as_role):
    dsn = as_role(migrated_dsn)  # a login in no group
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        psycopg.connect(dsn).close()
