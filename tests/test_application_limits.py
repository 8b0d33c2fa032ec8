"""What the application's group role (swipesavvy_readwrite, joined by swipesavvy_backend)
may not change: the deployment's records, the flags' existence, the audit log's login."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors

from dbops.flags import apply_flag_settings
from seed.generator import SeedParameters
from seed.loader import MANIFEST, SeedError, load_mock_data, read_manifest, unload_mock_data

SMALL = SeedParameters(scale=0.02)


@pytest.fixture
def app(migrated_dsn, as_role):
    """An autocommit connection as a member of swipesavvy_readwrite, after a deploy that
    seeded and applied a flag setting (as `pulumi up` does, as the deploying login)."""
    with psycopg.connect(migrated_dsn, autocommit=True) as deployer:
        load_mock_data(deployer, SMALL)
        apply_flag_settings(deployer, {"community_feed": (True, 25)}, actor="pulumi:staging", reason="stack")
    with psycopg.connect(as_role(migrated_dsn, "swipesavvy_readwrite"), autocommit=True) as conn:
        yield conn


@pytest.mark.parametrize(
    "statement",
    [
        f"DELETE FROM {MANIFEST}",
        f"UPDATE {MANIFEST} SET checksum = repeat('0', 64)",
        "DELETE FROM swipesavvy_meta.schema_migrations",
        "UPDATE swipesavvy_meta.schema_migrations SET checksum = 'x'",
        "INSERT INTO swipesavvy_meta.schema_migrations (version, name, checksum, duration_ms) VALUES ('999', 'x', 'x', 0)",
        "DELETE FROM swipesavvy_meta.feature_flag_settings",
        "UPDATE swipesavvy_meta.feature_flag_settings SET rollout_percentage = 50",
        "INSERT INTO swipesavvy_meta.feature_flag_settings (key, enabled, rollout_percentage, actor)"
        " VALUES ('dark_mode', false, 0, 'me')",
    ],
    ids=[
        "manifest-delete",
        "manifest-update",
        "ledger-delete",
        "ledger-update",
        "ledger-insert",
        "settings-delete",
        "settings-update",
        "settings-insert",
    ],
)
def test_application_cannot_change_the_deployment_records(app, statement):
    with pytest.raises(errors.InsufficientPrivilege):
        app.execute(statement)


def test_application_reads_the_records_verify_needs(app):
    assert read_manifest(app).params == SMALL
    assert app.execute("SELECT count(*) FROM swipesavvy_meta.feature_flag_settings").fetchone()[0] == 1


def test_only_the_deploying_login_seeds_and_unseeds(app):
    with pytest.raises(SeedError, match="permission denied for table mock_data_seed"):
        load_mock_data(app, SeedParameters(scale=0.03))
    with pytest.raises(SeedError, match="permission denied for table mock_data_seed"):
        unload_mock_data(app)
    assert read_manifest(app).params == SMALL


def test_application_cannot_delete_flags_but_creates_and_changes_them(app):
    app.execute("INSERT INTO feature_flags (key, name, category) VALUES ('app_made', 'App made', 'Rollout')")
    app.execute("UPDATE feature_flags SET enabled = true, rollout_percentage = 5 WHERE key = 'app_made'")
    for key in ("dark_mode", "community_feed", "app_made"):
        with pytest.raises(errors.InsufficientPrivilege):
            app.execute("DELETE FROM feature_flags WHERE key = %s", (key,))
    assert app.execute("SELECT count(*) FROM feature_flags").fetchone()[0] == 11


def test_audit_log_records_the_real_login_next_to_the_claimed_actor(app):
    login = app.execute("SELECT session_user").fetchone()[0]
    with app.transaction():
        app.execute("SELECT set_config('swipesavvy.actor', 'alice@swipesavvy.com', true)")
        app.execute("UPDATE feature_flags SET enabled = false WHERE key = 'tier_progress_bar'")
    app.execute("UPDATE feature_flags SET enabled = true WHERE key = 'tier_progress_bar'")
    entries = app.execute(
        "SELECT changed_by, session_login FROM feature_flag_audit_log"
        " WHERE flag_key = 'tier_progress_bar' AND action = 'TOGGLE' ORDER BY id"
    ).fetchall()
    assert entries == [("alice@swipesavvy.com", login), (login, login)]
    deployed = app.execute(
        "SELECT changed_by, session_login FROM feature_flag_audit_log WHERE flag_key = 'community_feed'"
        " AND action <> 'CREATE'"
    ).fetchall()
    assert [changed_by for changed_by, _ in deployed] == ["pulumi:staging"]
    assert deployed[0][1] not in (None, login)  # the deploying login, not the application
