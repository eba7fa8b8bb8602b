"""The Kubernetes HPA's replica calculation (`replica_calculator.go`), for one metric.

Which samples count: a replica the engine reports not ready (starting, unhealthy), or inside its
warm-up, is *unready*; a ready replica without a reading yet is *missing*. Then:

* all samples present: `desired = ceil(ready * utilisation / target)` unless the ratio is within
  tolerance;
* otherwise the ratio is recomputed with missing replicas assumed at the target when scaling down
  and idle when scaling up, and unready replicas assumed idle when scaling up, so a replica that
  has not shown its load yet can cause neither an overshoot nor a scale-down. If that flips the
  direction, or lands within tolerance, the count holds;
* while any replica is unready the count never falls (`hold_while_unready`; the HPA leaves that
  to its five-minute window: with a short window, the ready replicas' low readings, lowered by the
  unready one's share, would shrink the service below its need).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import fmean

from policies.base import PolicyInput, ReplicaSample

# Guards ceil() against 3.0000000000000004 turning into 4.
_EPSILON = 1e-9


@dataclass(frozen=True, slots=True)
class Groups:
    ready: tuple[ReplicaSample, ...]
    unready: int
    missing: int
    ignored: dict[str, str]


def group(inputs: PolicyInput, warmup: float) -> Groups:
    ready: list[ReplicaSample] = []
    ignored: dict[str, str] = {}
    unready = missing = 0
    for s in inputs.samples:
        warming = s.started_at > 0 and inputs.now - s.started_at < warmup
        if not s.ready or warming:
            unready += 1
            note = s.note if not s.ready else f"warming up ({inputs.now - s.started_at:.0f}s)"
            ignored[s.container_id] = note or "not ready"
        elif s.cpu is None:
            missing += 1
            ignored[s.container_id] = "no sample yet"
        else:
            ready.append(s)
    # Replicas the engine counts but that sent no sample at all are missing too.
    missing += max(inputs.current - len(inputs.samples), 0)
    return Groups(tuple(ready), unready, missing, ignored)


def replica_count(
    values: list[float],
    target: float,
    current: int,
    groups: Groups,
    *,
    up_tolerance: float,
    down_tolerance: float,
    hold_while_unready: bool = True,
) -> int:
    """HPA's proposal for one metric from the ready replicas' `values` (percent)."""
    ratio = fmean(values) / target

    def within(r: float) -> bool:
        return 1 - down_tolerance <= r <= 1 + up_tolerance

    if not groups.missing and not groups.unready:
        return current if within(ratio) else math.ceil(ratio * len(values) - _EPSILON)

    total, count = sum(values), len(values)
    if groups.missing and ratio != 1:
        # At the target going down, idle going up: neither can cause the move. (At exactly the
        # target they are left out, as the HPA does, rather than taken as idle.)
        total += (target if ratio < 1 else 0.0) * groups.missing
        count += groups.missing
    if groups.unready and ratio > 1:
        count += groups.unready  # idle going up; left out going down
    adjusted = total / count / target
    # Filling in can only move the ratio toward 1 from below (the missing at the target), so
    # a flip is only ever from above: a scale-up that the idle replicas turn into a scale-down.
    if within(adjusted) or ratio > 1 > adjusted:
        proposal = current
    else:
        proposal = math.ceil(adjusted * count - _EPSILON)
        if (adjusted < 1 and proposal > current) or (adjusted > 1 and proposal < current):
            proposal = current
    if hold_while_unready and groups.unready and proposal < current:
        # A replica that is running but not counted yet (starting, warming up) carries its
        # share already: the others read low partly because of it. Shrink once it is counted.
        return current
    return proposal
