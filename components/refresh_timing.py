"""How long a rollout's instance refresh may take, and how long one `pulumi up` can wait for it.

Pure (no Pulumi, no boto3): the stack configuration refuses a warmup that cannot fit
(components/config/), and ``InstanceRefreshWait`` waits exactly this long.
"""

from __future__ import annotations

# The backend's refresh: launch before terminate, every instance replaced in one batch.
MIN_HEALTHY_PERCENT, MAX_HEALTHY_PERCENT = 100, 200
# The wait and a rollback at its deadline run in one provider call, which engines before
# pulumi#20920 cut at 30 minutes.
CALL_BUDGET_SECONDS = 30 * 60
ROLLBACK_TIMEOUT_SECONDS = 8 * 60
MAX_TIMEOUT_SECONDS = CALL_BUDGET_SECONDS - ROLLBACK_TIMEOUT_SECONDS
# Per batch before its warmup starts: launch, cloud-init, the load balancer's healthy checks.
LAUNCH_SECONDS = 10 * 60


def batches(instances: int, min_healthy: int = MIN_HEALTHY_PERCENT, max_healthy: int = MAX_HEALTHY_PERCENT) -> int:
    """How many rounds of replacements a refresh takes: each replaces what the percentages leave
    room for above the minimum, (max - min) % of the desired capacity and at least one instance
    ("A larger range increases the number of instances that can be replaced at the same time",
    EC2 Auto Scaling user guide, "Instance maintenance policies")."""
    per_batch = max(1, instances * (max_healthy - min_healthy) // 100)
    return -(-instances // per_batch)


def refresh_timeout(
    instances: int, warmup_seconds: int, min_healthy: int = MIN_HEALTHY_PERCENT, max_healthy: int = MAX_HEALTHY_PERCENT
) -> int:
    """How long a refresh may take: each batch launched, then warmed up."""
    return batches(instances, min_healthy, max_healthy) * (warmup_seconds + LAUNCH_SECONDS)


def max_warmup_seconds(instances: int) -> int:
    """The longest warmup whose refresh still fits one provider call."""
    return MAX_TIMEOUT_SECONDS // batches(instances) - LAUNCH_SECONDS
