"""Tools against a live stack and its database, the decisions without the I/O where they can
be: the smoke checks (``smoke.py``), drift (``drift.py``), rollback (``rollback.py``), review
stacks' settings and orphans (``review.py``, ``orphans.py``), retained snapshots
(``snapshots.py``), an interrupted update's pending creates (``pending_creates.py``),
``db baseline`` (``baseline.py``) and ``preflight`` (``preflight.py`` decides,
``preflight_aws.py`` reads the account).

May import ``dbops``, ``seed``, ``components`` (the configuration and the pure helpers, never
a Pulumi component) and ``ops.command``; never the rehearsal, the cost estimate, nor the
command line's ``*_cli`` modules, which import this (``tests/test_layout.py``).
"""
