"""Load the generated mock data with ``COPY ... FROM STDIN``, all or nothing.

``load_mock_data`` is what ``python -m ops db seed`` and the ``MockDataSeed`` Pulumi
resource call. In one transaction, under an advisory lock so two seeders queue up:

1. refuse an unmigrated schema and an anchor date after the database's (UTC) date;
2. if the manifest (``swipesavvy_meta.mock_data_seed``) says the same parameters and the
   same generator version are loaded, and the seeded rows are exactly as loaded (their
   ``content_digests`` match the manifest's), change nothing (``SeedReport.loaded`` is False);
3. otherwise delete the earlier seeded rows (see ``MOCK_ROWS``), stream every table from
   the generators with COPY (chunks of lines, never a whole table in memory), check the
   row counts, and write the manifest with the counts, the sha256 of the generated data
   and the content digests of the rows as stored.

Any error, or an exception from the progress callback, rolls everything back: the data
that was there before is left as it was. Seeded rows are the ``is_mock`` campaigns,
merchants, ml_models and user_optimal_send_times (and those in the generator's reserved id
range, even when unmarked by hand) plus the rows that hang off mock campaigns, tests and
merchants; the schema, the feature flags and every other row are never touched.
"""

from __future__ import annotations

import datetime
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from seed.generator import (
    GENERATOR_VERSION,
    MOCK_ID_BASE,
    MOCK_USER_ID_BASE,
    TABLE_ORDER,
    TABLES,
    SeedParameters,
    checksum_header,
    chunked,
    expected_counts,
    iter_tables,
)

MANIFEST_SCHEMA = "swipesavvy_meta"
MANIFEST_TABLE = "mock_data_seed"
MANIFEST = f"{MANIFEST_SCHEMA}.{MANIFEST_TABLE}"
# Arbitrary but fixed: every seeder (and unseeder) on a database takes the same lock.
SEED_LOCK_KEY = 0x5357_5053_5345_4544  # "SWPSSEED"
CHUNK_LINES = 4096  # lines per COPY write (about 300 KB)
PROGRESS_INTERVAL_S = 0.25  # the callback also gets every table's final count
NOT_MIGRATED = "schema is not migrated: run `python -m ops db migrate` first"

# A seeded row is marked is_mock, or has an id in the range the generator reserves (above
# MOCK_ID_BASE, which identity sequences never reach): a mock row unmarked by hand is still
# the seeder's, so a reseed replaces it rather than failing on its id.
_SEEDED = f"(is_mock OR id > {MOCK_ID_BASE})"
_MOCK_CAMPAIGNS = f"SELECT id FROM campaigns WHERE {_SEEDED}"
_MOCK_TESTS = f"SELECT id FROM ab_tests WHERE campaign_id IN ({_MOCK_CAMPAIGNS})"
_MOCK_MERCHANTS = f"SELECT id FROM merchants WHERE {_SEEDED}"
# table -> the condition that makes a row a seeded one: what the seeder deletes and counts.
# Rows that hang off mock campaigns / merchants go with them (their FKs cascade anyway).
MOCK_ROWS: dict[str, str] = {
    "campaigns": _SEEDED,
    "merchants": _SEEDED,
    "ml_models": _SEEDED,
    "ab_tests": f"campaign_id IN ({_MOCK_CAMPAIGNS})",
    "campaign_analytics_daily": f"campaign_id IN ({_MOCK_CAMPAIGNS})",
    "campaign_analytics_segments": f"campaign_id IN ({_MOCK_CAMPAIGNS})",
    "ab_test_assignments": f"test_id IN ({_MOCK_TESTS})",
    "ab_test_results": f"test_id IN ({_MOCK_TESTS})",
    "user_merchant_affinity": f"merchant_id IN ({_MOCK_MERCHANTS})",
    "user_optimal_send_times": f"(is_mock OR user_id > {MOCK_USER_ID_BASE})",
    "campaign_optimizations": f"campaign_id IN ({_MOCK_CAMPAIGNS})",
}
assert tuple(MOCK_ROWS) == TABLE_ORDER

Progress = Callable[[str, int], None]


class SeedError(Exception):
    """The mock data could not be (un)loaded; nothing was changed. The message is one line."""


@dataclass(frozen=True)
class SeedReport:
    counts: dict[str, int]  # rows per table, load order
    checksum: str  # sha256 hex of the generated data
    elapsed_seconds: float
    loaded: bool = True  # False: this data set was already loaded, nothing was changed
    removed: dict[str, int] = field(default_factory=dict)  # earlier seeded rows replaced

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class Manifest:
    scale: float
    rng_seed: int
    anchor_date: datetime.date
    dataset_version: int
    generator_version: int
    counts: dict[str, int]
    checksum: str
    duration_ms: float
    loaded_at: datetime.datetime
    loaded_by: str
    content_digests: dict[str, str] | None  # None: loaded before migration 009, unverifiable

    @property
    def params(self) -> SeedParameters:
        return SeedParameters(self.scale, self.rng_seed, self.anchor_date, self.dataset_version)

    def matches(self, params: SeedParameters) -> bool:
        return self.params == params and self.generator_version == GENERATOR_VERSION


def _one_line(error: psycopg.Error) -> str:
    diag = error.diag
    message = diag.message_primary or (str(error).strip().splitlines() or [type(error).__name__])[0]
    if diag.context:
        where = diag.context.strip().splitlines()[0]
        message += f" ({where[:160]}{'...' if len(where) > 160 else ''})"
    return message


def _require_autocommit(conn: psycopg.Connection) -> None:
    if not conn.autocommit:
        raise SeedError("the seeder needs an autocommit connection (it opens its own transaction)")


def _require_schema(conn: psycopg.Connection) -> None:
    names = [MANIFEST, *TABLE_ORDER]
    row = conn.execute("SELECT bool_and(to_regclass(n) IS NOT NULL) FROM unnest(%s::text[]) AS n", (names,)).fetchone()
    if not row[0]:
        raise SeedError(NOT_MIGRATED)


def _begin(conn: psycopg.Connection) -> None:
    """First statements of the seeder's transaction."""
    # current_date and the CHECKs that use it follow the session time zone; the data's
    # timestamps are UTC, so judge "the future" in UTC too.
    conn.execute("SET LOCAL timezone = 'UTC'")
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (SEED_LOCK_KEY,))


def _manifest_row(conn: psycopg.Connection) -> Manifest | None:
    row = conn.execute(
        f"SELECT scale, rng_seed, anchor_date, dataset_version, generator_version, counts, checksum,"
        f" duration_ms, loaded_at, loaded_by, content_digests FROM {MANIFEST}"
    ).fetchone()
    if row is None:
        return None
    scale, rng_seed, anchor, version, generator, counts, checksum, duration, loaded_at, loaded_by, digests = row
    ordered = {t: int(counts[t]) for t in TABLE_ORDER if t in counts}  # jsonb does not keep key order
    ordered.update({t: int(n) for t, n in counts.items() if t not in ordered})
    return Manifest(
        scale, rng_seed, anchor, version, generator, ordered, checksum, float(duration), loaded_at, loaded_by, digests
    )


def read_manifest(conn: psycopg.Connection) -> Manifest | None:
    """The loaded data set's manifest; None when nothing is seeded (or 007 is not applied)."""
    if not conn.execute("SELECT to_regclass(%s) IS NOT NULL", (MANIFEST,)).fetchone()[0]:
        return None
    return _manifest_row(conn)


def count_mock_rows(conn: psycopg.Connection) -> dict[str, int]:
    """Seeded rows per table as the database holds them now (one round trip)."""
    query = sql.SQL("SELECT {}").format(
        sql.SQL(", ").join(
            sql.SQL("(SELECT count(*) FROM {} WHERE {})").format(sql.Identifier(table), sql.SQL(condition))
            for table, condition in MOCK_ROWS.items()
        )
    )
    row = conn.execute(query).fetchone()
    return dict(zip(MOCK_ROWS, (int(n) for n in row), strict=False))


# One table's seeded rows as stored: each row's seeded columns as a row literal, sorted
# bytewise, one per line, hashed. Generated ids are not part of it.
_TABLE_DIGEST = sql.SQL(
    "SELECT encode(sha256(convert_to(coalesce(string_agg(r, E'\\n' ORDER BY r COLLATE \"C\"), ''), 'UTF8')), 'hex')"
    " FROM (SELECT ROW({columns})::text AS r FROM {table} WHERE {condition}) AS seeded"
)


def content_digests(conn: psycopg.Connection) -> dict[str, str]:
    """sha256 per table of the seeded rows as stored now, in one round trip (about 0.1 s
    at scale 1). Time zone and date style are fixed so the text is the same in every session."""
    query = sql.SQL("SELECT {}").format(
        sql.SQL(", ").join(
            sql.SQL("({})").format(
                _TABLE_DIGEST.format(
                    columns=sql.SQL(", ").join(map(sql.Identifier, TABLES[table].columns)),
                    table=sql.Identifier(table),
                    condition=sql.SQL(condition),
                )
            )
            for table, condition in MOCK_ROWS.items()
        )
    )
    with conn.transaction():
        conn.execute("SELECT set_config('timezone', 'UTC', true), set_config('datestyle', 'ISO, YMD', true)")
        row = conn.execute(query).fetchone()
    return dict(zip(MOCK_ROWS, row, strict=True))


def _delete_mock_rows(conn: psycopg.Connection) -> dict[str, int]:
    """Children before parents, so the cascades find nothing left to do."""
    removed = {}
    for table in reversed(TABLE_ORDER):
        cur = conn.execute(sql.SQL("DELETE FROM {} WHERE {}").format(sql.Identifier(table), sql.SQL(MOCK_ROWS[table])))
        removed[table] = cur.rowcount
    return {table: removed[table] for table in TABLE_ORDER}


def _copy_all(
    conn: psycopg.Connection, params: SeedParameters, progress: Progress | None
) -> tuple[dict[str, int], str]:
    digest = hashlib.sha256()
    counts: dict[str, int] = {}
    next_report = time.perf_counter() + PROGRESS_INTERVAL_S
    with conn.cursor() as cur:
        for spec, lines in iter_tables(params):
            statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
                sql.Identifier(spec.name), sql.SQL(", ").join(map(sql.Identifier, spec.columns))
            )
            digest.update(checksum_header(spec))
            rows = 0
            with cur.copy(statement) as copy:
                for data, n in chunked(lines, CHUNK_LINES):
                    digest.update(data)
                    copy.write(data)
                    rows += n
                    if progress is not None and time.perf_counter() >= next_report:
                        progress(spec.name, rows)
                        next_report = time.perf_counter() + PROGRESS_INTERVAL_S
            if cur.rowcount != rows:
                raise SeedError(f"{spec.name}: COPY stored {cur.rowcount} of {rows} rows")
            counts[spec.name] = rows
            if progress is not None:
                progress(spec.name, rows)
    return counts, digest.hexdigest()


def is_intact(conn: psycopg.Connection, manifest: Manifest) -> bool:
    """The seeded rows are exactly those the manifest recorded (False for an unverifiable one)."""
    return manifest.content_digests is not None and content_digests(conn) == manifest.content_digests


def load_mock_data(
    conn: psycopg.Connection, params: SeedParameters, *, progress: Progress | None = None, force: bool = False
) -> SeedReport:
    """Replace the seeded rows with the data set ``params`` describes, in one transaction.

    ``conn`` must be in autocommit mode. Unless ``force``, a data set that is already
    loaded and intact is left alone. ``progress(table, rows_so_far)`` is called every
    PROGRESS_INTERVAL_S and at the end of each table; if it raises, the load is rolled back.
    """
    if not isinstance(params, SeedParameters):
        raise TypeError(f"params must be SeedParameters, not {type(params).__name__}")
    _require_autocommit(conn)
    started = time.perf_counter()
    try:
        _require_schema(conn)
        with conn.transaction():
            _begin(conn)
            today = conn.execute("SELECT current_date").fetchone()[0]
            if params.anchor_date > today:
                raise SeedError(
                    f"anchor date {params.anchor_date.isoformat()} is in the future (the database's "
                    f"date is {today.isoformat()} UTC): mock data may not be dated after today"
                )
            manifest = _manifest_row(conn)
            if not force and manifest is not None and manifest.matches(params) and is_intact(conn, manifest):
                return SeedReport(
                    counts=dict(manifest.counts),
                    checksum=manifest.checksum,
                    elapsed_seconds=time.perf_counter() - started,
                    loaded=False,
                )
            removed = _delete_mock_rows(conn)
            conn.execute(f"DELETE FROM {MANIFEST}")
            counts, checksum = _copy_all(conn, params, progress)
            expected = expected_counts(params)
            if counts != expected:  # the generator and its plan disagree: never record that
                wrong = ", ".join(
                    f"{t} {counts.get(t)} (planned {n})" for t, n in expected.items() if counts.get(t) != n
                )
                raise SeedError(f"generated row counts differ from the plan: {wrong}")
            digests = content_digests(conn)
            elapsed = time.perf_counter() - started
            conn.execute(
                f"INSERT INTO {MANIFEST} (scale, rng_seed, anchor_date, dataset_version, generator_version,"
                f" counts, checksum, duration_ms, content_digests) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    params.scale,
                    params.rng_seed,
                    params.anchor_date,
                    params.dataset_version,
                    GENERATOR_VERSION,
                    Jsonb(counts),
                    checksum,
                    round(elapsed * 1000, 3),
                    Jsonb(digests),
                ),
            )
    except psycopg.Error as error:
        raise SeedError(f"mock data load failed and was rolled back: {_one_line(error)}") from None
    return SeedReport(
        counts=counts, checksum=checksum, elapsed_seconds=time.perf_counter() - started, loaded=True, removed=removed
    )


def unload_mock_data(conn: psycopg.Connection) -> dict[str, int]:
    """Delete every seeded row and the manifest in one transaction; rows removed per table."""
    _require_autocommit(conn)
    try:
        _require_schema(conn)
        with conn.transaction():
            _begin(conn)
            removed = _delete_mock_rows(conn)
            conn.execute(f"DELETE FROM {MANIFEST}")
    except psycopg.Error as error:
        raise SeedError(f"mock data unload failed and was rolled back: {_one_line(error)}") from None
    return removed
