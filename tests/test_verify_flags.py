"""``verify`` judges the flags against what the stack applied (FeatureFlagSettings), and
still catches any flag changed outside the stack config."""

from __future__ import annotations

import psycopg
import pytest
from db_helpers import connection_of

from components.feature_flags import FeatureFlagSettingsProvider
from dbops.flags import apply_flag_settings
from ops.cli import EXIT_FAILED, EXIT_OK, main


def verify(capsys, dsn: str) -> tuple[int, str]:
    code = main(["verify", "--dsn", dsn])
    out, _ = capsys.readouterr()
    return code, out


def apply_like_the_stack(dsn: str, flags: dict) -> None:
    """What ``pulumi up`` does for ``swipesavvy:featureFlags`` (the README's example)."""
    FeatureFlagSettingsProvider().create(
        {"connection": connection_of(dsn), "database_id": "db-TEST/x", "flags": flags, "actor": "pulumi:staging"}
    )


def run_sql(dsn: str, statement: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(statement)


@pytest.fixture
def configured_dsn(migrated_dsn):
    apply_like_the_stack(migrated_dsn, {"community_feed": {"enabled": True, "rollout_percentage": 25}})
    return migrated_dsn


def test_verify_passes_with_the_stack_flag_settings(configured_dsn, capsys):
    code, out = verify(capsys, configured_dsn)
    assert code == EXIT_OK, out
    assert "✓ feature_flags" in out


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            "UPDATE feature_flags SET rollout_percentage = 50 WHERE key = 'community_feed'",
            "community_feed is on at 50%, expected on at 25% (applied by pulumi:staging)",
        ),
        (
            "UPDATE feature_flags SET enabled = false WHERE key = 'community_feed'",
            "community_feed is off at 25%, expected on at 25% (applied by pulumi:staging)",
        ),
        (
            "UPDATE feature_flags SET rollout_percentage = 90 WHERE key = 'dark_mode'",
            "dark_mode is on at 90%, expected on at 100% (migration default)",
        ),
        (
            "UPDATE feature_flags SET category = 'UI' WHERE key = 'notification_center'",
            "notification_center is in UI, expected Experimental",
        ),
    ],
    ids=["stack-flag-rollout", "stack-flag-toggled", "default-flag-rollout", "category"],
)
def test_verify_names_a_flag_changed_outside_the_stack(configured_dsn, capsys, change, problem):
    run_sql(configured_dsn, change)
    code, out = verify(capsys, configured_dsn)
    assert code == EXIT_FAILED
    assert "✗ feature_flags" in out and problem in out


def test_runbook_admin_toggle_and_restore_passes(configured_dsn, as_role, capsys):
    app = as_role(configured_dsn, "swipesavvy_readwrite")
    run_sql(app, "UPDATE feature_flags SET enabled = false WHERE key = 'tier_progress_bar'")
    run_sql(app, "UPDATE feature_flags SET enabled = true WHERE key = 'tier_progress_bar'")
    assert verify(capsys, configured_dsn)[0] == EXIT_OK


def test_a_new_stack_setting_replaces_the_recorded_one(configured_dsn, capsys):
    apply_like_the_stack(configured_dsn, {"community_feed": {"enabled": True, "rollout_percentage": 100}})
    assert verify(capsys, configured_dsn)[0] == EXIT_OK
    with psycopg.connect(configured_dsn) as conn:
        recorded = conn.execute(
            "SELECT enabled, rollout_percentage, actor, applied_by = session_user"
            " FROM swipesavvy_meta.feature_flag_settings"
        ).fetchall()
    assert recorded == [(True, 100, "pulumi:staging", True)]


def test_unchanged_settings_keep_their_record(configured_dsn):
    def record(conn):
        return conn.execute("SELECT applied_at FROM swipesavvy_meta.feature_flag_settings").fetchall()

    with psycopg.connect(configured_dsn, autocommit=True) as conn:
        before = record(conn)
        assert apply_flag_settings(conn, {"community_feed": (True, 25)}, actor="pulumi:staging", reason="r") == []
        assert record(conn) == before
