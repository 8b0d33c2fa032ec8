"""The shared fixtures' shortcuts give what the long way gives (tests/conftest.py,
tests/pulumi_program.py): a cloned migrated database, a release packed once."""

from __future__ import annotations

import psycopg
from psycopg.conninfo import conninfo_to_dict
from pulumi_program import packing_each_release_once

from components.app import release_archive
from components.app.release_archive import pack_release
from dbops.migrations import apply_migrations


def database_privileges(admin_dsn: str, dsn: str) -> list[tuple]:
    """(grantee, privilege, grantable) on the database itself, and its owner."""
    with psycopg.connect(admin_dsn) as conn:
        return conn.execute(
            "SELECT coalesce(role.rolname, 'PUBLIC'), acl.privilege_type, acl.is_grantable, db.datdba::regrole::text"
            " FROM pg_database AS db"
            " CROSS JOIN aclexplode(coalesce(db.datacl, acldefault('d', db.datdba))) AS acl"
            " LEFT JOIN pg_roles AS role ON role.oid = acl.grantee"
            " WHERE db.datname = %s ORDER BY 1, 2",
            (conninfo_to_dict(dsn)["dbname"],),
        ).fetchall()


def test_a_cloned_migrated_database_has_the_privileges_migrating_gives(admin_dsn, migrated_dsn, empty_dsn):
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        apply_migrations(conn)
    migrated = database_privileges(admin_dsn, empty_dsn)
    assert database_privileges(admin_dsn, migrated_dsn) == migrated
    assert [row[:2] for row in migrated if row[0] == "PUBLIC"] == []  # migration 001's REVOKE


def test_a_release_is_packed_once_per_content(tmp_path):
    release = tmp_path / "release"
    (release / "lib").mkdir(parents=True)
    (release / "server.js").write_text("one")
    (release / "lib" / "a.js").write_text("a")
    with packing_each_release_once():
        first = release_archive.pack_release(release)
        assert release_archive.pack_release(release) is first  # reused, not packed again
        assert first == pack_release(release)
        for change in (
            lambda: (release / "server.js").write_text("two"),  # same size, other content
            lambda: (release / "server.js").chmod(0o755),
            lambda: (release / "lib" / "a.js").rename(release / "lib" / "b.js"),
            lambda: (release / "empty").mkdir(),
        ):
            change()
            assert release_archive.pack_release(release) == pack_release(release)
        assert release_archive.pack_release(release, compresslevel=1) == pack_release(release, compresslevel=1)
