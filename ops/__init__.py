"""The operator's side, without Pulumi (except ``mock_program.py``): ``python -m ops``
(``cli.py`` parses and dispatches; each command's I/O is in its ``*_cli.py`` module, the
decisions in the module of the same subject, free of I/O), the database operations the
dynamic providers and the operator function share, that function's handler and client,
the smoke checks, the rehearsal, the cost estimate, and the local servers rehearse and
sandbox start."""
