"""The data plane: ``Database`` (``database.py``: the RDS instance, its secrets, the schema, the
logins, the mock data and the flags through the dynamic resources in ``components/``), the
``DatabaseOperator`` function and its read-only twin (``operator.py``), and that function's
reproducible code archive (``operator_package.py``, no Pulumi); and which slot of a credential
rotated without an outage is in use (``credential_slots.py``, no Pulumi)."""
