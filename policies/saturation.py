"""Saturation: replicas held at their CPU limit show only a lower bound of their demand.

A replica at its limit reads 100 % however large its backlog, so the HPA's calculation can at
most multiply the count by 100 / target in one decision, and then waits (for the warm-up, for
the rate-limit period) before it looks again. But the kernel says when a replica is held back:
CFS throttles it in the periods in which it used up its quota. A replica is *saturated* when it
was throttled in at least half of its window's periods; a service is saturated when at least
half of its settled replicas are. A clone the last scale-up made is not settled in the first
window it counts in (`fresh`): its reading holds its first moments, before its share of the
load reached it, so it cannot say whether the service is still held back; the replicas that
served the whole window can. Counting the fresh ones in that half would end a saturated growth
at the first look after it (three of five replicas reading 77 % while they take on their share)
and leave the rest to the ordinary calculation, one more round for each step; their usage
still counts in the sum below.

While a service is saturated its demand is more than its replicas used (the saturated ones were
held back from using more), so it needs more than sum(used) / target replicas:

    floor = floor(sum(used) / target) + 1

a count it provably needs, never more. A replica throttled in nearly every period of its window
(PEGGED), or a saturated one that reads within AT_LIMIT of its limit, counts as using at least
its whole limit: it ran into its quota period after period, and its reading falls short of the
limit only by where the window's ends cut the CFS periods (a period's quota is a sixth of the
limit over a 0.6 s window), or by the first period or two of a window that began just before
its load rose. Two pegged replicas reading 99.6 % used 200 % of one replica's limit, not 199 %:
their floor is 5, not a phase-dependent 4 that costs the service one more step to get there. A
replica held back only in some periods (a bursty load, reading well below its limit) keeps its
reading. While any replica is starting, or has no sample yet,
there is no floor at all: what the new ones take on is seen before the service grows further.
Replicas inside their warm-up count when they have a sample (a saturated replica is plainly
serving). The floor goes to the behaviour rules marked `saturated`: it may grow every decision
(by `scale-up.saturated-max-percent`, or `scale-up.max-replicas`) instead of once a rate-limit
period. As soon as the service is no longer saturated its utilisation is the demand itself,
and the ordinary calculation sizes it, without overshoot.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import fmean
from typing import Protocol

from policies.base import PolicyInput, ReplicaSample

THROTTLED = 0.5
"""Share of a window's CFS periods throttled from which a replica counts as held back."""
PEGGED = 0.9
"""Share of a window's CFS periods throttled from which a replica counts as at its limit."""
AT_LIMIT = 95.0
"""Percent of its limit from which a saturated replica counts as at its limit."""
_EPSILON = 1e-9
_MARGIN = 1e-12
"""Relative: `band` is narrowed by this much at each end, far less than replicas.py's: replicas
pegged at their limit sum to whole multiples of 100 %, which the floor's own _EPSILON puts only
_EPSILON * target inside the band, and a sum in another order is off by a few ulps, not more."""


@dataclass(frozen=True, slots=True)
class Floor:
    count: int
    reason: str


class Window(Protocol):
    """What these rules read of a replica's window: a policy's ReplicaSample, or the sample the
    controller's quiet round and its state read (autoscaler/control)."""

    @property
    def cpu(self) -> float | None: ...

    @property
    def throttled(self) -> float | None: ...


def saturated(sample: Window) -> bool:
    return sample.throttled is not None and sample.throttled >= THROTTLED


def at_limit(sample: Window) -> bool:
    """Saturated, and either throttled in nearly every period or reading within AT_LIMIT of
    its limit: it used all of its limit (see the module's doc)."""
    if not saturated(sample):
        return False
    return (sample.throttled or 0.0) >= PEGGED or (sample.cpu or 0.0) >= AT_LIMIT


def held_back(samples: Sequence[ReplicaSample], *, to_the_limit: bool = False) -> bool:
    """Whether at least half of these replicas (and one) are saturated; `to_the_limit`: and
    every saturated one at its limit, so that a window that began before their load rose (and
    whose floor would fall short) does not count."""
    held = [s for s in samples if saturated(s)]
    if to_the_limit and not all(at_limit(s) for s in held):
        return False
    return bool(held) and 2 * len(held) >= len(samples)


def floor(inputs: PolicyInput, target: float) -> Floor | None:
    """The count a saturated service needs at least; None when it is not saturated."""
    if any(not s.ready or s.cpu is None for s in inputs.samples):
        # Replicas still starting, or not measured yet, will add capacity: see what they take
        # on before growing further.
        return None
    sampled = list(inputs.samples)
    settled = [s for s in sampled if not s.fresh] or sampled
    if not held_back(settled):
        return None
    held = [s for s in settled if saturated(s)]
    demand = sum(used(s) for s in sampled)
    count = math.floor(demand / target + _EPSILON) + 1
    throttled = fmean(s.throttled or 0.0 for s in held)
    new = len(sampled) - len(settled)
    return Floor(
        count,
        f"saturated: {len(held)} of {len(settled)} {'settled ' if new else ''}replicas held at "
        f"their CPU limit (throttled in {throttled:.0%} of periods"
        f"{f'; {new} new ones taking on their share' if new else ''}), so demand is at least "
        f"{demand:.0f}% of one replica's limit: at least {count}",
    )


def band(count: int, target: float) -> tuple[float, float]:
    """The open interval of the replicas' summed `used` (percent of one replica's limit) within
    which `floor` gives `count` again, for a service whose every replica is held back at its
    limit."""
    low, high = (count - 1 - _EPSILON) * target, (count - _EPSILON) * target
    # Narrowed a little at each end, as replicas.py `steady` is: a sum in another order (a few
    # ulps away) never lands on the other side of an edge.
    return low + abs(low) * _MARGIN + _MARGIN, high - abs(high) * _MARGIN - _MARGIN


def used(sample: Window) -> float:
    """What a replica used, in percent of its limit: at least all of it when pegged there."""
    cpu = sample.cpu or 0.0
    return max(cpu, 100.0) if at_limit(sample) else cpu
