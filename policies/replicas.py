"""The Kubernetes HPA's replica calculation (`replica_calculator.go`), for one metric.

Which samples count: a replica the engine reports not ready (starting, unhealthy), or inside its
warm-up, is *unready*; a ready replica without a reading yet is *missing* (the HPA heeds
readiness and the warm-up for CPU alone: `group(readiness=False)` for other metrics). Then, as
`GetResourceReplicas` and `calcPlainMetricReplicas` do:

* no unready replica on a scale-up and none missing: `desired = ceil(ready * ratio)`, where
  `ratio = utilisation / target`, unless the ratio is within tolerance (`Tolerances.isWithin`);
* otherwise the ratio is recomputed with the missing and unready replicas filled in, so that a
  replica that has not shown its load yet can cause neither an overshoot nor a scale-down.
  Scaling up, both count as idle (0). Scaling down, unready replicas are left out and missing
  ones are assumed at `missing_down`: the target by default (`calcPlainMetricReplicas`, for a
  value each replica carries), or `assumed_missing(target, resource=True)`, the HPA's rule for
  a utilisation (`GetResourceReplicas`: `max(100, target)` percent). If the recomputed ratio
  is within tolerance, or lies on the other side of 1 (the direction flips: below 1 before and
  above after, or the reverse), the count holds; so does a count against the recomputed
  ratio's direction. Else `desired = ceil(ratio * counted)`;
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


def group(inputs: PolicyInput, warmup: float, *, readiness: bool = True) -> Groups:
    """Ready, unready and missing replicas.

    `readiness=False` is the HPA's rule for every metric but CPU: `groupPods` looks at a pod's
    readiness and its initialisation period only `if resource == v1.ResourceCPU`, so there a
    replica with a sample counts whether it is ready, warming up or neither. One without a
    sample stays unready when it is not ready (the HPA's Pending pod), and is missing when it is.
    """
    ready: list[ReplicaSample] = []
    ignored: dict[str, str] = {}
    unready = missing = 0
    for s in inputs.samples:
        warming = s.started_at > 0 and inputs.now - s.started_at < warmup
        if (not s.ready or warming) if readiness else (not s.ready and s.cpu is None):
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


def assumed_missing(target: float, *, resource: bool) -> float:
    """The reading a replica without one is assumed at when the others ask for fewer.

    A utilisation (`resource`, percent of the replica's limit) is assumed at its full limit, or
    at the target where that is higher: `GetResourceReplicas` fills a missing pod in at
    `requests[pod] * max(100, targetUtilization) / 100`. Any other value is assumed at the
    target: `calcPlainMetricReplicas` fills it in at `targetUsage`.
    """
    return max(100.0, target) if resource else target


def replica_count(
    values: list[float],
    target: float,
    current: int,
    groups: Groups,
    *,
    up_tolerance: float,
    down_tolerance: float,
    missing_down: float | None = None,
    hold_while_unready: bool = True,
) -> int:
    """HPA's proposal for one metric from the ready replicas' `values` (in the unit of `target`).

    `missing_down`: what a missing replica is assumed at on a scale-down, the target when None
    (see `assumed_missing`).
    """
    ratio = fmean(values) / target

    def within(r: float) -> bool:
        return 1 - down_tolerance <= r <= 1 + up_tolerance

    if not groups.missing and not groups.unready:
        return current if within(ratio) else math.ceil(ratio * len(values) - _EPSILON)

    total, count = sum(values), len(values)
    if groups.missing and ratio != 1:
        # Going down at `missing_down` (the target, or the full limit), going up idle: neither
        # can cause the move. At exactly the target they are left out, as the HPA does.
        down = target if missing_down is None else missing_down
        total += (down if ratio < 1 else 0.0) * groups.missing
        count += groups.missing
    if groups.unready and ratio > 1:
        count += groups.unready  # idle going up; left out going down
    adjusted = total / count / target
    # A flip either way holds: from above when the idle replicas outweigh the busy ones, from
    # below when missing ones assumed above the target (the HPA's full limit) outweigh the idle.
    if within(adjusted) or ratio > 1 > adjusted or ratio < 1 < adjusted:
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


_MARGIN = 1e-9
"""Relative: a band is narrowed by this much at each end, so that a mean summed in another order
(a few ulps away from `fmean`'s) never lands on the other side of one of its edges."""


def steady(
    mean: float,
    target: float,
    ready: int,
    *,
    up_tolerance: float,
    down_tolerance: float,
) -> tuple[float, float]:
    """The open interval of mean readings around `mean` within which `replica_count` gives the
    same count again, for `ready` replicas all ready and measured (none missing or unready):
    the tolerance band holds the current count in it; outside it, `ceil(ready * ratio)` stays one
    count over a slice of width target / ready, cut where the tolerance band begins."""
    low_tolerance, high_tolerance = 1 - down_tolerance, 1 + up_tolerance
    ratio = mean / target
    if low_tolerance <= ratio <= high_tolerance:
        low, high = low_tolerance, high_tolerance
    else:
        count = math.ceil(ratio * ready - _EPSILON)
        low, high = (count - 1 + _EPSILON) / ready, (count + _EPSILON) / ready
        if ratio < low_tolerance:
            high = min(high, low_tolerance)
        else:
            low = max(low, high_tolerance)
    low, high = low * target, high * target
    return low + abs(low) * _MARGIN + _MARGIN, high - abs(high) * _MARGIN - _MARGIN
