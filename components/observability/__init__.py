"""The observability plane: ``Monitoring`` and ``AgentApiKey`` (``monitoring.py``: Datadog
monitors, dashboard, SLOs, synthetics), the Datadog agent's settings on the instances
(``agent_config.py``), and the queries the monitors and the dashboard share
(``datadog_queries.py``, no Pulumi)."""
