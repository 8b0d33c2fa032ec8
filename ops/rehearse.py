"""``python -m ops rehearse``: the deployment's dress rehearsal on this machine, no cloud account.

For real where it can be: an embedded PostgreSQL gets the migrations, the two login roles,
the mock data, and the verify checks as the deploying login and as each application login.
Under mocks where it cannot: the whole Pulumi program runs with the stack's config, and its
plan is listed by component (and drawn, with ``--graph``). Each step is a ``Step`` whose
``Outcome`` becomes one success criterion with a mark and a timing.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from ops.connection import connect
from ops.login_checks import MAY_WRITE, login_checks
from ops.logins import LoginSpec, ensure_login
from ops.migrations import apply_migrations
from ops.mock_program import ProgramRun
from ops.plan import database_work
from ops.verify import SCHEMA_CHECKS, run_checks, seed_checks
from seed.generator import SeedParameters
from seed.loader import load_mock_data

DATABASE = "swipesavvy_rehearsal"
LOGIN_GROUPS = {"swipesavvy_backend": "swipesavvy_readwrite", "swipesavvy_analytics": "swipesavvy_readonly"}
LOGIN_CONNECTION_LIMIT = 5


@dataclass(frozen=True)
class Outcome:
    passed: bool
    detail: str


@dataclass
class Criterion:
    name: str
    passed: bool
    seconds: float
    detail: str


@dataclass
class Rehearsal:
    """What the steps hand each other."""

    dsn: str = ""
    login_dsns: dict[str, str] = field(default_factory=dict)
    program: ProgramRun | None = None


Step = tuple[str, str, Callable[[Rehearsal], Outcome]]  # (criterion, progress text, action)


def timed(step: Callable[[Rehearsal], Outcome], state: Rehearsal) -> tuple[Outcome, float]:
    started = time.perf_counter()
    outcome = step(state)
    return outcome, time.perf_counter() - started


# --- database steps (real PostgreSQL) ----------------------------------------------------------


def create_database(server_uri: str) -> str:
    with psycopg.connect(server_uri, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
    return make_conninfo(server_uri, dbname=DATABASE)


def migrate(state: Rehearsal) -> Outcome:
    with connect(state.dsn) as conn:
        report = apply_migrations(conn)
        checks = run_checks(conn, SCHEMA_CHECKS)
    failed = [c.name for c in checks if not c.passed]
    details = {c.name: c.detail for c in checks}
    summary = f"{len(report.applied)} migrations; {details['tables']}; {details['indexes']}; {details['feature_flags']}"
    return Outcome(not failed, summary + (f"; failed: {', '.join(failed)}" if failed else ""))


def create_logins(state: Rehearsal) -> Outcome:
    """The logins as LoginRole creates them, with fresh passwords (a stack keeps them in Secrets Manager)."""
    with connect(state.dsn) as conn:
        for login, group in LOGIN_GROUPS.items():
            password = secrets.token_urlsafe(30)
            ensure_login(conn, LoginSpec(login, group, LOGIN_CONNECTION_LIMIT), password)
            state.login_dsns[login] = make_conninfo(state.dsn, user=login, password=password)
    return Outcome(True, ", ".join(f"{login} in {group}" for login, group in LOGIN_GROUPS.items()))


def seed_step(params: SeedParameters) -> Callable[[Rehearsal], Outcome]:
    def seed(state: Rehearsal) -> Outcome:
        with connect(state.dsn) as conn:
            report = load_mock_data(conn, params)
        return Outcome(True, f"{sum(report.counts.values()):,} rows at scale {params.scale:g}")

    return seed


def verify_master(state: Rehearsal) -> Outcome:
    with connect(state.dsn) as conn:
        results = run_checks(conn, SCHEMA_CHECKS + seed_checks(require_seed=True))
    return _checklist_outcome(results, "as the deploying login")


def verify_logins(state: Rehearsal) -> Outcome:
    results = []
    for login, dsn in state.login_dsns.items():
        with connect(dsn) as conn:
            results += [(login, r) for r in login_checks(conn, MAY_WRITE[login], require_seed=True)]
    failed = [f"{login} {r.name}" for login, r in results if not r.passed]
    if failed:
        return Outcome(False, f"failed: {', '.join(failed)}")
    refused = next(r.detail for login, r in results if r.name == "login_read_only")
    return Outcome(True, f"{len(results)} checks; backend writes, analytics {refused}")


def _checklist_outcome(results: list[Any], who: str) -> Outcome:
    failed = [r.name for r in results if not r.passed]
    if failed:
        return Outcome(False, f"failed {who}: {', '.join(failed)}")
    return Outcome(True, f"{len(results)} checks pass {who}")


# --- the program under mocks ---------------------------------------------------------------------


def program_step(run: Callable[[], ProgramRun]) -> Callable[[Rehearsal], Outcome]:
    def plan(state: Rehearsal) -> Outcome:
        state.program = run()
        custom = [r for r in state.program.resources if r.custom]
        components = [r for r in state.program.resources if not r.custom]
        return Outcome(True, f"{len(custom)} resources in {len(components)} components, no error")

    return plan


def backups_planned(state: Rehearsal) -> Outcome:
    work = [name for typ, name in database_work(state.program) if typ == "aws:rds/snapshot:Snapshot"]
    wanted = ("-after-schema", "-after-seed")
    missing = [suffix for suffix in wanted if not any(name.endswith(suffix) for name in work)]
    if missing:
        return Outcome(False, f"no snapshot {' or '.join(missing)} planned")
    return Outcome(True, ", ".join(work))


def application_planned(state: Rehearsal) -> Outcome:
    outputs = state.program.outputs
    present = [name for name in ("api_url", "site_url") if name in outputs]
    if len(present) < 2:
        return Outcome(False, "no api_url/site_url output: swipesavvy:backend and swipesavvy:frontend must be set")
    return Outcome(True, f"backend and site planned; api_url {outputs['api_url'][0]}")


def run_steps(steps: list[Step], state: Rehearsal, progress: Callable[[int, int, str], None]) -> list[Criterion]:
    """Every step in order; a failed one does not stop those that do not depend on it, but an
    exception (the database went away) fails the rest, each named."""
    criteria = []
    broken: str | None = None
    for index, (name, text, step) in enumerate(steps, start=1):
        progress(index, len(steps), text)
        if broken:
            criteria.append(Criterion(name, False, 0.0, f"not run: {broken}"))
            continue
        try:
            outcome, seconds = timed(step, state)
        except Exception as error:  # a step's own one-line failure (DatabaseUnavailable, MigrationError...)
            broken = f"{name} failed"
            criteria.append(Criterion(name, False, 0.0, " ".join(str(error).split())))
            continue
        criteria.append(Criterion(name, outcome.passed, seconds, outcome.detail))
    return criteria


def criteria_rows(criteria: list[Criterion]) -> list[tuple[str, bool, str]]:
    """The criteria as checklist rows: the timing, then what was found."""
    return [(c.name, c.passed, f"{c.seconds:6.2f} s  {c.detail}") for c in criteria]


def rehearsal_steps(params: SeedParameters, run_program: Callable[[], ProgramRun]) -> list[Step]:
    """The runbook's success criteria this machine can establish, in the runbook's order."""
    return [
        ("schema", "applying the migrations", migrate),
        ("login_roles", "creating the login roles", create_logins),
        ("mock_data", "loading the mock data", seed_step(params)),
        ("data_integrity", "verifying as the deploying login", verify_master),
        ("app_logins", "verifying as each application login", verify_logins),
        ("program", "running the Pulumi program under mocks", program_step(run_program)),
        ("backups_planned", "reading the plan", backups_planned),
        ("application_planned", "reading the plan", application_planned),
    ]
