"""The operator's command line, ``python -m ops``, and what only it uses, without Pulumi
(except the mocked program). Here, at the top, the command line: ``cli.py`` parses and
dispatches, each command's I/O is in its ``*_cli.py`` module, ``command.py`` holds what every
command shares, ``stack_target.py`` a stack's database for ``--stack`` and ``pulumi_cli.py``
the Pulumi CLI as the commands run it. The decisions live by concern in the sub-packages,
free of I/O where they can be:

- ``live/``: tools against a live stack (smoke, drift, rollback, review stacks, snapshots,
  preflight, pending creates, ``db baseline``);
- ``rehearsal/``: the local rehearsal, its mocked program and plan, the local PostgreSQL;
- ``cost/``: the monthly estimate with its price tables.

The modules here may import everything (the sub-packages, ``dbops``, ``seed``,
``components``); a sub-package's docstring says what it may import, and nothing under
``dbops/`` or ``components/`` imports ``ops`` (``tests/test_layout.py``). The database
operations, the operator function's handler and its client are ``dbops/``'s.

A module that moved stays importable at its old path as the very same module
(``ops.migrations`` is ``dbops.migrations``, ``ops.smoke`` is ``ops.live.smoke``), so scripts
written against the old layout keep working; new code imports the new path. ``ops.cost``
itself is now the cost package: the estimate that module held is ``ops.cost.estimate``.
"""

from components import keep_old_paths

# Old paths only for modules main had before the layout: the newer ones never had another.
_DBOPS = (
    "authority",
    "aws_credentials",
    "connection",
    "db_credentials",
    "flags",
    "login_checks",
    "logins",
    "migrations",
    "operations",
    "operator_client",
    "operator_handler",
    "transport",
    "verify",
)
_LIVE = ("drift", "review", "rollback", "smoke", "snapshots")
_REHEARSAL = ("guardian", "local_postgres", "mock_program", "plan", "rehearse")

# old module name -> where it lives now
MOVED = {
    **{f"ops.{name}": f"dbops.{name}" for name in _DBOPS},
    **{f"ops.{name}": f"ops.live.{name}" for name in _LIVE},
    **{f"ops.{name}": f"ops.rehearsal.{name}" for name in _REHEARSAL},
    "ops.price_list": "ops.cost.price_list",
}

keep_old_paths(MOVED)
