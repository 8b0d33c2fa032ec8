"""The DatabaseSchema and FeatureFlagSettings dynamic providers, called directly against a
real PostgreSQL the way the Pulumi engine calls them (plain dicts in, outputs back)."""

from __future__ import annotations

import base64

import dill
import psycopg
import pytest
from db_helpers import connection_of
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.runtime.rpc import UNKNOWN

from components.feature_flags import FeatureFlagSettingsProvider
from components.schema import DatabaseSchemaProvider
from dbops.flags import UnknownFlag
from dbops.migrations import MigrationError, load_migrations, migration_checksums

# Passwords (SWIPESAVVY_TEST_DSN may have one) are read from Secrets Manager, as in RDS.
pytestmark = pytest.mark.usefixtures("secrets_manager")


def schema_props(dsn: str, **overrides) -> dict:
    props = {
        "connection": connection_of(dsn),
        "database_id": "db-TEST/swipesavvy",
        "migrations": migration_checksums(load_migrations()),
        "allow_data_destruction": False,
        "applied": None,
    }
    return {**props, **overrides}


def table_count(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'").fetchone()[
            0
        ]


def test_create_applies_every_migration(empty_dsn):
    result = DatabaseSchemaProvider().create(schema_props(empty_dsn))
    assert result.id == "db-TEST/swipesavvy"
    assert result.outs["applied"] == sorted(migration_checksums(load_migrations()))
    assert table_count(empty_dsn) == 16


def test_diff_unchanged_is_no_change(empty_dsn):
    outs = DatabaseSchemaProvider().create(schema_props(empty_dsn)).outs
    diff = DatabaseSchemaProvider().diff("id", outs, schema_props(empty_dsn))
    assert diff.changes is False and diff.replaces == []


def test_diff_reports_pending_migrations(empty_dsn, capsys):
    outs = DatabaseSchemaProvider().create(schema_props(empty_dsn)).outs
    news = schema_props(empty_dsn, migrations={**outs["migrations"], "099_add_index": "f" * 64})
    capsys.readouterr()
    diff = DatabaseSchemaProvider().diff("id", outs, news)
    assert diff.changes is True and diff.replaces == []
    assert "1 migration(s) pending: 099_add_index" in capsys.readouterr().out


def test_diff_refuses_an_edited_applied_migration(empty_dsn):
    outs = DatabaseSchemaProvider().create(schema_props(empty_dsn)).outs
    news = schema_props(empty_dsn, migrations={**outs["migrations"], "003_reference_and_feature_flags": "0" * 64})
    with pytest.raises(MigrationError, match="003_reference_and_feature_flags.sql changed after it was applied"):
        DatabaseSchemaProvider().diff("id", outs, news)


def test_diff_with_unknown_connection_does_not_connect():
    olds = schema_props("host=127.0.0.1 port=1 dbname=x user=y", applied=["001_roles_schemas_and_privileges"])
    news = schema_props("host=127.0.0.1 port=1 dbname=x user=y", connection=UNKNOWN)
    diff = DatabaseSchemaProvider().diff("id", olds, news)  # port 1: any connection attempt would fail
    assert diff.changes is True and diff.replaces == []


def test_diff_on_another_database_replaces_delete_first(empty_dsn):
    outs = DatabaseSchemaProvider().create(schema_props(empty_dsn)).outs
    diff = DatabaseSchemaProvider().diff("id", outs, schema_props(empty_dsn, database_id="db-OTHER/swipesavvy"))
    assert diff.replaces == ["database_id"] and diff.delete_before_replace is True


def test_update_applies_only_what_is_pending(empty_dsn):
    provider = DatabaseSchemaProvider()
    outs = provider.create(schema_props(empty_dsn)).outs
    with psycopg.connect(empty_dsn) as conn:
        before = conn.execute("SELECT max(applied_at) FROM swipesavvy_meta.schema_migrations").fetchone()[0]
    result = provider.update("id", outs, schema_props(empty_dsn))
    assert result.outs["applied"] == outs["applied"]
    with psycopg.connect(empty_dsn) as conn:
        after = conn.execute("SELECT max(applied_at) FROM swipesavvy_meta.schema_migrations").fetchone()[0]
    assert after == before


@pytest.mark.parametrize("provider_class", [DatabaseSchemaProvider, FeatureFlagSettingsProvider])
def test_a_new_reader_is_an_update_that_only_records_it(provider_class, monkeypatch):
    """State from before the read-only function had no ``reader``: the first `pulumi up` of
    this version records it; nothing runs in the database (no operation is called)."""
    reader = "arn:aws:lambda:us-east-1:123456789012:function:swipesavvy-staging-db-reader"
    olds = {"connection": {"host": "db"}, "database_id": "db-TEST/x", "operator": "arn:op", "flags": {}, "applied": []}
    news = {**olds, "reader": reader, "migrations": {}}
    olds["migrations"] = {}
    monkeypatch.setattr("components.dynamic.run_through", lambda *_a, **_k: pytest.fail("touched the database"))
    provider = provider_class()
    diff = provider.diff("id", olds, news)
    assert diff.changes is True and diff.replaces == []
    assert provider.update("id", olds, news).outs["reader"] == reader


def test_update_refuses_when_sql_changed_since_preview(empty_dsn):
    news = schema_props(empty_dsn, migrations={"001_roles_schemas_and_privileges": "0" * 64})
    with pytest.raises(MigrationError, match="differs from the planned migrations"):
        DatabaseSchemaProvider().update("id", {}, news)


def test_delete_keeps_data_unless_destruction_is_allowed(empty_dsn):
    provider = DatabaseSchemaProvider()
    outs = provider.create(schema_props(empty_dsn)).outs
    provider.delete("id", outs)
    assert table_count(empty_dsn) == 16
    provider.delete("id", {**outs, "allow_data_destruction": True})
    assert table_count(empty_dsn) == 0
    with psycopg.connect(empty_dsn) as conn:
        assert conn.execute("SELECT to_regnamespace('swipesavvy_meta')").fetchone()[0] is None


@pytest.mark.parametrize("provider_class", [DatabaseSchemaProvider, FeatureFlagSettingsProvider])
def test_provider_serialization_round_trips(provider_class):
    """What the engine stores in __provider must come back as a working provider."""
    restored = dill.loads(base64.b64decode(serialize_provider(provider_class())))
    assert type(restored).__name__ == provider_class.__name__
    assert restored.work_inputs == provider_class.work_inputs


def flag_props(dsn: str, flags: dict) -> dict:
    return {
        "connection": connection_of(dsn),
        "database_id": "db-TEST/swipesavvy",
        "flags": flags,
        "actor": "pulumi:staging",
    }


def test_feature_flag_settings_apply_and_audit(migrated_dsn):
    provider = FeatureFlagSettingsProvider()
    flags = {"community_feed": {"enabled": True, "rollout_percentage": 25}}
    outs = provider.create(flag_props(migrated_dsn, flags)).outs
    with psycopg.connect(migrated_dsn) as conn:
        assert conn.execute(
            "SELECT enabled, rollout_percentage FROM feature_flags WHERE key = 'community_feed'"
        ).fetchone() == (True, 25)
        assert conn.execute(
            "SELECT changed_by, reason FROM feature_flag_audit_log WHERE flag_key = 'community_feed'"
            " AND action = 'UPDATE'"
        ).fetchone() == ("pulumi:staging", "stack config swipesavvy:featureFlags")
    assert provider.diff("id", outs, flag_props(migrated_dsn, flags)).changes is False
    changed = {"community_feed": {"enabled": False, "rollout_percentage": 0}}
    assert provider.diff("id", outs, flag_props(migrated_dsn, changed)).changes is True
    provider.update("id", outs, flag_props(migrated_dsn, changed))
    with psycopg.connect(migrated_dsn) as conn:
        assert conn.execute("SELECT enabled FROM feature_flags WHERE key = 'community_feed'").fetchone() == (False,)


def test_feature_flag_settings_unknown_key_changes_nothing(migrated_dsn):
    flags = {
        "dark_mode": {"enabled": False, "rollout_percentage": 0},
        "no_such_flag": {"enabled": True, "rollout_percentage": 100},
    }
    with pytest.raises(UnknownFlag, match="no_such_flag"):
        FeatureFlagSettingsProvider().create(flag_props(migrated_dsn, flags))
    with psycopg.connect(migrated_dsn) as conn:
        assert conn.execute("SELECT enabled FROM feature_flags WHERE key = 'dark_mode'").fetchone() == (True,)
