"""The operator's side, without Pulumi (except ``mock_program.py``): ``python -m ops``
(``cli.py`` parses and dispatches; each command's I/O is in its ``*_cli.py`` module, the
decisions in the module of the same subject, free of I/O), the smoke checks, the rehearsal,
the cost estimate, and the local servers rehearse and sandbox start. The database
operations, the operator function's handler and its client are ``dbops/``'s.

A module that moved out stays importable at its old path as the very same module
(``ops.migrations`` is ``dbops.migrations``), so scripts written against the old layout keep
working; new code imports the new path.
"""

from components import keep_old_paths

# old module name -> where it lives now
MOVED = {
    f"ops.{name}": f"dbops.{name}"
    for name in (
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
}

keep_old_paths(MOVED)
