"""The local rehearsal (``python -m ops rehearse``) and what the sandbox and the tests share
with it: the steps (``rehearse.py``), the program under Pulumi's mocks (``mock_program.py``,
which the tests and the cost estimate use too) and its plan as text and pictures
(``plan.py``), a Stubber-mocked new account for the plan's preflight (``preflight_mock.py``),
the local TLS PostgreSQL (``local_postgres.py``) with the process that cleans up after a
killed run (``guardian.py``), and the site behind the CloudFront function (``edge.js``).

May import ``dbops``, ``seed``, ``components``, ``ops.live`` (the smoke checks, preflight's
rules) and ``ops.command``; never the cost estimate nor the command line's ``*_cli``
modules, which import this (``tests/test_layout.py``).
"""
