"""The static site's build folder as the objects to upload: key, content type, cache policy, hash.

Pure Python (no Pulumi import), so the rules are tested on their own. The site bucket gets
one object per file, keyed by its POSIX path relative to the build folder; an object is
updated only when its file's sha256 (or its headers) changed, so ``pulumi preview`` lists
exactly the changed files. ``release_digest`` names the whole release: when it changes,
CloudFront's cache is invalidated.

Cache classes:
- HTML (``index.html`` and any other page) is ``no-cache``: browsers and CloudFront
  revalidate it on every request, so a new release is visible at once;
- a file with a content hash in its name (``app.7d41e0c9.js``) never changes under that
  name: ``public, max-age=31536000, immutable``;
- anything else (``favicon.ico``, ``robots.txt``) may change under the same name: a short
  max-age bounds how long a browser keeps the old one.

Hashed files outlive their release for a while (``retirements``): a page loaded before a
release still asks for its own lazy chunks, which a new release no longer has.
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

NO_CACHE = "no-cache"
IMMUTABLE = "public, max-age=31536000, immutable"
SHORT_MAX_AGE = "public, max-age=300"

# Checked before ``mimetypes``: Python's table lacks some (.woff2, .map) and differs by
# version for others (.js was application/javascript before 3.12; RFC 9239 says text/javascript).
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".svg": "image/svg+xml",
    ".woff2": "font/woff2",
    ".woff": "font/woff",
    ".webp": "image/webp",
    ".txt": "text/plain; charset=utf-8",
}
DEFAULT_CONTENT_TYPE = "application/octet-stream"
# Python's built-in table only: the host's /etc/mime.types must not change what is uploaded.
_BUILTIN_TYPES = mimetypes.MimeTypes()

# A hex content hash of 8+ characters right before the extension(s), after "." or "-", with
# a digit and a letter (so neither a word like "cafebabe" nor a date like 20250101 is one):
# app.7d41e0c9.js, chunk-3f9c1a2b.css, app.7d41e0c9.js.map. Deliberately narrow: a hashed
# file taken for a plain one only gets the short max-age, the reverse would pin a stale file
# in browsers for a year.
_HASHED_NAME = re.compile(r"[.-](?=[0-9a-f]*[0-9])(?=[0-9a-f]*[a-f])[0-9a-f]{8,64}(\.[A-Za-z0-9]+)+$")


@dataclass(frozen=True)
class SiteFile:
    key: str  # the object key: POSIX path relative to the build folder
    path: Path
    content_type: str
    cache_control: str
    sha256: str


def content_type(name: str) -> str:
    suffix = Path(name).suffix.lower()
    if suffix in CONTENT_TYPES:
        return CONTENT_TYPES[suffix]
    guessed, _encoding = _BUILTIN_TYPES.guess_type(name, strict=False)
    return guessed or DEFAULT_CONTENT_TYPE


def cache_control(name: str) -> str:
    if Path(name).suffix.lower() in (".html", ".htm"):
        return NO_CACHE
    if _HASHED_NAME.search(Path(name).name):
        return IMMUTABLE
    return SHORT_MAX_AGE


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def site_files(dist: Path) -> list[SiteFile]:
    """Every file under ``dist``, sorted by key."""
    files = []
    for path in dist.rglob("*"):
        if path.is_file():
            key = path.relative_to(dist).as_posix()
            files.append(SiteFile(key, path, content_type(key), cache_control(key), _sha256(path)))
    return sorted(files, key=lambda f: f.key)


def release_digest(files: Iterable[SiteFile]) -> str:
    """sha256 over what the site serves: each key with its content hash and headers. A
    changed, added or removed file, or a changed header, is a new release."""
    digest = hashlib.sha256()
    for f in sorted(files, key=lambda f: f.key):
        digest.update(f"{f.key}\0{f.sha256}\0{f.content_type}\0{f.cache_control}\n".encode())
    return digest.hexdigest()


def is_hashed(file: SiteFile) -> bool:
    """A file whose name carries its content hash: never changed under that name."""
    return file.cache_control == IMMUTABLE


def retirements(
    previous: Iterable[str], retired: Mapping[str, str], current: Iterable[str], now: datetime, keep_days: int
) -> tuple[dict[str, str], list[str]]:
    """The hashed keys kept after a release, each with when it left the site (ISO 8601), and
    the keys to delete now: those gone for ``keep_days`` or longer. ``previous`` and
    ``current`` are the hashed keys of the last and the new release; ``retired``, those kept
    so far. A key back in the release (a rollback) is no longer retired."""
    served = set(current)
    kept = {key: left for key, left in retired.items() if key not in served}
    for key in sorted(set(previous) - served):
        kept.setdefault(key, now.isoformat())
    expired = sorted(
        key for key, left in kept.items() if datetime.fromisoformat(left) + timedelta(days=keep_days) <= now
    )
    return {key: left for key, left in sorted(kept.items()) if key not in expired}, expired
