"""The build folder as objects: keys, content types, cache classes, and the release digest,
on the example build in the repository (examples/frontend-dist) and copies of it."""

from __future__ import annotations

import hashlib
import shutil
from datetime import UTC, datetime, timedelta

import pytest
from pulumi_program import PROJECT_ROOT

from components.app.site_files import (
    IMMUTABLE,
    NO_CACHE,
    SHORT_MAX_AGE,
    cache_control,
    content_type,
    is_hashed,
    release_digest,
    retirements,
    site_files,
)

EXAMPLE = PROJECT_ROOT / "examples" / "frontend-dist"


@pytest.fixture
def dist(tmp_path):
    copy = tmp_path / "dist"
    shutil.copytree(EXAMPLE, copy)
    return copy


def test_the_example_build_as_objects():
    files = {f.key: f for f in site_files(EXAMPLE)}
    assert list(files) == ["assets/app.3f9c1a2b.css", "assets/app.7d41e0c9.js", "index.html"]
    index, js, css = files["index.html"], files["assets/app.7d41e0c9.js"], files["assets/app.3f9c1a2b.css"]
    assert (index.content_type, index.cache_control) == ("text/html; charset=utf-8", NO_CACHE)
    assert (js.content_type, js.cache_control) == ("text/javascript; charset=utf-8", IMMUTABLE)
    assert (css.content_type, css.cache_control) == ("text/css; charset=utf-8", IMMUTABLE)
    assert index.path == EXAMPLE / "index.html"
    assert index.sha256 == hashlib.sha256((EXAMPLE / "index.html").read_bytes()).hexdigest()


def test_keys_are_posix_paths_relative_to_the_build_folder(dist):
    (dist / "assets" / "fonts").mkdir()
    (dist / "assets" / "fonts" / "inter.4b1c2d3e.woff2").write_bytes(b"wOF2")
    (dist / ".well-known").mkdir()
    (dist / ".well-known" / "security.txt").write_text("Contact: mailto:security@example.com\n")
    keys = [f.key for f in site_files(dist)]
    assert keys == sorted(keys)
    assert "assets/fonts/inter.4b1c2d3e.woff2" in keys
    assert ".well-known/security.txt" in keys  # a dot folder a site may need is uploaded too
    assert not any(key.startswith("/") or "\\" in key for key in keys)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("app.7d41e0c9.js", "text/javascript; charset=utf-8"),
        ("chunk.mjs", "text/javascript; charset=utf-8"),
        ("app.3f9c1a2b.css", "text/css; charset=utf-8"),
        ("logo.svg", "image/svg+xml"),
        ("inter.woff2", "font/woff2"),
        ("manifest.json", "application/json"),
        ("app.7d41e0c9.js.map", "application/json"),
        ("favicon.ico", "image/vnd.microsoft.icon"),
        ("hero.png", "image/png"),
        ("robots.txt", "text/plain; charset=utf-8"),
        ("LICENSE", "application/octet-stream"),
    ],
)
def test_content_types(name, expected):
    assert content_type(name) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("index.html", NO_CACHE),
        ("reports/summary.html", NO_CACHE),
        ("assets/app.7d41e0c9.js", IMMUTABLE),
        ("assets/chunk-3f9c1a2b.css", IMMUTABLE),
        ("assets/app.7d41e0c9.js.map", IMMUTABLE),
        ("favicon.ico", SHORT_MAX_AGE),
        ("robots.txt", SHORT_MAX_AGE),
        ("assets/cafebabe.js", SHORT_MAX_AGE),  # hex letters only: a word, not a hash
        ("report-20250101.pdf", SHORT_MAX_AGE),  # digits only: a date, not a hash
        ("jquery-3.7.1.min.js", SHORT_MAX_AGE),
    ],
)
def test_cache_control_classes(name, expected):
    assert cache_control(name) == expected


def test_the_release_digest_changes_with_any_one_file(dist):
    before = release_digest(site_files(dist))
    assert release_digest(site_files(dist)) == before  # same build, same release
    assert release_digest(reversed(site_files(dist))) == before  # order does not matter

    index = dist / "index.html"
    original = index.read_text()
    index.write_text(original.replace("Reporting Dashboard</h1>", "Reports</h1>"))
    edited = release_digest(site_files(dist))
    assert edited != before
    index.write_text(original)
    assert release_digest(site_files(dist)) == before

    (dist / "robots.txt").write_text("User-agent: *\n")
    assert release_digest(site_files(dist)) not in (before, edited)
    (dist / "robots.txt").unlink()

    (dist / "assets" / "app.3f9c1a2b.css").rename(dist / "assets" / "app.3f9c1a2c.css")  # renamed, same bytes
    assert release_digest(site_files(dist)) != before


# --- hashed files outlive their release -------------------------------------------------------

MONDAY = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def test_a_release_keeps_the_hashed_files_it_dropped_for_the_set_time():
    kept, deleted = retirements(["app.1a2b3c4d.js", "app.5e6f7a8b.css"], {}, ["app.9c8d7e6f.js"], MONDAY, 7)
    assert kept == {"app.1a2b3c4d.js": MONDAY.isoformat(), "app.5e6f7a8b.css": MONDAY.isoformat()}
    assert deleted == []


def test_kept_files_go_once_the_time_has_passed_and_not_before():
    kept = {"old.1a2b3c4d.js": MONDAY.isoformat()}
    assert retirements([], kept, [], MONDAY + timedelta(days=7, seconds=-1), 7) == (kept, [])
    assert retirements([], kept, [], MONDAY + timedelta(days=7), 7) == ({}, ["old.1a2b3c4d.js"])


def test_a_file_back_in_the_release_is_no_longer_retired_and_a_second_release_keeps_the_first_date():
    kept = {"a.1a2b3c4d.js": MONDAY.isoformat()}
    later = MONDAY + timedelta(days=2)
    assert retirements(["b.5e6f7a8b.js"], kept, ["a.1a2b3c4d.js"], later, 7) == (
        {"b.5e6f7a8b.js": later.isoformat()},
        [],
    )
    assert retirements(["c.9c8d7e6f.js"], kept, [], later, 7)[0] == {
        "a.1a2b3c4d.js": MONDAY.isoformat(),
        "c.9c8d7e6f.js": later.isoformat(),
    }


def test_only_hashed_files_are_kept_past_their_release():
    files = site_files(EXAMPLE)
    assert {f.key for f in files if is_hashed(f)} == {f.key for f in files if f.cache_control == IMMUTABLE}
    assert not is_hashed(next(f for f in files if f.key == "index.html"))
