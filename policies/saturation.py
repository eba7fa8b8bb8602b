"""Saturation: replicas held at their CPU limit show only a lower bound of their demand.

A replica at its limit reads 100 % however large its backlog, so the HPA's calculation can at
most multiply the count by 100 / target in one decision, and then waits (for the warm-up, for
the rate-limit period) before it looks again. But the kernel says when a replica is held back:
CFS throttles it in the periods in which it used up its quota. A replica is *saturated* when it
was throttled in at least half of its window's periods; a service is saturated when at least
half of its replicas are.

While a service is saturated its demand is more than its replicas used (the saturated ones were
held back from using more), so it needs more than sum(used) / target replicas:

    floor = floor(sum(used) / target) + 1

a count it provably needs, never more. While any replica is starting, or has no sample yet,
there is no floor at all: what the new ones take on is seen before the service grows further.
Replicas inside their warm-up count when they have a sample (a saturated replica is plainly
serving). The floor goes to the behaviour rules marked `saturated`: it may grow every decision
(by `scale-up.saturated-max-percent`, or `scale-up.max-replicas`) instead of once a rate-limit
period. As soon as the service is no longer saturated its utilisation is the demand itself,
and the ordinary calculation sizes it, without overshoot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import fmean

from policies.base import PolicyInput, ReplicaSample

THROTTLED = 0.5
"""Share of a window's CFS periods throttled from which a replica counts as held back."""
_EPSILON = 1e-9


@dataclass(frozen=True, slots=True)
class Floor:
    count: int
    reason: str


def saturated(sample: ReplicaSample) -> bool:
    return sample.throttled is not None and sample.throttled >= THROTTLED


def floor(inputs: PolicyInput, target: float) -> Floor | None:
    """The count a saturated service needs at least; None when it is not saturated."""
    if any(not s.ready or s.cpu is None for s in inputs.samples):
        # Replicas still starting, or not measured yet, will add capacity: see what they take
        # on before growing further.
        return None
    sampled = list(inputs.samples)
    held = [s for s in sampled if saturated(s)]
    if not held or 2 * len(held) < len(sampled):
        return None
    used = sum(s.cpu or 0.0 for s in sampled)
    count = math.floor(used / target + _EPSILON) + 1
    throttled = fmean(s.throttled or 0.0 for s in held)
    return Floor(
        count,
        f"saturated: {len(held)} of {len(sampled)} replicas held at their CPU limit "
        f"(throttled in {throttled:.0%} of periods), so demand is at least {used:.0f}% "
        f"of one replica's limit: at least {count}",
    )
