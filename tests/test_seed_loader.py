"""The COPY loader on a real PostgreSQL: counts, replace-not-duplicate, all-or-nothing."""

from __future__ import annotations

import datetime
import threading

import psycopg
import pytest

import seed.loader
from dbops.migrations import apply_migrations, load_migrations
from seed.generator import (
    MOCK_ID_BASE,
    MOCK_USER_ID_BASE,
    TABLE_ORDER,
    TABLES,
    SeedParameters,
    dataset_checksum,
    expected_counts,
)
from seed.loader import (
    MANIFEST,
    NOT_MIGRATED,
    SeedError,
    count_mock_rows,
    load_mock_data,
    read_manifest,
    unload_mock_data,
)

SMALL = SeedParameters(scale=0.05)
OTHER = SeedParameters(scale=0.05, rng_seed=7)


@pytest.fixture
def conn(migrated_dsn):
    with psycopg.connect(migrated_dsn, autocommit=True) as connection:
        yield connection


def table_counts(conn) -> dict[str, int]:
    return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLE_ORDER}


def fingerprint(conn) -> dict[str, str]:
    """md5 of every seeded table's full contents (and the manifest): 'the data is as it was'."""
    prints = {}
    for t in TABLE_ORDER:  # identity ids the seeder leaves to the database are not data
        row = "x::text" if "id" in TABLES[t].columns else "(to_jsonb(x) - 'id')::text"
        prints[t] = conn.execute(
            f"SELECT md5(coalesce(string_agg({row}, '|' ORDER BY {row}), '')) FROM {t} x"
        ).fetchone()[0]
    prints["manifest"] = conn.execute(
        f"SELECT md5(coalesce(string_agg(m::text, ''), '')) FROM {MANIFEST} m"
    ).fetchone()[0]
    return prints


def add_foreign_rows(conn) -> None:
    """Rows the seeder did not write, in every table it writes (ids away from the mock range)."""
    conn.execute("""
        INSERT INTO campaigns (id, name, channel, start_date) VALUES (1, 'real campaign', 'email', '2025-01-01');
        INSERT INTO merchants (id, name, category) VALUES (1, 'real merchant', 'grocery');
        INSERT INTO ml_models (id, name, version, model_type) VALUES (1, 'real_model', '1', 'other');
        INSERT INTO ab_tests (id, name, campaign_id, control_config, variant_a_config, variant_b_config)
            VALUES (1, 'real test', 1, '{}', '{}', '{}');
        INSERT INTO ab_test_assignments (test_id, user_id, variant) VALUES (1, 42, 'control');
        INSERT INTO ab_test_results (test_id, variant, metric_name, sample_size, conversions)
            VALUES (1, 'control', 'conversion', 1, 0);
        INSERT INTO campaign_analytics_daily (campaign_id, date, impressions, clicks, conversions, spend, revenue,
            engagement_rate) VALUES (1, '2025-01-02', 10, 1, 0, 1, 0, 0.1);
        INSERT INTO campaign_analytics_segments (campaign_id, segment_name, date, users, conversions, revenue,
            retention_rate) VALUES (1, 'loyal', '2025-01-02', 1, 0, 0, 0.5);
        INSERT INTO user_merchant_affinity (user_id, merchant_id, affinity_score) VALUES (42, 1, 0.5);
        INSERT INTO user_optimal_send_times (user_id, best_hour, best_day_of_week, confidence) VALUES (42, 9, 1, 0.5);
        INSERT INTO campaign_optimizations (campaign_id, model_id, recommendation_type, recommendation,
            expected_lift, confidence) VALUES (1, 1, 'budget', 'keep', 0.1, 0.5);
    """)


def flags_and_audit(conn):
    return (
        conn.execute("SELECT * FROM feature_flags ORDER BY id").fetchall(),
        conn.execute("SELECT * FROM feature_flag_audit_log ORDER BY id").fetchall(),
    )


def test_scale_one_loads_the_runbook_volumes(conn):
    report = load_mock_data(conn, SeedParameters())
    assert report.loaded
    assert report.counts == expected_counts(SeedParameters()) == table_counts(conn)
    runbook = {
        "campaign_analytics_daily": 4_500,
        "campaign_analytics_segments": 27_000,
        "ab_tests": 20,
        "ab_test_assignments": 20_000,
        "user_merchant_affinity": 15_000,
        "user_optimal_send_times": 500,
    }
    assert {t: report.counts[t] for t in runbook} == runbook
    assert report.counts["campaign_optimizations"] >= 100
    assert report.checksum == dataset_checksum(SeedParameters())
    manifest = read_manifest(conn)
    assert manifest.counts == report.counts and manifest.checksum == report.checksum
    assert manifest.params == SeedParameters()
    # Generated columns agree with the counts the generator wrote.
    bad_rates = conn.execute("""SELECT count(*) FROM campaign_analytics_daily
        WHERE click_through_rate <> round(clicks::numeric / nullif(impressions, 0), 6)
           OR conversions > clicks OR clicks > impressions""").fetchone()[0]
    assert bad_rates == 0


def test_identical_parameters_give_identical_database_contents(conn):
    load_mock_data(conn, SMALL)
    first = fingerprint(conn)
    unload_mock_data(conn)
    load_mock_data(conn, SMALL)
    second = fingerprint(conn)
    del first["manifest"], second["manifest"]  # loaded_at differs
    assert first == second


def test_second_seed_changes_nothing(conn):
    load_mock_data(conn, SMALL)
    before = fingerprint(conn)
    xmins = conn.execute("SELECT array_agg(xmin::text ORDER BY id) FROM campaign_analytics_segments").fetchone()
    report = load_mock_data(conn, SMALL)
    assert not report.loaded and report.removed == {}
    assert report.counts == expected_counts(SMALL) and report.checksum == dataset_checksum(SMALL)
    assert fingerprint(conn) == before  # the manifest too: nothing was rewritten
    assert conn.execute("SELECT array_agg(xmin::text ORDER BY id) FROM campaign_analytics_segments").fetchone() == xmins


def test_new_parameters_replace_instead_of_adding(conn):
    load_mock_data(conn, SMALL)
    report = load_mock_data(conn, OTHER)
    assert report.loaded and report.removed == expected_counts(SMALL)
    assert table_counts(conn) == expected_counts(OTHER)
    assert read_manifest(conn).checksum == dataset_checksum(OTHER) != dataset_checksum(SMALL)
    bigger = SeedParameters(scale=0.1, rng_seed=7)
    load_mock_data(conn, bigger)
    assert table_counts(conn) == expected_counts(bigger)


def test_force_and_tampering_reload(conn):
    load_mock_data(conn, SMALL)
    assert load_mock_data(conn, SMALL, force=True).loaded
    conn.execute(f"DELETE FROM user_optimal_send_times WHERE user_id = {MOCK_USER_ID_BASE + 1}")
    report = load_mock_data(conn, SMALL)  # rows missing behind the manifest's back: reload
    assert report.loaded and table_counts(conn) == expected_counts(SMALL)


def test_a_changed_value_reloads_to_the_original_data(conn):
    load_mock_data(conn, SMALL)
    original = fingerprint(conn)
    conn.execute(f"UPDATE user_merchant_affinity SET affinity_score = 0.5 WHERE user_id = {MOCK_USER_ID_BASE + 1}")
    assert count_mock_rows(conn) == expected_counts(SMALL)  # the counts cannot tell
    assert load_mock_data(conn, SMALL).loaded
    restored = fingerprint(conn)
    del original["manifest"], restored["manifest"]  # loaded_at differs
    assert restored == original


def test_rows_it_did_not_seed_and_the_flags_are_untouched(conn):
    add_foreign_rows(conn)
    foreign = table_counts(conn)
    flags = flags_and_audit(conn)
    load_mock_data(conn, SMALL)
    assert table_counts(conn) == {t: foreign[t] + n for t, n in expected_counts(SMALL).items()}
    load_mock_data(conn, OTHER)
    removed = unload_mock_data(conn)
    assert removed == expected_counts(OTHER)
    assert table_counts(conn) == foreign
    assert conn.execute("SELECT model_id FROM campaign_optimizations").fetchall() == [(1,)]
    assert flags_and_audit(conn) == flags
    assert read_manifest(conn) is None
    assert unload_mock_data(conn) == dict.fromkeys(TABLE_ORDER, 0)


def test_progress_sees_every_table(conn):
    calls = []
    load_mock_data(conn, SMALL, progress=lambda table, rows: calls.append((table, rows)))
    finals = {}
    for table, rows in calls:
        assert rows >= finals.get(table, 0)
        finals[table] = rows
    assert finals == expected_counts(SMALL)
    assert list(dict.fromkeys(t for t, _ in calls)) == list(TABLE_ORDER)


class Boom(Exception):
    pass


def test_failure_in_progress_callback_half_way_keeps_previous_data(conn):
    load_mock_data(conn, SMALL)
    before = fingerprint(conn)
    copied = []

    def explode(table, rows):
        copied.append(table)
        if table == "ab_test_assignments":
            raise Boom("injected")

    with pytest.raises(Boom):
        load_mock_data(conn, OTHER, progress=explode)
    assert "campaign_analytics_segments" in copied  # the big tables were already copied
    assert fingerprint(conn) == before
    assert read_manifest(conn).params == SMALL


def test_failure_inside_a_generator_half_way_keeps_previous_data(conn, monkeypatch):
    load_mock_data(conn, SMALL)
    before = fingerprint(conn)
    real_iter_tables = seed.loader.iter_tables

    def failing_iter_tables(params):
        for spec, lines in real_iter_tables(params):
            if spec.name == "user_merchant_affinity":

                def broken(lines=lines):
                    for i, line in enumerate(lines):
                        if i == 200:
                            raise Boom("generator failed")
                        yield line

                lines = broken()
            yield spec, lines

    monkeypatch.setattr(seed.loader, "iter_tables", failing_iter_tables)
    with pytest.raises(Boom):
        load_mock_data(conn, OTHER)
    assert fingerprint(conn) == before


def test_database_error_half_way_is_one_line_and_rolls_back(conn):
    load_mock_data(conn, SMALL)
    # A constraint the next data set breaks only in user_optimal_send_times (table 10 of 11):
    # its COPY fails after nine tables were replaced.
    conn.execute("ALTER TABLE user_optimal_send_times ADD CONSTRAINT no_eight_pm CHECK (best_hour <> 20) NOT VALID")
    before = fingerprint(conn)
    with pytest.raises(SeedError) as raised:
        load_mock_data(conn, SeedParameters(scale=0.1))
    message = str(raised.value)
    assert message.startswith(
        'mock data load failed and was rolled back: new row for relation "user_optimal_send_times" violates check'
    )
    assert "user_optimal_send_times" in message and "\n" not in message
    assert fingerprint(conn) == before


def test_future_anchor_date_fails_cleanly(conn):
    load_mock_data(conn, SMALL)
    before = fingerprint(conn)
    tomorrow = datetime.datetime.now(datetime.UTC).date() + datetime.timedelta(days=2)
    with pytest.raises(SeedError, match=r"anchor date .* is in the future"):
        load_mock_data(conn, SeedParameters(scale=0.05, anchor_date=tomorrow))
    assert fingerprint(conn) == before


def test_anchor_date_today_is_allowed(conn):
    today = conn.execute("SELECT (now() AT TIME ZONE 'UTC')::date").fetchone()[0]
    report = load_mock_data(conn, SeedParameters(scale=0.01, anchor_date=today))
    assert report.loaded
    latest = conn.execute("SELECT max(date) FROM campaign_analytics_daily").fetchone()[0]
    assert latest == today - datetime.timedelta(days=1)


def test_unmigrated_schema_is_refused(empty_dsn):
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        with pytest.raises(SeedError) as raised:
            load_mock_data(conn, SMALL)
        assert str(raised.value) == NOT_MIGRATED
        with pytest.raises(SeedError, match="schema is not migrated"):
            unload_mock_data(conn)
        assert read_manifest(conn) is None
        # Everything but the manifest migration is not enough either.
        apply_migrations(conn, [m for m in load_migrations() if m.version < "007"])
        with pytest.raises(SeedError, match="schema is not migrated"):
            load_mock_data(conn, SMALL)
        assert conn.execute("SELECT count(*) FROM campaigns").fetchone()[0] == 0


def test_needs_an_autocommit_connection(migrated_dsn):
    with psycopg.connect(migrated_dsn) as conn, pytest.raises(SeedError, match="autocommit"):
        load_mock_data(conn, SMALL)


def test_read_only_role_reads_the_manifest_and_cannot_seed(conn, migrated_dsn, as_role):
    # The application role cannot seed either: tests/test_application_limits.py.
    assert load_mock_data(conn, SMALL).loaded
    with psycopg.connect(as_role(migrated_dsn, "swipesavvy_readonly"), autocommit=True) as conn:
        assert read_manifest(conn).params == SMALL
        with pytest.raises(SeedError, match="permission denied"):
            load_mock_data(conn, OTHER)
        with pytest.raises(SeedError, match="permission denied"):
            unload_mock_data(conn)
        assert count_mock_rows(conn) == expected_counts(SMALL)


def test_concurrent_seeders_queue_up(migrated_dsn):
    errors = []

    def seed(params):
        try:
            with psycopg.connect(migrated_dsn, autocommit=True) as conn:
                load_mock_data(conn, params)
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=seed, args=(p,)) for p in (SMALL, OTHER, SeedParameters(scale=0.02))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with psycopg.connect(migrated_dsn, autocommit=True) as conn:
        manifest = read_manifest(conn)
        assert count_mock_rows(conn) == manifest.counts == expected_counts(manifest.params)
        assert table_counts(conn) == manifest.counts


def test_mock_ids_stay_in_their_range(conn):
    load_mock_data(conn, SMALL)
    low = conn.execute("SELECT min(id) FROM campaigns WHERE is_mock").fetchone()[0]
    assert low == MOCK_ID_BASE + 1
    # The identity sequences were not advanced: the application's next id is still 1.
    new_id = conn.execute(
        "INSERT INTO campaigns (name, channel, start_date) VALUES ('n', 'sms', '2025-01-01') RETURNING id"
    ).fetchone()[0]
    assert new_id == 1


# --- Guards a mutation run found untested (issue 22) -------------------------------------------


def test_counts_that_differ_from_the_plan_are_refused_and_rolled_back(conn, monkeypatch):
    load_mock_data(conn, SMALL)
    before = fingerprint(conn)
    planned = dict(expected_counts(OTHER), ml_models=expected_counts(OTHER)["ml_models"] + 1)
    monkeypatch.setattr(seed.loader, "expected_counts", lambda params: planned)
    with pytest.raises(SeedError) as raised:
        load_mock_data(conn, OTHER)
    generated = expected_counts(OTHER)["ml_models"]
    assert str(raised.value) == (
        f"generated row counts differ from the plan: ml_models {generated} (planned {generated + 1})"
    )
    assert fingerprint(conn) == before


def test_rows_that_copy_did_not_store_are_refused_and_rolled_back(conn):
    load_mock_data(conn, SMALL)
    before = fingerprint(conn)
    # A BEFORE INSERT trigger returning NULL makes COPY skip the row silently.
    conn.execute("""
        CREATE FUNCTION swallow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
        CREATE TRIGGER swallow BEFORE INSERT ON ml_models FOR EACH ROW EXECUTE FUNCTION swallow();
    """)
    with pytest.raises(SeedError) as raised:
        load_mock_data(conn, OTHER)
    assert str(raised.value) == f"ml_models: COPY stored 0 of {expected_counts(OTHER)['ml_models']} rows"
    assert fingerprint(conn) == before


def test_progress_is_throttled_to_the_interval(conn, monkeypatch):
    calls = []
    monkeypatch.setattr(seed.loader, "PROGRESS_INTERVAL_S", 3600.0)
    load_mock_data(conn, SMALL, progress=lambda table, rows: calls.append((table, rows)))
    # Nothing between an hour's reports: only each table's final count.
    assert calls == list(expected_counts(SMALL).items())

    calls.clear()
    monkeypatch.setattr(seed.loader, "PROGRESS_INTERVAL_S", 0.0)
    monkeypatch.setattr(seed.loader, "CHUNK_LINES", 100)
    load_mock_data(conn, OTHER, progress=lambda table, rows: calls.append((table, rows)))
    segments = [rows for table, rows in calls if table == "campaign_analytics_segments"]
    total = expected_counts(OTHER)["campaign_analytics_segments"]
    # Every chunk is reported when the interval has always passed, then the final count again.
    assert segments == [min(rows, total) for rows in range(100, total + 100, 100)] + [total]


def test_manifest_records_the_load_duration(conn):
    report = load_mock_data(conn, SMALL)
    duration_s = read_manifest(conn).duration_ms / 1000
    # Measured inside the load, just before the manifest is written: a little less than the total.
    assert 0.5 * report.elapsed_seconds <= duration_s <= report.elapsed_seconds


def _zone_with_another_date() -> tuple[str, int]:
    """A time zone whose date differs from UTC's right now, and by how many days."""
    hour = datetime.datetime.now(datetime.UTC).hour
    return ("Etc/GMT-14", 1) if hour >= 11 else ("Etc/GMT+12", -1)


def test_session_time_zone_and_date_style_do_not_change_the_load(conn, migrated_dsn):
    zone, _ = _zone_with_another_date()
    name = conn.execute("SELECT current_database()").fetchone()[0]
    conn.execute(f"ALTER DATABASE {name} SET timezone = '{zone}'")
    conn.execute(f"ALTER DATABASE {name} SET datestyle = 'SQL, DMY'")
    with psycopg.connect(migrated_dsn, autocommit=True) as odd:
        assert odd.execute("SHOW datestyle").fetchone()[0] == "SQL, DMY"
        load_mock_data(odd, SMALL)
    with psycopg.connect(migrated_dsn, autocommit=True, options="-c datestyle=ISO,YMD -c timezone=UTC") as plain:
        # The digests taken under 'SQL, DMY' in a far time zone match the rows read under ISO/UTC:
        # the same data set is recognised as loaded and intact.
        assert load_mock_data(plain, SMALL).loaded is False


def test_future_is_judged_in_utc_whatever_the_session_time_zone(conn, migrated_dsn):
    zone, shift = _zone_with_another_date()
    name = conn.execute("SELECT current_database()").fetchone()[0]
    conn.execute(f"ALTER DATABASE {name} SET timezone = '{zone}'")
    utc_today = datetime.datetime.now(datetime.UTC).date()
    with psycopg.connect(migrated_dsn, autocommit=True) as local:
        assert local.execute("SELECT current_date").fetchone()[0] == utc_today + datetime.timedelta(days=shift)
        # UTC's today loads although the session's date may be yesterday; UTC's tomorrow is
        # refused although the session's date may already be tomorrow.
        assert load_mock_data(local, SeedParameters(scale=0.05, anchor_date=utc_today)).loaded
        with pytest.raises(SeedError, match=r"is in the future"):
            load_mock_data(local, SeedParameters(scale=0.05, anchor_date=utc_today + datetime.timedelta(days=1)))
