"""Forward-only SQL migrations: load them from sql/, apply the pending ones exactly once.

Plain psycopg 3, no Pulumi: the ``ops db migrate`` command, the ``DatabaseSchema`` dynamic
provider and the tests all call ``apply_migrations``.

Guarantees:
- a ledger (``swipesavvy_meta.schema_migrations``) records version, checksum, when and how
  long; it lives outside ``public`` so the runbook's table count stays 16;
- a PostgreSQL advisory lock serialises concurrent runners on the same database;
- each migration runs in its own transaction, as the NOLOGIN owner role
  ``swipesavvy_owner`` (so no login owns an object), unless its first line says
  ``-- swipesavvy: run-as session`` (cluster-level work such as CREATE ROLE);
- an applied migration whose file changed, or disappeared, is refused by name;
- a file with transaction control (BEGIN, COMMIT, SAVEPOINT...) is refused when loaded,
  by name and line: it would end the runner's transaction early and leave half of it.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "sql"
OWNER_ROLE = "swipesavvy_owner"
LEDGER_SCHEMA = "swipesavvy_meta"
LEDGER_TABLE = "schema_migrations"
# Arbitrary but fixed: every runner on a database contends for the same lock.
ADVISORY_LOCK_KEY = 0x5357_5053_4D49_47  # "SWPSMIG"
RUN_AS_SESSION_MARKER = "-- swipesavvy: run-as session"
_FILENAME = re.compile(r"^(?P<version>\d{3})_(?P<slug>[a-z0-9_]+)\.sql$")
# What may hide a keyword from the statement scan: comments, string literals (E'' with
# backslash escapes), quoted identifiers and dollar-quoted bodies such as plpgsql's.
_NOT_CODE_START = re.compile(r"--|/\*|(?<![\w$])[Ee]'|'|\"|(?<![\w$])\$(?:[A-Za-z_]\w*)?\$")
_QUOTED_END = {
    "'": re.compile(r"'(?:[^']|'')*'?"),
    "E": re.compile(r"[Ee]'(?:[^'\\]|\\.|'')*'?", re.S),
    '"': re.compile(r'"(?:[^"]|"")*"?'),
}
_COMMENT_DELIMITER = re.compile(r"/\*|\*/")
_WORD_OR_SEMICOLON = re.compile(r"[A-Za-z_][\w$]*|;")
# Statements that end, nest or prepare the transaction the runner wraps each file in.
_TRANSACTION_CONTROL = re.compile(
    r"(BEGIN|START\s+TRANSACTION|COMMIT|END|ROLLBACK|ABORT|SAVEPOINT|RELEASE|PREPARE\s+TRANSACTION)\b", re.I
)


class MigrationError(Exception):
    """A migration set that must not be applied; the message names the file."""


@dataclass(frozen=True)
class Migration:
    version: str
    name: str  # file stem, e.g. "003_reference_and_feature_flags"
    sql: str
    checksum: str
    run_as_session: bool

    @property
    def filename(self) -> str:
        return f"{self.name}.sql"


@dataclass(frozen=True)
class AppliedMigration:
    name: str
    duration_ms: float


@dataclass
class MigrationReport:
    applied: list[AppliedMigration] = field(default_factory=list)
    already_applied: list[str] = field(default_factory=list)


def checksum_of(text: str) -> str:
    # Line endings normalised so a checkout with CRLF does not look like an edit.
    return hashlib.sha256(text.replace("\r\n", "\n").encode("utf-8")).hexdigest()


def _end_of_non_code(text: str, match: re.Match[str]) -> int:
    """Where the comment, literal or dollar-quoted body starting at ``match`` ends."""
    token = match[0]
    if token == "--":
        newline = text.find("\n", match.end())
        return len(text) if newline < 0 else newline
    if token == "/*":  # block comments nest in PostgreSQL
        depth, position = 1, match.end()
        while depth and (delimiter := _COMMENT_DELIMITER.search(text, position)):
            depth += 1 if delimiter[0] == "/*" else -1
            position = delimiter.end()
        return position if depth == 0 else len(text)
    if token.startswith("$"):
        close = text.find(token, match.end())
        return len(text) if close < 0 else close + len(token)
    return _QUOTED_END[token[0].upper()].match(text, match.start()).end()


def _code_only(text: str) -> str:
    """``text`` with everything but code blanked out; newlines kept so line numbers hold."""
    parts, position = [], 0
    while match := _NOT_CODE_START.search(text, position):
        end = _end_of_non_code(text, match)
        parts += [text[position : match.start()], re.sub(r"[^\n]", " ", text[match.start() : end])]
        position = end
    parts.append(text[position:])
    return "".join(parts)


def _statement_starts(code: str) -> Iterator[int]:
    """Offsets of the top-level statements in ``code`` (code only, see ``_code_only``).

    A ``;`` inside ``CREATE FUNCTION ... BEGIN ATOMIC ... END`` does not end the statement:
    within a CREATE, BEGIN and CASE open a block that END closes (psql does the same).
    """
    first_word, depth = None, 0
    yield 0
    for token in _WORD_OR_SEMICOLON.finditer(code):
        word = token[0].upper()
        if word == ";":
            if depth == 0:
                first_word = None
                yield token.end()
        elif first_word is None:
            first_word = word
        elif first_word == "CREATE" and word in ("BEGIN", "CASE"):
            depth += 1
        elif first_word == "CREATE" and word == "END" and depth:
            depth -= 1


def refuse_transaction_control(filename: str, text: str) -> None:
    """Raise MigrationError naming the file and line of the first transaction-control statement."""
    code = _code_only(text)
    for start in _statement_starts(code):
        statement = code[start:].lstrip()
        if match := _TRANSACTION_CONTROL.match(statement):
            line = code.count("\n", 0, len(code) - len(statement)) + 1
            keyword = " ".join(match[1].upper().split())
            raise MigrationError(
                f"{filename}, line {line}: {keyword} is not allowed in a migration: the runner runs each file "
                "in one transaction of its own, which this would end early (fix: remove it; split the work "
                "into separate migration files instead)"
            )


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Every ``NNN_name.sql`` in ``directory``, in version order."""
    migrations: dict[str, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILENAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files must be named NNN_lowercase_name.sql")
        version = match["version"]
        if version in migrations:
            raise MigrationError(f"{path.name}: version {version} is already used by {migrations[version].filename}")
        text = path.read_text(encoding="utf-8")
        refuse_transaction_control(path.name, text)
        migrations[version] = Migration(
            version=version,
            name=path.stem,
            sql=text,
            checksum=checksum_of(text),
            run_as_session=text.lstrip().startswith(RUN_AS_SESSION_MARKER),
        )
    if not migrations:
        raise MigrationError(f"no migrations found in {directory}")
    return [migrations[v] for v in sorted(migrations)]


def migration_checksums(migrations: Iterable[Migration]) -> dict[str, str]:
    """``{name: checksum}``: what the Pulumi resource takes as input so a preview can show it."""
    return {m.name: m.checksum for m in migrations}


def pending_names(desired: Mapping[str, str], ledger: Mapping[str, str]) -> list[str]:
    """Names in ``desired`` not yet in ``ledger``, after refusing edited or removed applied ones.

    Both map migration names to checksums: ``desired`` is what sql/ holds (or what a Pulumi
    input recorded), ``ledger`` what the database says it applied.
    """
    for name, recorded in sorted(ledger.items()):
        current = desired.get(name)
        if current is None:
            raise MigrationError(
                f"{name}.sql was applied but is missing from sql/: migrations are forward-only, restore the file"
            )
        if current != recorded:
            raise MigrationError(
                f"{name}.sql changed after it was applied (checksum {recorded[:12]} -> {current[:12]}): "
                "revert the edit and add a new migration instead"
            )
    return [name for name in sorted(desired) if name not in ledger]


def check_against_ledger(migrations: list[Migration], ledger: Mapping[str, str]) -> list[Migration]:
    """The pending migrations of ``migrations`` given the applied ``ledger``."""
    by_name = {m.name: m for m in migrations}
    return [by_name[name] for name in pending_names(migration_checksums(migrations), ledger)]


def read_ledger(conn: psycopg.Connection) -> dict[str, str]:
    """Applied migrations ``{name: checksum}``; empty when the ledger does not exist yet."""
    exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{LEDGER_SCHEMA}.{LEDGER_TABLE}",)).fetchone()[0]
    if not exists:
        return {}
    rows = conn.execute(
        sql.SQL("SELECT name, checksum FROM {}.{}").format(sql.Identifier(LEDGER_SCHEMA), sql.Identifier(LEDGER_TABLE))
    ).fetchall()
    return dict(rows)


def pending_migrations(conn: psycopg.Connection, migrations: list[Migration] | None = None) -> list[Migration]:
    migrations = load_migrations() if migrations is None else migrations
    return check_against_ledger(migrations, read_ledger(conn))


# What the deploying login lacks, by the server's "permission denied ..." text, and the fix.
_MISSING_PRIVILEGES = {
    "to grant role": "ADMIN on {owner} (fix: as {owner}'s creator or a superuser, "
    "GRANT {owner} TO {login} WITH ADMIN OPTION; on RDS deploy as the master user)",
    "to create role": "CREATEROLE (fix: ALTER ROLE {login} CREATEROLE, or on RDS deploy as the master user)",
    "for database": "CREATE on the database (fix: make {login} the database's owner, "
    "or GRANT CREATE ON DATABASE to it)",
}


def _missing_privilege(conn: psycopg.Connection, error: psycopg.errors.InsufficientPrivilege) -> MigrationError:
    denied = error.diag.message_primary or str(error).strip().splitlines()[0]
    needs = next(
        (need for key, need in _MISSING_PRIVILEGES.items() if key in denied),
        "the privileges listed in docs/operations.md, Operator CLI",
    )
    login = conn.info.user
    return MigrationError(
        f"login {login} may not run the migrations ({denied}): it needs {needs.format(owner=OWNER_ROLE, login=login)}"
    )


def _bootstrap(conn: psycopg.Connection) -> None:
    """The owner role, the ledger schema and table; idempotent, run under the lock."""
    try:
        _create_owner_and_ledger(conn)
    except psycopg.errors.InsufficientPrivilege as error:
        raise _missing_privilege(conn, error) from None


def _create_owner_and_ledger(conn: psycopg.Connection) -> None:
    with conn.transaction():
        conn.execute(
            sql.SQL(
                """
                DO $$
                BEGIN
                    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {owner_literal}) THEN
                        CREATE ROLE {owner} NOLOGIN;
                    END IF;
                    -- PostgreSQL 16 gives a role's creator ADMIN without SET: check SET there.
                    IF NOT pg_has_role(current_user, {owner_literal},
                                       CASE WHEN current_setting('server_version_num')::int >= 160000
                                            THEN 'SET' ELSE 'MEMBER' END) THEN
                        GRANT {owner} TO CURRENT_USER;
                    END IF;
                END
                $$
                """
            ).format(owner=sql.Identifier(OWNER_ROLE), owner_literal=sql.Literal(OWNER_ROLE))
        )
        conn.execute(
            sql.SQL("CREATE SCHEMA IF NOT EXISTS {} AUTHORIZATION {}").format(
                sql.Identifier(LEDGER_SCHEMA), sql.Identifier(OWNER_ROLE)
            )
        )
        conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(OWNER_ROLE)))
        conn.execute(
            sql.SQL(
                """
                CREATE TABLE IF NOT EXISTS {}.{} (
                    version     text PRIMARY KEY,
                    name        text NOT NULL UNIQUE,
                    checksum    text NOT NULL,
                    applied_at  timestamptz NOT NULL DEFAULT now(),
                    duration_ms numeric(12, 3) NOT NULL,
                    applied_by  text NOT NULL DEFAULT session_user
                )
                """
            ).format(sql.Identifier(LEDGER_SCHEMA), sql.Identifier(LEDGER_TABLE))
        )


def _apply_one(conn: psycopg.Connection, migration: Migration) -> AppliedMigration:
    set_owner = sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(OWNER_ROLE))
    started = time.perf_counter()
    with conn.transaction():
        if not migration.run_as_session:
            conn.execute(set_owner)
        try:
            conn.execute(migration.sql)
        except psycopg.Error as error:
            detail = str(error).strip().splitlines()[0]
            raise MigrationError(f"{migration.filename} failed and was rolled back: {detail}") from error
        duration_ms = (time.perf_counter() - started) * 1000
        conn.execute(set_owner)  # the ledger belongs to the owner role
        conn.execute(
            sql.SQL("INSERT INTO {}.{} (version, name, checksum, duration_ms) VALUES (%s, %s, %s, %s)").format(
                sql.Identifier(LEDGER_SCHEMA), sql.Identifier(LEDGER_TABLE)
            ),
            (migration.version, migration.name, migration.checksum, round(duration_ms, 3)),
        )
    return AppliedMigration(migration.name, duration_ms)


def apply_migrations(
    conn: psycopg.Connection,
    migrations: list[Migration] | None = None,
    *,
    on_applied: Callable[[AppliedMigration], None] | None = None,
) -> MigrationReport:
    """Apply every pending migration, each in its own transaction, under an advisory lock.

    ``conn`` must be in autocommit mode (transactions are opened here). A failing migration
    is rolled back whole; the ones before it stay applied and recorded.
    """
    if not conn.autocommit:
        raise ValueError("apply_migrations needs an autocommit connection")
    migrations = load_migrations() if migrations is None else migrations
    report = MigrationReport()
    conn.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))
    try:
        _bootstrap(conn)
        ledger = read_ledger(conn)
        pending = check_against_ledger(migrations, ledger)
        report.already_applied = sorted(ledger)
        for migration in pending:
            applied = _apply_one(conn, migration)
            report.applied.append(applied)
            if on_applied:
                on_applied(applied)
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK_KEY,))
    return report


def record_as_applied(conn: psycopg.Connection, migrations: list[Migration]) -> None:
    """Write the ledger of a database whose schema already is ``migrations``' result (``ops db
    baseline`` checked it): every one recorded as applied, in one transaction, under the lock.
    Only onto an empty ledger; ``conn`` in autocommit mode."""
    conn.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))
    try:
        _bootstrap(conn)
        with conn.transaction():
            if read_ledger(conn):
                raise MigrationError(
                    "the migration ledger is not empty: nothing to baseline (fix: python -m ops db migrate)"
                )
            conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(OWNER_ROLE)))
            conn.cursor().executemany(
                sql.SQL("INSERT INTO {}.{} (version, name, checksum, duration_ms) VALUES (%s, %s, %s, 0)").format(
                    sql.Identifier(LEDGER_SCHEMA), sql.Identifier(LEDGER_TABLE)
                ),
                [(m.version, m.name, m.checksum) for m in migrations],
            )
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK_KEY,))


def drop_schema_objects(conn: psycopg.Connection) -> None:
    """Drop everything the migrations created in this database (tables, data, views,
    functions, the ledger). Roles are cluster-wide and stay. Only for stacks that allow
    data destruction."""
    conn.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))
    try:
        with conn.transaction():
            conn.execute(sql.SQL("DROP OWNED BY {} CASCADE").format(sql.Identifier(OWNER_ROLE)))
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK_KEY,))
