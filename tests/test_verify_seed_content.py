"""``verify`` checks the mock data's content against the manifest, reports mock rows
without one, and a plain ``db seed`` repairs what it reports."""

from __future__ import annotations

import time

import psutil
import psycopg
import pytest

from dbops.verify import check_seed_content, run_checks, seed_checks
from ops.cli import EXIT_FAILED, EXIT_OK, main
from seed.generator import MOCK_ID_BASE, MOCK_USER_ID_BASE, SeedParameters
from seed.loader import MANIFEST, content_digests, load_mock_data

SEED_ARGS = ("--scale", "0.05", "--rng-seed", "3")


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def failed_checks(out: str) -> set[str]:
    return {line.split()[1] for line in out.splitlines() if line.startswith("✗")}


@pytest.fixture
def seeded_dsn(migrated_dsn, capsys):
    assert run(capsys, "db", "seed", "--dsn", migrated_dsn, *SEED_ARGS)[0] == EXIT_OK
    return migrated_dsn


def tamper(dsn: str, statement: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(statement)


@pytest.mark.parametrize(
    ("statement", "table"),
    [
        (
            f"UPDATE campaign_analytics_daily SET revenue = revenue + 1 WHERE campaign_id = {MOCK_ID_BASE + 1}"
            " AND date = (SELECT min(date) FROM campaign_analytics_daily)",
            "campaign_analytics_daily",
        ),
        (f"UPDATE ml_models SET metrics = '{{\"auc\": 0.99}}' WHERE id = {MOCK_ID_BASE + 1}", "ml_models"),
        (
            # Two rows swap a value: every count and every aggregate stays the same.
            "UPDATE user_optimal_send_times s SET best_hour = o.best_hour FROM user_optimal_send_times o"
            f" WHERE (s.user_id, o.user_id) IN (({MOCK_USER_ID_BASE + 1}, {MOCK_USER_ID_BASE + 2}),"
            f" ({MOCK_USER_ID_BASE + 2}, {MOCK_USER_ID_BASE + 1}))",
            "user_optimal_send_times",
        ),
    ],
    ids=["number", "json", "swapped-values"],
)
def test_changed_values_fail_verify_and_a_plain_reseed_repairs_them(seeded_dsn, capsys, statement, table):
    tamper(seeded_dsn, statement)
    code, out, err = run(capsys, "verify", "--dsn", seeded_dsn)
    assert code == EXIT_FAILED
    assert failed_checks(out) == {"seed_content"}
    assert f"mock rows differ from the manifest in {table}:" in out
    assert "`python -m ops db seed --scale 0.05 --rng-seed 3 --anchor-date 2025-12-28 --dataset-version 1`" in out

    code, out, _ = run(capsys, "db", "seed", "--dsn", seeded_dsn, *SEED_ARGS)
    assert code == EXIT_OK and "nothing changed" not in out and "replacing" in out
    code, out, err = run(capsys, "verify", "--dsn", seeded_dsn, "--require-seed")
    assert code == EXIT_OK, out + err


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ("campaigns", f"id = {MOCK_ID_BASE + 1}"),
        ("merchants", f"id = {MOCK_ID_BASE + 2}"),
        ("ml_models", f"id = {MOCK_ID_BASE + 1}"),
        ("user_optimal_send_times", f"user_id = {MOCK_USER_ID_BASE + 1}"),
    ],
)
def test_a_mock_row_unmarked_by_hand_is_repaired_by_the_reseed_verify_names(seeded_dsn, capsys, table, key):
    """Rows in the reserved mock id range are the seeder's whatever their is_mock says: the
    plain reseed verify advises replaces them instead of failing on a duplicate key."""
    tamper(seeded_dsn, f"UPDATE {table} SET is_mock = false WHERE {key}")
    code, out, _ = run(capsys, "verify", "--dsn", seeded_dsn)
    assert code == EXIT_FAILED and failed_checks(out) == {"seed_content"}
    advice = "`python -m ops db seed --scale 0.05 --rng-seed 3 --anchor-date 2025-12-28 --dataset-version 1`"
    assert f"mock rows differ from the manifest in {table}: {advice} reloads them" in out

    code, out, err = run(capsys, "db", "seed", "--dsn", seeded_dsn, *SEED_ARGS)
    assert code == EXIT_OK, err
    code, out, err = run(capsys, "verify", "--dsn", seeded_dsn, "--require-seed")
    assert code == EXIT_OK, out + err
    with psycopg.connect(seeded_dsn) as conn:
        assert conn.execute(f"SELECT is_mock FROM {table} WHERE {key}").fetchone() == (True,)


def test_mock_rows_without_a_manifest_fail_verify_until_reseeded(seeded_dsn, capsys):
    tamper(seeded_dsn, f"DELETE FROM {MANIFEST}")
    code, out, _ = run(capsys, "verify", "--dsn", seeded_dsn)
    assert code == EXIT_FAILED
    assert failed_checks(out) == {"seed_manifest"}
    assert "no manifest, yet" in out and "mock rows are loaded" in out

    assert run(capsys, "db", "seed", "--dsn", seeded_dsn, *SEED_ARGS)[0] == EXIT_OK
    assert run(capsys, "verify", "--dsn", seeded_dsn, "--require-seed")[0] == EXIT_OK


def test_a_manifest_without_digests_fails_verify_until_reseeded(seeded_dsn, capsys):
    tamper(seeded_dsn, f"UPDATE {MANIFEST} SET content_digests = NULL")  # as loaded before migration 009
    code, out, _ = run(capsys, "verify", "--dsn", seeded_dsn)
    assert code == EXIT_FAILED and failed_checks(out) == {"seed_content"}
    assert "predates content digests" in out
    code, out, _ = run(capsys, "db", "seed", "--dsn", seeded_dsn, *SEED_ARGS)
    assert "nothing changed" not in out
    assert run(capsys, "verify", "--dsn", seeded_dsn)[0] == EXIT_OK


def test_digests_do_not_depend_on_the_session(seeded_dsn):
    with psycopg.connect(seeded_dsn, autocommit=True) as conn:
        first = content_digests(conn)
        conn.execute("SET timezone = 'Pacific/Auckland'; SET datestyle = 'SQL, DMY'")
        assert content_digests(conn) == first


def _cpu_seconds(conn: psycopg.Connection, action) -> float:
    """CPU time ``action`` costs this process and the server process serving ``conn``: the
    work itself, which a busy machine stretches in wall time but not in CPU time."""
    try:
        server = psutil.Process(conn.info.backend_pid)
        if "postgres" not in server.name():
            raise psutil.NoSuchProcess(conn.info.backend_pid)
    except psutil.Error:
        pytest.skip("the test server runs on another machine: its CPU time cannot be read from here")
    server_before, client_before = server.cpu_times(), time.process_time()
    action()
    server_after = server.cpu_times()
    client = time.process_time() - client_before
    return client + (server_after.user - server_before.user) + (server_after.system - server_before.system)


def test_content_check_at_scale_one_is_well_under_a_second(migrated_dsn):
    with psycopg.connect(migrated_dsn, autocommit=True) as conn:
        load_mock_data(conn, SeedParameters())
        conn.execute("SET max_parallel_workers_per_gather = 0")  # all of its work in the process measured

        def check() -> None:
            [result] = run_checks(conn, [check_seed_content])
            assert result.passed, result.detail

        costs = [_cpu_seconds(conn, check) for _ in range(3)]

        def every_check() -> None:
            assert all(r.passed for r in run_checks(conn, seed_checks(require_seed=True)))

        every_seed_check = _cpu_seconds(conn, every_check)
    print(f"seed_content at scale 1: best {min(costs):.3f} CPU s; all seed checks {every_seed_check:.3f} CPU s")
    assert min(costs) < 0.5
