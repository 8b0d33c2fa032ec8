"""``python -m ops db seed`` / ``db unseed`` and the phase 2.3 checks of ``python -m ops verify``."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from test_operator_handler import release_when_waited_for

from dbops.connection import APPLICATION_NAME, describe
from dbops.migrations import ADVISORY_LOCK_KEY
from ops.cli import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_LOCKED, EXIT_OK, EXIT_USAGE, main
from seed.generator import MOCK_ID_BASE, MOCK_USER_ID_BASE, TABLE_ORDER, SeedParameters, expected_counts
from seed.loader import MANIFEST, SEED_LOCK_KEY, load_mock_data

ROOT = Path(__file__).resolve().parent.parent
SEED_CHECK_NAMES = (
    "seed_manifest",
    "seed_counts",
    "seed_content",
    "seed_volumes",
    "seed_analytics_window",
    "seed_no_future_dates",
    "seed_variant_balance",
    "seed_ab_results",
    "seed_send_times",
)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_seed_prints_counts_and_time_then_changes_nothing(migrated_dsn, capsys):
    code, out, err = run(capsys, "db", "seed", "--dsn", migrated_dsn, "--scale", "0.05", "--rng-seed", "3")
    assert code == EXIT_OK, err
    assert err == ""  # not a terminal: no progress line
    expected = expected_counts(SeedParameters(scale=0.05, rng_seed=3))
    lines = out.splitlines()
    assert lines[0].split() == ["table", "rows"]
    for table, line in zip(TABLE_ORDER, lines[1:], strict=False):
        assert line.split() == [table, f"{expected[table]:,}"]
    assert lines[len(TABLE_ORDER) + 1].split() == ["total", f"{sum(expected.values()):,}"]
    assert "seeded" in lines[-1] and "scale 0.05, rng seed 3" in lines[-1]
    assert re.search(r" in \d+\.\d\d s; checksum [0-9a-f]{12}$", lines[-1])

    code, out, _ = run(capsys, "db", "seed", "--dsn", migrated_dsn, "--scale", "0.05", "--rng-seed", "3")
    assert code == EXIT_OK
    assert "nothing changed" in out.splitlines()[-1]
    code, out, _ = run(capsys, "db", "seed", "--dsn", migrated_dsn, "--scale", "0.05", "--rng-seed", "3", "--force")
    assert code == EXIT_OK
    assert f"replacing {sum(expected.values()):,} earlier mock rows" in out


def test_progress_line_only_on_a_terminal(migrated_dsn, capsys, monkeypatch):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    code, _, err = run(capsys, "db", "seed", "--dsn", migrated_dsn, "--scale", "0.02")
    assert code == EXIT_OK
    assert "\rseeding campaign_optimizations:" in err
    assert err.endswith("\r")  # the line is cleared before the table is printed


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--scale", "0", "--scale must be a number from 0.01 to 100, got 0"),
        ("--scale", "1000", "--scale must be a number from 0.01 to 100, got 1000"),
        ("--scale", "0.001", "--scale must be a number from 0.01 to 100, got 0.001"),
        ("--scale", "lots", "--scale must be a number, got 'lots'"),
        ("--rng-seed", "-5", "--rng-seed must be an integer from 0 to"),
        ("--anchor-date", "28/12/2025", "--anchor-date must be a date YYYY-MM-DD, got '28/12/2025'"),
        ("--dataset-version", "0", "--dataset-version must be an integer from 1 to 1000000, got 0"),
    ],
)
def test_bad_arguments_are_one_line_usage_errors(capsys, option, value, message):
    code, out, err = run(capsys, "db", "seed", "--dsn", "dbname=unused", option, value)
    assert code == EXIT_USAGE
    assert err.startswith(f"error: {message}")
    assert len(err.strip().splitlines()) == 1 and out == ""


def test_bad_scale_from_the_module_entry_point(empty_dsn):
    for scale in ("0", "1000"):
        result = subprocess.run(
            [sys.executable, "-m", "ops", "db", "seed", "--dsn", empty_dsn, "--scale", scale],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == EXIT_USAGE
        assert result.stderr.strip().splitlines() == [f"error: --scale must be a number from 0.01 to 100, got {scale}"]


def test_unmigrated_database_is_one_line(empty_dsn, capsys):
    code, _, err = run(capsys, "db", "seed", "--dsn", empty_dsn)
    assert code == EXIT_FAILED
    assert err.strip().splitlines() == ["error: schema is not migrated: run `python -m ops db migrate` first"]


def test_future_anchor_date_is_one_line(migrated_dsn, capsys):
    code, _, err = run(capsys, "db", "seed", "--dsn", migrated_dsn, "--anchor-date", "2999-01-01")
    assert code == EXIT_USAGE  # refused before connecting (the loader refuses it too, by the database's date)
    assert len(err.strip().splitlines()) == 1 and "never the future, got '2999-01-01'" in err


def test_unseed_removes_the_mock_rows(migrated_dsn, capsys):
    run(capsys, "db", "seed", "--dsn", migrated_dsn, "--scale", "0.02")
    code, out, _ = run(capsys, "db", "unseed", "--dsn", migrated_dsn)
    total = sum(expected_counts(SeedParameters(scale=0.02)).values())
    assert code == EXIT_OK and f"removed {total:,} mock rows" in out
    with psycopg.connect(migrated_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM campaigns").fetchone()[0] == 0


def test_verify_passes_on_seeded_data(migrated_dsn, capsys):
    assert run(capsys, "db", "seed", "--dsn", migrated_dsn)[0] == EXIT_OK  # scale 1: the runbook's numbers
    code, out, err = run(capsys, "verify", "--dsn", migrated_dsn, "--require-seed")
    assert code == EXIT_OK, out + err
    for name in ("tables", "feature_flags", *SEED_CHECK_NAMES):
        assert f"✓ {name} " in out
    assert (
        "campaign_analytics_daily 4,500, campaign_analytics_segments 27,000, ab_tests 20, "
        "ab_test_assignments 20,000, user_merchant_affinity 15,000, user_optimal_send_times 500" in out
    )


def test_verify_without_seed_passes_unless_required(migrated_dsn, capsys):
    code, out, _ = run(capsys, "verify", "--dsn", migrated_dsn)
    assert code == EXIT_OK
    assert "✓ seed_manifest          no mock data seeded" in out
    code, out, err = run(capsys, "verify", "--dsn", migrated_dsn, "--require-seed")
    assert code == EXIT_FAILED
    assert "✗ seed_manifest" in out
    assert err.strip() == "error: verify failed: seed_manifest"


@pytest.mark.parametrize(
    ("breakage", "failing_checks"),
    [
        (
            f"DELETE FROM campaign_analytics_daily WHERE campaign_id = {MOCK_ID_BASE + 1}"
            " AND date = (SELECT max(date) FROM campaign_analytics_daily)",
            {"seed_counts", "seed_content", "seed_analytics_window"},
        ),
        (
            f"DELETE FROM user_optimal_send_times WHERE user_id = {MOCK_USER_ID_BASE + 3}",
            {"seed_counts", "seed_content", "seed_send_times"},
        ),
        (
            f"UPDATE ab_test_assignments SET variant = 'control' WHERE test_id = {MOCK_ID_BASE + 1}"
            " AND variant = 'variant_b' AND user_id % 5 = 0",
            {"seed_content", "seed_variant_balance", "seed_ab_results"},
        ),
        (
            f"UPDATE campaign_analytics_segments SET date = date - 200 WHERE campaign_id = {MOCK_ID_BASE + 2}"
            " AND segment_name = 'loyal' AND date = (SELECT min(date) FROM campaign_analytics_segments)",
            {"seed_content", "seed_analytics_window"},
        ),
        (f"UPDATE {MANIFEST} SET counts = jsonb_set(counts, '{{ab_tests}}', '19')", {"seed_counts", "seed_volumes"}),
        (
            f"ALTER TABLE campaign_analytics_daily DROP CONSTRAINT campaign_analytics_daily_date_check;"
            f" UPDATE campaign_analytics_daily SET date = current_date + 3 WHERE campaign_id = {MOCK_ID_BASE + 1}"
            " AND date = (SELECT min(date) FROM campaign_analytics_daily)",
            {"seed_content", "seed_no_future_dates", "seed_analytics_window"},
        ),
    ],
    ids=[
        "daily-row-deleted",
        "send-time-deleted",
        "variants-unbalanced",
        "segment-moved",
        "manifest-edited",
        "future-date",
    ],
)
def test_verify_fails_naming_the_check(migrated_dsn, capsys, breakage, failing_checks):
    with psycopg.connect(migrated_dsn, autocommit=True) as conn:
        load_mock_data(conn, SeedParameters(scale=0.05))
        conn.execute(breakage)
    code, out, err = run(capsys, "verify", "--dsn", migrated_dsn)
    assert code == EXIT_FAILED
    failed = {line.split()[1] for line in out.splitlines() if line.startswith("✗")}
    assert failed == failing_checks
    assert err.strip().startswith("error: verify failed:") and len(err.strip().splitlines()) == 1
    assert all(name in err for name in failing_checks)


# --- waiting for another run's lock, Ctrl-C ----------------------------------------------------


def _seed_state(dsn: str) -> tuple[int, int]:
    """(mock campaigns, manifest rows)."""
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            f"SELECT (SELECT count(*) FROM campaigns WHERE is_mock), (SELECT count(*) FROM {MANIFEST})"
        ).fetchone()


@pytest.mark.parametrize("command", [["db", "seed", "--scale", "0.02"], ["db", "unseed"]])
def test_seeder_says_it_waits_for_the_seed_lock_then_gives_up(migrated_dsn, capsys, command):
    with psycopg.connect(migrated_dsn, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (SEED_LOCK_KEY,))
        started = time.monotonic()
        code, out, err = run(capsys, *command, "--dsn", migrated_dsn, "--lock-timeout", "0.5")
        waited = time.monotonic() - started
    assert code == EXIT_LOCKED and out == ""
    waiting, error = err.strip().splitlines()
    assert waiting.startswith("waiting up to 0.5 s for another seeder holding the seed lock on ")
    assert error.startswith("error: gave up after 0.5 s: another seeder still holds the seed lock on ")
    assert "--lock-timeout" in error
    assert waited >= 0.5  # and it answered while the lock was still held: the wait was bounded
    assert _seed_state(migrated_dsn) == (0, 0)


def test_seeder_proceeds_when_the_other_releases_the_lock(migrated_dsn, capsys):
    with psycopg.connect(migrated_dsn, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (SEED_LOCK_KEY,))
        release = release_when_waited_for(migrated_dsn, other, SEED_LOCK_KEY)  # not after a delay
        code, out, err = run(capsys, "db", "seed", "--dsn", migrated_dsn, "--scale", "0.02", "--lock-timeout", "600")
        release.join()
    assert code == EXIT_OK, err
    assert err.startswith("waiting up to 600 s for another seeder") and len(err.strip().splitlines()) == 1
    assert _seed_state(migrated_dsn)[1] == 1


def test_lock_timeout_zero_gives_up_at_once_on_the_migration_lock(migrated_dsn, capsys):
    with psycopg.connect(migrated_dsn, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))
        code, _, err = run(capsys, "db", "migrate", "--dsn", migrated_dsn, "--lock-timeout", "0")
    assert code == EXIT_LOCKED
    assert err.strip().splitlines() == [
        f"error: gave up after 0 s: another migrate run still holds the migration lock on {describe(migrated_dsn)}; "
        "nothing was changed (fix: retry when it has finished, or raise --lock-timeout)"
    ]


# A manifest row of another run, inserted and not committed by the test: the seed's own
# manifest INSERT (its transaction's last statement) waits for it on the primary key.
_HELD_MANIFEST = (
    f"INSERT INTO {MANIFEST} (scale, rng_seed, anchor_date, dataset_version, generator_version, counts, checksum,"
    " duration_ms) VALUES (1, 0, '2026-01-01', 1, 1, '{}', repeat('0', 64), 0)"
)
HANG_GUARD_S = 600  # only so that a hung command fails the test instead of CI; never reached when it works


def test_ctrl_c_during_a_seed_rolls_it_back(migrated_dsn):
    """Ctrl-C while the seed is held mid-transaction (every row copied, its manifest INSERT
    waiting on a row the test holds): the whole load is rolled back. The seed is signalled
    when the server shows it waiting there, however long it took to get there."""
    with psycopg.connect(migrated_dsn) as holder:  # a transaction: the row stays uncommitted
        holder.execute(_HELD_MANIFEST)
        seeder = subprocess.Popen(
            [sys.executable, "-m", "ops", "db", "seed", "--dsn", migrated_dsn, "--scale", "0.02"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            _wait_until_waiting_on_the_manifest(migrated_dsn, seeder)
            seeder.send_signal(signal.SIGINT)
            out, err = seeder.communicate(timeout=HANG_GUARD_S)
        finally:
            seeder.kill()
        holder.rollback()
    assert seeder.returncode == EXIT_INTERRUPTED, err
    assert err.strip().splitlines() == ["error: interrupted: the transaction in progress was rolled back"]
    assert out == ""
    assert _seed_state(migrated_dsn) == (0, 0)


def _wait_until_waiting_on_the_manifest(dsn: str, seeder: subprocess.Popen) -> None:
    """Until the seeder's manifest INSERT waits for a lock (it then has copied every row)."""
    deadline = time.monotonic() + HANG_GUARD_S
    with psycopg.connect(dsn, autocommit=True) as conn:
        while seeder.poll() is None and time.monotonic() < deadline:
            waiting = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = %s"
                f" AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO {MANIFEST}%%'",
                (APPLICATION_NAME,),
            ).fetchone()[0]
            if waiting:
                return
            time.sleep(0.05)
    seeder.kill()
    pytest.fail(f"the seeder never reached its manifest INSERT: {seeder.communicate()[1][-2000:]}")
