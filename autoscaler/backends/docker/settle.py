"""When the load has moved onto a service's new replicas, after a saturated service grew.

The look after a saturated growth decides the next step on windows started after the action
(collector.py). A new replica does not serve from its first instant: its process starts, the
balancer finds it, its share of the requests reaches it. A window started at the action's end
holds that ramp, and the new replicas read well below what they will carry (three of five read
77 % while the two old ones stayed at their limit): the floor they give is one step short, and
the step after it a round later. So the windows start again once the load has moved: each new
replica is watched, slice by slice (its cgroup's counter, tens of microseconds a read), until it
uses at least TAKEN of what the service's other replicas use on average, over two spans in a
row; then the windows restart and the look comes once they measure. Two, because a replica's own
start (its process, a shell forking its workers) is a burst of CPU too: under a limit of a tenth
of a core, a few milliseconds of it in one span read as half a share (on a busy host the step
after 2 -> 5 was decided 0.2 s after the action, before the new replicas took any load, and fell
one short). A new replica whose health check still says `starting` has not taken its share
either: a balancer that heeds health checks does not send it requests yet. Until the load has
moved no round measures the service: its windows would hold the ramp. A new replica the balancer
never reaches (the idle finding, policies/idle.py) would hold the look back for good: after
`longest` seconds (an interval) the windows restart whatever the new ones do.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass, field
from statistics import fmean

from autoscaler.backends.docker.collector import Reading

SLICE = 0.1
"""Seconds between two reads of the counters: one CFS period."""
SPAN = 2
"""Slices a comparison spans: over one, where the period's burst falls decides too much."""
IN_A_ROW = 2
"""Spans in a row, none overlapping, over which the new replicas must each have taken their
share: a burst within one span (a start) is not load."""
TAKEN = 0.5
"""A new replica has taken on its share once it uses this share of the others' mean."""


def moved(before: Mapping[str, Reading], after: Mapping[str, Reading], new: Set[str]) -> bool:
    """Whether each new replica used at least TAKEN of what the others used on average
    between two reads. A replica read only once (gone, or just seen) has no say; with no
    other replica to compare with, the load is where it will be."""
    rates = {
        cid: (now.counters.cpu_ns - then.counters.cpu_ns) / (now.at_ns - then.at_ns)
        for cid, now in after.items()
        if (then := before.get(cid)) is not None and now.at_ns > then.at_ns
    }
    others = [rate for cid, rate in rates.items() if cid not in new]
    if not others:
        return True
    bar = TAKEN * fmean(others)
    return all(rate >= bar for cid, rate in rates.items() if cid in new)


@dataclass
class Settling:
    """One service's new replicas being watched as the load moves onto them."""

    new: frozenset[str]
    began: float
    """When the watch began (monotonic seconds)."""
    longest: float
    """Seconds after which the load counts as moved, whatever the new replicas do."""
    next: float = 0.0
    """When its counters are read next (monotonic seconds)."""
    reads: list[Mapping[str, Reading]] = field(default_factory=list)

    def read(
        self, readings: Mapping[str, Reading], now: float, starting: Set[str] = frozenset()
    ) -> bool:
        """One read of the service's counters at `now`: True once the load has moved.
        `starting`: the replicas whose health check has not yet said whether they are healthy."""
        self.reads = [*self.reads[-SPAN * IN_A_ROW :], readings]
        self.next = now + SLICE
        if now - self.began >= self.longest:
            return True
        if self.new & starting or len(self.reads) <= SPAN * IN_A_ROW:
            return False
        spans = zip(self.reads[::SPAN], self.reads[SPAN::SPAN], strict=False)
        return all(moved(before, after, self.new) for before, after in spans)
