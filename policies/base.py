"""What every policy takes and returns, and the one place where counts are clamped."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


class Direction(StrEnum):
    UP = "up"
    DOWN = "down"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class ReplicaSample:
    """One replica's utilisation in one interval.

    `cpu` is percent of the replica's CPU limit (of one core when it has none); `memory` is percent
    of its memory limit, None when it has no limit. A replica that is not `ready` (starting, or its
    health check says starting or unhealthy) is reported with `note` saying why.
    """

    container_id: str
    cpu: float | None
    memory: float | None = None
    ready: bool = True
    note: str = ""


@dataclass(frozen=True, slots=True)
class PolicyInput:
    current: int
    minimum: int
    maximum: int
    samples: tuple[ReplicaSample, ...]
    now: float


@dataclass(frozen=True, slots=True)
class Decision:
    """A policy's answer, carrying everything needed to explain it afterwards."""

    current: int
    desired: int
    reason: str
    proposal: int | None = None
    """The raw count the policy asked for, before min/max bound it; None when it had no data."""
    bound: str | None = None
    """Which limit changed the proposal ("min", "max"), if any."""
    metrics: Mapping[str, float] = field(default_factory=dict)
    ignored: Mapping[str, str] = field(default_factory=dict)
    """container id -> why its sample did not count."""

    @property
    def direction(self) -> Direction:
        if self.desired > self.current:
            return Direction.UP
        if self.desired < self.current:
            return Direction.DOWN
        return Direction.NONE


class Policy(Protocol):
    name: str

    def evaluate(self, inputs: PolicyInput) -> Decision: ...


def clamp(proposal: int, minimum: int, maximum: int) -> tuple[int, str | None]:
    """Bound `proposal` to [minimum, maximum] and say which bound applied."""
    if proposal > maximum:
        return maximum, "max"
    if proposal < minimum:
        return minimum, "min"
    return proposal, None
