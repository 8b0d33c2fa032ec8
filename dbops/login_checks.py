"""Runbook 5.1 as code: the application logins connect, read, and write only as they may.

Run connected AS the login (not as the deploying login), so what is checked is what the
backend and the analytics users really get: ``swipesavvy_backend`` reads and writes,
``swipesavvy_analytics`` reads and is refused a write. The write is a real INSERT, always
rolled back, so the check leaves no row behind either way. ``login_checks`` adds these to
the verify checklist, run as the login.

Plain psycopg 3, no Pulumi.
"""

from __future__ import annotations

import psycopg

from dbops.verify import SCHEMA_CHECKS, Check, CheckResult, run_checks, seed_checks

# Which application logins may write (the stack's LOGIN_ROLES: readwrite and readonly groups).
MAY_WRITE = {"swipesavvy_backend": True, "swipesavvy_analytics": False}
# A row any DML-capable login may add, with nothing but defaults besides a flag to point at.
PROBE_INSERT = (
    "INSERT INTO feature_flag_usage (flag_id, user_id, evaluated_value)"
    " SELECT id, 0, enabled FROM feature_flags ORDER BY id LIMIT 1"
)


class _Undo(Exception):
    """Raised inside the probe's transaction to roll it back after a successful write."""


def check_reads(conn: psycopg.Connection) -> CheckResult:
    user, flags = conn.execute("SELECT current_user, count(*) FROM feature_flags").fetchone()
    return CheckResult("login_reads", flags > 0, f"{user} reads {flags} flags")


def _write_refused(conn: psycopg.Connection) -> str | None:
    """None when the probe INSERT succeeded (and was rolled back), else the server's reason."""
    try:
        with conn.transaction():
            conn.execute(PROBE_INSERT)
            raise _Undo
    except _Undo:
        return None
    except psycopg.errors.InsufficientPrivilege as error:
        return error.diag.message_primary or "permission denied"


def write_check(may_write: bool) -> Check:
    def check_write(conn: psycopg.Connection) -> CheckResult:
        refused = _write_refused(conn)
        if may_write:
            return CheckResult("login_writes", refused is None, refused or "INSERT allowed (rolled back)")
        return CheckResult(
            "login_read_only", refused is not None, f"INSERT refused: {refused}" if refused else "INSERT ALLOWED"
        )

    return check_write


def login_checks(conn: psycopg.Connection, may_write: bool, require_seed: bool) -> list[CheckResult]:
    """The verify checklist as this login sees the database, then its access checks."""
    checks = (*SCHEMA_CHECKS, *seed_checks(require_seed=require_seed), check_reads, write_check(may_write))
    return run_checks(conn, checks)
