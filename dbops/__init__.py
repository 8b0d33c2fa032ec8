"""The database operator: the code that changes and reads the stack's PostgreSQL, and the
whole of what runs inside the operator Lambda functions (their archive is this package plus
``seed/``, ``sql/`` and RDS's CA bundle: ``components/data/operator_package.py``).

- the operations (``operations.py``: migrations, logins, feature flags, the seed, verify,
  each with its own module) over one connection (``connection.py``, ``db_credentials.py``);
- the function's side: its handler (``operator_handler.py``) and the authority it enforces
  (``authority.py``);
- the caller's side: invoking the function (``operator_client.py``) or connecting directly,
  one path for every caller (``transport.py``: the dynamic providers and ``python -m ops``).

It imports only itself, ``seed/``, psycopg and boto3: never Pulumi, never the program
(``components/``) nor the command line (``ops/``), which both import it
(``tests/test_layout.py`` walks the imports).
"""
