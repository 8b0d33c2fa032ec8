"""The mock-data generator on its own (no database): determinism, volumes, plausibility."""

from __future__ import annotations

import datetime
import math
from collections import Counter, defaultdict

import pytest

from dbops.verify import RUNBOOK_SEED_VOLUMES, volume_problem
from seed.generator import (
    AFFINITY_MERCHANTS_PER_USER,
    DAYS,
    MOCK_ID_BASE,
    SEGMENTS,
    TABLE_ORDER,
    TABLES,
    SeedParameters,
    _erfc,
    _exp_neg,
    dataset_checksum,
    expected_counts,
    generate_table,
    iter_tables,
    parse_line,
    plan_for,
)

# sha256 of the default data set (scale 1, seed 20251228, anchor 2025-12-28). If a change
# to the generator moves it, bump GENERATOR_VERSION (so loaded data sets get reloaded)
# and update this pin.
GOLDEN_CHECKSUM_SCALE_1 = "4d973db573c868ab76b133c9ea904ef973104a47ff07d2ba667d915688243c26"
SMALL = SeedParameters(scale=0.05)


def materialize(params: SeedParameters) -> dict[str, list[tuple[str | None, ...]]]:
    tables = {}
    for spec, lines in iter_tables(params):
        rows = [parse_line(line) for line in lines]
        assert all(len(row) == len(spec.columns) for row in rows), spec.name
        tables[spec.name] = rows
    return tables


def as_dicts(tables, name):
    columns = TABLES[name].columns
    return [dict(zip(columns, row, strict=False)) for row in tables[name]]


@pytest.fixture(scope="module")
def default_data():
    return materialize(SeedParameters())


def test_same_parameters_give_identical_rows_and_checksum():
    first = [(spec.name, list(lines)) for spec, lines in iter_tables(SMALL)]
    second = [(spec.name, list(lines)) for spec, lines in iter_tables(SeedParameters(scale=0.05))]
    assert first == second
    assert dataset_checksum(SMALL) == dataset_checksum(SeedParameters(scale=0.05))


def test_default_data_set_is_pinned():
    """Byte-identical on every machine: only + - * / on Random.random(), no libm, no hash()."""
    assert dataset_checksum(SeedParameters()) == GOLDEN_CHECKSUM_SCALE_1


def test_tables_do_not_depend_on_generation_order():
    together = {spec.name: list(lines) for spec, lines in iter_tables(SMALL)}
    for name in reversed(TABLE_ORDER):
        assert list(generate_table(SMALL, name)) == together[name], name


@pytest.mark.parametrize("change", [{"rng_seed": 1}, {"anchor_date": datetime.date(2025, 6, 30)}, {"scale": 0.06}])
def test_other_parameters_give_other_data(change):
    other = SeedParameters(**{"scale": 0.05, **change})
    assert dataset_checksum(other) != dataset_checksum(SMALL)
    if "rng_seed" in change:  # same shape, different values
        assert expected_counts(other) == expected_counts(SMALL)
        assert list(generate_table(other, "campaign_analytics_daily")) != list(
            generate_table(SMALL, "campaign_analytics_daily")
        )


def test_dataset_version_labels_but_does_not_change_the_data():
    assert dataset_checksum(SeedParameters(scale=0.05, dataset_version=2)) == dataset_checksum(SMALL)


def test_scale_one_has_the_runbook_volumes(default_data):
    counts = {name: len(rows) for name, rows in default_data.items()}
    assert counts == expected_counts(SeedParameters())
    assert counts["campaign_analytics_daily"] == 4_500
    assert counts["campaign_analytics_segments"] == 27_000
    assert counts["ab_tests"] == 20
    assert counts["ab_test_assignments"] == 20_000
    assert counts["user_merchant_affinity"] == 15_000
    assert counts["user_optimal_send_times"] == 500
    assert counts["campaign_optimizations"] >= 100
    assert 66_000 <= sum(counts.values()) <= 68_000


@pytest.mark.parametrize(
    "scale",
    [0.01, 0.013, 0.02, 0.037, 0.05, 0.1, 0.33, 0.5, 0.77, 1, 1.5, 2.5, 3.3333, 7.1, 10, 33.3, 55.5, 99.99, 100],
)
def test_planned_volumes_meet_the_runbook_at_every_scale(scale):
    counts = plan_for(scale).counts
    assert [p for t in RUNBOOK_SEED_VOLUMES if (p := volume_problem(t, counts[t], scale))] == []


def test_generated_counts_match_the_plan_at_small_scales():
    for scale in (0.01, 0.013, 0.2):
        params = SeedParameters(scale=scale)
        assert {spec.name: sum(1 for _ in lines) for spec, lines in iter_tables(params)} == expected_counts(params)


def test_volumes_scale_linearly():
    one, ten = plan_for(1).counts, plan_for(10).counts
    for table in RUNBOOK_SEED_VOLUMES:
        assert 9.5 <= ten[table] / one[table] <= 10.5, table


def test_analytics_are_plausible(default_data):
    anchor = SeedParameters().anchor_date
    first, last = (
        (anchor - datetime.timedelta(days=DAYS)).isoformat(),
        (anchor - datetime.timedelta(days=1)).isoformat(),
    )
    days_per_campaign = Counter()
    clicks_by_day = {}
    for row in as_dicts(default_data, "campaign_analytics_daily"):
        impressions, clicks, conversions = int(row["impressions"]), int(row["clicks"]), int(row["conversions"])
        assert 0 <= conversions <= clicks <= impressions
        assert float(row["spend"]) >= 0 and float(row["revenue"]) >= 0
        assert 0 <= float(row["engagement_rate"]) <= 1
        assert first <= row["date"] <= last
        days_per_campaign[row["campaign_id"]] += 1
        clicks_by_day[row["campaign_id"], row["date"]] = clicks
    assert set(days_per_campaign.values()) == {DAYS} and len(days_per_campaign) == 50
    totals = defaultdict(int)
    seen = set()
    for row in as_dicts(default_data, "campaign_analytics_segments"):
        users, conversions = int(row["users"]), int(row["conversions"])
        assert 0 <= conversions <= users
        assert float(row["revenue"]) >= 0 and 0 <= float(row["retention_rate"]) <= 1
        assert row["segment_name"] in SEGMENTS
        key = (row["campaign_id"], row["segment_name"], row["date"])
        assert key not in seen
        seen.add(key)
        totals[row["campaign_id"], row["date"]] += users
    assert totals == clicks_by_day  # segments break the day's engaged users down exactly


def test_ab_tests_are_balanced_and_results_match(default_data):
    tests = {row["id"]: row for row in as_dicts(default_data, "ab_tests")}
    arms, conversions, pairs = defaultdict(Counter), defaultdict(Counter), set()
    for row in as_dicts(default_data, "ab_test_assignments"):
        assert row["test_id"] in tests
        assert (row["test_id"], row["user_id"]) not in pairs
        pairs.add((row["test_id"], row["user_id"]))
        assert tests[row["test_id"]]["start_date"] <= row["assigned_at"][:10] < "2025-12-28"
        arms[row["test_id"]][row["variant"]] += 1
        conversions[row["test_id"]][row["variant"]] += row["converted"] == "t"
    for _test_id, counts in arms.items():
        assert len(counts) == 3
        assert max(counts.values()) - min(counts.values()) <= 0.02 * sum(counts.values()) / 3
    results = as_dicts(default_data, "ab_test_results")
    assert len(results) == 3 * len(tests)
    for row in results:
        assert int(row["sample_size"]) == arms[row["test_id"]][row["variant"]]
        assert int(row["conversions"]) == conversions[row["test_id"]][row["variant"]]
        assert (row["p_value"] is None) == (row["variant"] == "control")
        if row["p_value"] is not None:
            assert 0 <= float(row["p_value"]) <= 1
    for test in tests.values():
        assert test["end_date"] is None or test["start_date"] <= test["end_date"]


def test_users_scores_and_send_times_are_plausible(default_data):
    merchants = {row[0] for row in default_data["merchants"]}
    per_user = Counter()
    for row in as_dicts(default_data, "user_merchant_affinity"):
        assert row["merchant_id"] in merchants
        assert 0 <= float(row["affinity_score"]) <= 1 and int(row["transaction_count"]) >= 0
        assert (row["last_transaction_at"] is None) == (row["transaction_count"] == "0")
        per_user[row["user_id"]] += 1
    assert set(per_user.values()) == {AFFINITY_MERCHANTS_PER_USER}  # distinct merchants: the PK
    send_times = as_dicts(default_data, "user_optimal_send_times")
    assert sorted(row["user_id"] for row in send_times) == sorted(per_user)  # one per user
    hours = Counter(int(row["best_hour"]) for row in send_times)
    assert set(hours) <= set(range(24)) and len(hours) > 12
    assert {int(row["best_day_of_week"]) for row in send_times} == set(range(7))
    assert all(0 <= float(row["confidence"]) <= 1 for row in send_times)


def test_every_reference_and_timestamp_is_valid(default_data):
    campaigns = {row[0] for row in default_data["campaigns"]}
    models = {row[0] for row in default_data["ml_models"]}
    assert all(int(c) > MOCK_ID_BASE for c in campaigns)
    for name, column in (
        ("ab_tests", "campaign_id"),
        ("campaign_analytics_daily", "campaign_id"),
        ("campaign_analytics_segments", "campaign_id"),
        ("campaign_optimizations", "campaign_id"),
    ):
        assert {row[column] for row in as_dicts(default_data, name)} <= campaigns, name
    optimizations = as_dicts(default_data, "campaign_optimizations")
    assert {row["model_id"] for row in optimizations} <= models
    assert all(0 <= float(row["confidence"]) <= 1 for row in optimizations)
    anchor = "2025-12-28 00:00:00+00"
    for name in TABLE_ORDER:
        for column in TABLES[name].columns:
            if column.endswith("_at"):
                values = [row[column] for row in as_dicts(default_data, name) if row[column] is not None]
                assert values and max(values) < anchor, (name, column)  # all UTC, same format: sortable


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scale": 0}, "scale must be a number from 0.01 to 100, got 0"),
        ({"scale": 1000}, "scale must be a number from 0.01 to 100, got 1000"),
        ({"scale": 0.009}, "scale must be a number from 0.01 to 100"),
        ({"scale": math.nan}, "scale must be a number from 0.01 to 100"),
        ({"scale": True}, "scale must be a number"),
        ({"scale": "1"}, "scale must be a number"),
        ({"rng_seed": -1}, "rng_seed must be an integer from 0 to 9223372036854775807, got -1"),
        ({"rng_seed": 2**63}, "rng_seed must be an integer from 0"),
        ({"rng_seed": 1.5}, "rng_seed must be an integer"),
        ({"anchor_date": "2025-12-28"}, "anchor_date must be a date"),
        ({"anchor_date": datetime.datetime(2025, 12, 28)}, "anchor_date must be a date"),
        ({"anchor_date": datetime.date(1900, 1, 1)}, "anchor_date must be from 1971-01-01"),
        ({"dataset_version": 0}, "dataset_version must be an integer from 1 to 1000000, got 0"),
    ],
)
def test_invalid_parameters_name_the_field_and_range(kwargs, message):
    with pytest.raises(ValueError) as raised:
        SeedParameters(**kwargs)
    assert str(raised.value).startswith(message)
    assert "\n" not in str(raised.value)


def test_limits_are_accepted_and_int_scale_normalised():
    assert SeedParameters(scale=0.01).scale == 0.01
    assert SeedParameters(scale=100).scale == 100.0
    assert SeedParameters(scale=1) == SeedParameters(scale=1.0)


def test_hand_rolled_exp_and_erfc_are_accurate():
    for i in range(0, 400):
        y = i / 10
        assert math.isclose(_exp_neg(y), math.exp(-y), rel_tol=1e-13)
    for i in range(-60, 61):
        x = i / 10
        assert abs(_erfc(x) - math.erfc(x)) < 2e-7
