"""The mock data (runbook phase 2): its deterministic generator and its COPY loader (no Pulumi)."""
