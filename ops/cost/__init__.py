"""``python -m ops cost``'s estimate, from a plan, without Pulumi: what each resource type is
billed for (``pricers.py``; ``free.py``: the types that cost nothing themselves), the price
tables and their checks (``price_tables.py`` over ``prices/<region>.json``), their refresh from
AWS's Price List API (``price_list.py``), each stack's usage file (``usage.py``), the estimate
(``estimate.py``) and its text and pull-request comment (``report.py``).

May import ``components`` (the configuration) and ``ops.rehearsal``'s plan and mocked
program (a stack is priced from the plan the mocks produce); never ``ops.live`` nor the
command line's ``*_cli`` modules, which import this (``tests/test_layout.py``).
"""
