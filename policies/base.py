"""What every policy takes and returns.

A policy turns samples into a `Proposal`: a count and the reason for it. It never bounds,
stabilizes or rate-limits that count: `policies.behavior.Behavior` does, the same for every
policy, built-in or plugin, and turns the proposal into the `Decision` that is acted on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar, Protocol

from policies.records import record


class Direction(StrEnum):
    UP = "up"
    DOWN = "down"
    NONE = "none"


@record
class ReplicaSample:
    """One replica's utilisation over the last interval.

    `cpu` is percent of the replica's CPU limit (of one core when it has none); `memory` is percent
    of its memory limit, None when it has no limit. `ready` is False when the engine says the
    replica is not serving (starting, or its health check says starting or unhealthy), with
    `note` saying why; `started_at` (seconds, same clock as `PolicyInput.now`; 0 when not
    known) lets a policy treat replicas inside their warm-up as not ready. `throttled` is the
    share of the window's CFS periods in which the kernel held the replica back at its CPU
    limit (0 to 1), None where that is not known or it has no limit: a throttled replica's
    `cpu` is a lower bound of its demand, not the demand. `fresh` marks a clone that the last
    scale-up made, in the first window it counts in: part of that window went on its first
    moments, before its share of the load reached it.
    """

    container_id: str
    cpu: float | None
    memory: float | None = None
    ready: bool = True
    note: str = ""
    started_at: float = 0.0
    throttled: float | None = None
    fresh: bool = False


@dataclass(frozen=True, slots=True)
class Signal:
    """A service-level measure of demand (a queue's depth, a request rate), as the service's
    metric source last gave it. `value` is None when there is none to trust: never read, older
    than the source's max age, or the source failed (`error` says how)."""

    name: str
    """Where it comes from, for reasons: `mqtt queue/jobs`, `prometheus sum(rate(...))`."""
    value: float | None
    age: float | None = None
    """Seconds since it was measured."""
    error: str | None = None


@dataclass(frozen=True, slots=True)
class PolicyInput:
    current: int
    minimum: int
    maximum: int
    samples: tuple[ReplicaSample, ...]
    now: float
    """Seconds on a clock that only moves forward (the controller's monotonic clock, or the
    simulator's): what the behaviour's windows, rates and cooldowns are measured by."""
    signal: Signal | None = None
    """The service's metric source, when its labels name one."""
    wall: float | None = None
    """Wall time (seconds since the epoch): what repeats by the time of day is read on it."""
    startup: float | None = None
    """Seconds a new replica of the service took to count, as measured (from the action that
    created it to its first counted sample); None before one was measured."""


@dataclass(frozen=True, slots=True)
class Steady:
    """Where a proposal stands whatever its readings do next: for a later round of the same
    replicas (as many, every one ready and measured, none fresh, no metric; none held back at its
    CPU limit, or with `held` every one) whose mean CPU lies strictly between `low` and `high`, the
    policy proposes the same count again. A caller that sees such a round may take the proposal
    as made (the controller does, for a quiet service: pipeline.py `again`), so it must be
    exact; the reason then is the one of the round that asked."""

    low: float
    high: float
    held: tuple[float, float] | None = None
    """A saturated service's band (saturation.py): every replica held back at its CPU limit,
    what they used summed (as saturation's floor sums it) strictly within these, and the mean
    CPU within `low` and `high`. None: none of them held back."""

    def holds(self, cpu: float, held: float | None = None) -> bool:
        """`held`: what the replicas used, summed, where every one is held back at its limit;
        None where none is (a round with some held back and some not is no round for a band)."""
        if not self.low < cpu < self.high:
            return False
        if self.held is None or held is None:
            return self.held is None and held is None
        return self.held[0] < held < self.held[1]


@dataclass(frozen=True, slots=True)
class Proposal:
    """What a policy wants, before any bound or rate applies."""

    count: int | None
    """The replicas the policy's rule asks for; None when it had nothing to go on (hold)."""
    reason: str
    metrics: Mapping[str, float] = field(default_factory=dict)
    """Mean value per metric over the samples that counted."""
    ignored: Mapping[str, str] = field(default_factory=dict)
    """container id -> why its sample did not count."""
    notes: tuple[str, ...] = ()
    """Rules inside the policy that had a say (a noise band, saturation), one line each."""
    saturated: bool = False
    """The service is held at its CPU limit, so `count` is a floor of what it needs now: the
    behaviour lets it grow every decision, by `scale-up.saturated-max-percent`, instead of
    waiting for the period's rate limit or the scale-up cooldown."""
    steady: Steady | None = None
    """Where the same count would be proposed again (see Steady); None where the policy cannot
    say."""


@dataclass(frozen=True, slots=True)
class Decision:
    """A proposal after the behaviour rules: the count to act on, and everything needed to
    explain it afterwards."""

    current: int
    desired: int
    reason: str
    proposal: int | None = None
    """The raw count the policy's rule asked for; None when it had no usable samples."""
    stabilized: int | None = None
    """The proposal after the stabilization windows, before rate limits, cooldowns and bounds."""
    bound: str | None = None
    """What changed the stabilized count: "min", "max", "rate", "cooldown", or "own" (the
    user's containers, which are never removed); None if nothing."""
    metrics: Mapping[str, float] = field(default_factory=dict)
    ignored: Mapping[str, str] = field(default_factory=dict)
    steps: tuple[str, ...] = ()
    """How the proposal became `desired`, one line per rule that had a say."""
    saturated: bool = False
    """It grows a saturated service to a floor of its need (see Proposal.saturated)."""

    @property
    def direction(self) -> Direction:
        if self.desired > self.current:
            return Direction.UP
        if self.desired < self.current:
            return Direction.DOWN
        return Direction.NONE


class Policy(Protocol):
    name: ClassVar[str]

    def propose(self, inputs: PolicyInput) -> Proposal: ...


def clamp(proposal: int, minimum: int, maximum: int) -> tuple[int, str | None]:
    """Bound `proposal` to [minimum, maximum] and say which bound applied."""
    if proposal > maximum:
        return maximum, "max"
    if proposal < minimum:
        return minimum, "min"
    return proposal, None
