"""The migration runner against a real PostgreSQL: once-only, refusal of edits, locking."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import psycopg
import pytest

from dbops.migrations import (
    LEDGER_SCHEMA,
    MigrationError,
    apply_migrations,
    load_migrations,
    pending_migrations,
)

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"


def _copy_migrations(tmp_path: Path) -> Path:
    target = tmp_path / "sql"
    shutil.copytree(SQL_DIR, target)
    return target


def _ledger(dsn: str) -> list[tuple[str, str]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(f"SELECT version, name FROM {LEDGER_SCHEMA}.schema_migrations ORDER BY version").fetchall()


def test_first_run_applies_every_migration_in_order(empty_dsn):
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        report = apply_migrations(conn)
    names = [m.name for m in load_migrations()]
    assert [m.name for m in report.applied] == names
    assert [name for _, name in _ledger(empty_dsn)] == names


def test_second_run_applies_nothing(empty_dsn):
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        apply_migrations(conn)
        before = _ledger(empty_dsn)
        report = apply_migrations(conn)
    assert report.applied == []
    assert len(report.already_applied) == len(load_migrations())
    assert _ledger(empty_dsn) == before


def test_ledger_lives_outside_public(migrated_dsn):
    with psycopg.connect(migrated_dsn) as conn:
        schema = conn.execute(
            "SELECT table_schema FROM information_schema.tables WHERE table_name = 'schema_migrations'"
        ).fetchone()[0]
    assert schema == LEDGER_SCHEMA


def test_changed_applied_migration_is_refused_by_name(migrated_dsn, tmp_path):
    directory = _copy_migrations(tmp_path)
    edited = directory / "003_reference_and_feature_flags.sql"
    edited.write_text(edited.read_text() + "\n-- an innocent-looking edit\n")
    with (
        psycopg.connect(migrated_dsn, autocommit=True) as conn,
        pytest.raises(MigrationError, match=r"003_reference_and_feature_flags\.sql changed after it was applied"),
    ):
        apply_migrations(conn, load_migrations(directory))


def test_removed_applied_migration_is_refused(migrated_dsn, tmp_path):
    directory = _copy_migrations(tmp_path)
    (directory / "005_ab_testing.sql").unlink()
    with (
        psycopg.connect(migrated_dsn, autocommit=True) as conn,
        pytest.raises(MigrationError, match=r"005_ab_testing\.sql was applied but is missing"),
    ):
        apply_migrations(conn, load_migrations(directory))


def test_crlf_checkout_is_not_an_edit(migrated_dsn, tmp_path):
    directory = _copy_migrations(tmp_path)
    for path in directory.glob("*.sql"):
        path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    with psycopg.connect(migrated_dsn, autocommit=True) as conn:
        assert pending_migrations(conn, load_migrations(directory)) == []


def test_new_migration_is_pending_then_applied(migrated_dsn, tmp_path):
    directory = _copy_migrations(tmp_path)
    (directory / "099_add_note.sql").write_text("ALTER TABLE merchants ADD COLUMN note text;")
    migrations = load_migrations(directory)
    with psycopg.connect(migrated_dsn, autocommit=True) as conn:
        assert [m.name for m in pending_migrations(conn, migrations)] == ["099_add_note"]
        report = apply_migrations(conn, migrations)
        assert [m.name for m in report.applied] == ["099_add_note"]
        owner = conn.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'merchants'").fetchone()[0]
    assert owner == "swipesavvy_owner"


def test_failing_migration_rolls_back_whole_and_is_not_recorded(migrated_dsn, tmp_path):
    directory = _copy_migrations(tmp_path)
    (directory / "099_half_done.sql").write_text(
        "CREATE TABLE half_done (id int); INSERT INTO no_such_table VALUES (1);"
    )
    with psycopg.connect(migrated_dsn, autocommit=True) as conn:
        with pytest.raises(MigrationError, match=r"099_half_done\.sql failed and was rolled back"):
            apply_migrations(conn, load_migrations(directory))
        assert conn.execute("SELECT to_regclass('public.half_done')").fetchone()[0] is None
    assert "099_half_done" not in [name for _, name in _ledger(migrated_dsn)]


def test_bad_file_names_are_refused(tmp_path):
    (tmp_path / "1_first.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="NNN_lowercase_name.sql"):
        load_migrations(tmp_path)


def test_duplicate_versions_are_refused(tmp_path):
    (tmp_path / "001_a.sql").write_text("SELECT 1;")
    (tmp_path / "001_b.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="version 001 is already used"):
        load_migrations(tmp_path)


def test_concurrent_runners_apply_each_migration_once(empty_dsn):
    """Two runners start together: the advisory lock makes one wait, and it finds nothing to do."""
    reports, errors = [], []
    barrier = threading.Barrier(2)

    def run() -> None:
        try:
            with psycopg.connect(empty_dsn, autocommit=True) as conn:
                barrier.wait()
                reports.append(apply_migrations(conn))
        except Exception as error:  # surfaced by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)  # a guard against a hang: both end when their migrations do
    assert errors == []
    applied_counts = sorted(len(r.applied) for r in reports)
    assert applied_counts == [0, len(load_migrations())]
    names = [name for _, name in _ledger(empty_dsn)]
    assert len(names) == len(set(names)) == len(load_migrations())


def test_autocommit_connection_required(empty_dsn):
    with psycopg.connect(empty_dsn) as conn, pytest.raises(ValueError, match="autocommit"):
        apply_migrations(conn)


# --- transaction control is refused when the files are loaded ---------------------------------

FORBIDDEN = [
    ("BEGIN;", "BEGIN"),
    ("begin transaction isolation level serializable;", "BEGIN"),
    ("START\n  TRANSACTION;", "START TRANSACTION"),
    ("COMMIT;", "COMMIT"),
    ("commit work;", "COMMIT"),
    ("END;", "END"),
    ("ROLLBACK;", "ROLLBACK"),
    ("ABORT;", "ABORT"),
    ("SAVEPOINT before_insert;", "SAVEPOINT"),
    ("RELEASE SAVEPOINT before_insert;", "RELEASE"),
    ("PREPARE TRANSACTION 'deploy';", "PREPARE TRANSACTION"),
    ("COMMIT PREPARED 'deploy';", "COMMIT"),
    ("ROLLBACK PREPARED 'deploy';", "ROLLBACK"),
]


def test_every_existing_migration_loads():
    assert [m.filename for m in load_migrations()] == sorted(p.name for p in SQL_DIR.glob("*.sql"))


@pytest.mark.parametrize(("statement", "keyword"), FORBIDDEN)
def test_transaction_control_is_refused_by_file_and_line(tmp_path, statement, keyword):
    (tmp_path / "001_ok.sql").write_text("SELECT 1;\n")
    (tmp_path / "002_escapes.sql").write_text(f"CREATE TABLE a (id int);\n\n  {statement}\nCREATE TABLE b (id int);\n")
    with pytest.raises(MigrationError, match=rf"^002_escapes\.sql, line 3: {keyword} is not allowed in a migration"):
        load_migrations(tmp_path)


def test_commit_in_a_migration_leaves_the_database_untouched(migrated_dsn, tmp_path):
    directory = _copy_migrations(tmp_path)
    (directory / "099_escape.sql").write_text("CREATE TABLE escaped (id int);\nCOMMIT;\nSELECT 1 / 0;\n")
    with psycopg.connect(migrated_dsn, autocommit=True) as conn:
        with pytest.raises(MigrationError, match=r"099_escape\.sql, line 2: COMMIT is not allowed"):
            apply_migrations(conn, load_migrations(directory))
        assert conn.execute("SELECT to_regclass('public.escaped')").fetchone()[0] is None
    assert "099_escape" not in [name for _, name in _ledger(migrated_dsn)]


LOOK_ALIKES = """\
-- COMMIT; a comment
/* BEGIN; /* nested */ ROLLBACK; */
CREATE TABLE look_alikes (
    id int,
    "commit" text DEFAULT 'COMMIT;',
    note text DEFAULT E'it\\'s; END;',
    begin_at date,
    end_at date
);
CREATE FUNCTION look_alikes_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.note := 'x'; -- END;
    RETURN NEW;
END;
$$;
CREATE FUNCTION look_alikes_tagged() RETURNS int LANGUAGE plpgsql AS $body$
BEGIN
    BEGIN
        RETURN 1;
    EXCEPTION WHEN OTHERS THEN
        ROLLBACK;
    END;
END
$body$;
CREATE FUNCTION look_alikes_atomic() RETURNS int LANGUAGE sql
BEGIN ATOMIC
    SELECT CASE WHEN true THEN 1 ELSE 2 END;
END;
SELECT 'a''; COMMIT; ''b', $$ COMMIT $$, U&'COMMIT';
"""


def test_look_alikes_are_not_transaction_control(migrated_dsn, tmp_path):
    """Keywords in comments, literals, identifiers, plpgsql and BEGIN ATOMIC bodies are fine."""
    directory = _copy_migrations(tmp_path)
    (directory / "099_look_alikes.sql").write_text(LOOK_ALIKES)
    with psycopg.connect(migrated_dsn, autocommit=True) as conn:
        report = apply_migrations(conn, load_migrations(directory))
    assert [m.name for m in report.applied] == ["099_look_alikes"]
