"""Target tracking, the default policy: the Kubernetes HPA's calculation and behaviour, plus a
noise band that keeps a noisy but level load from moving the count at all.

The noise band: the policy remembers its recent estimates of the replicas needed
(`current * utilisation / target`) and measures their noise from successive differences (a
median, so one real step barely moves it). The tolerance band is widened to `noise-band` times
that noise, never narrowed below the tolerance. A level load with ±20 % noise then causes no
action, while a real step, many times the noise, is followed in the same interval. Until a few
estimates are in, the noise is unknown: a move then needs two estimates in a row outside the
band (at least ±50 %) on the same side: a big change is followed one interval late, a moderate
one waits until the noise is known, and this only in a service's first few intervals.

Memory can be a second target (the proposal is the larger of the two) or, with
`memory.mode=guard`, only a guard: it never scales up, but holds a scale-down that would push
memory per replica above its target. Container memory rarely shrinks once touched, so a memory
*target* tends to scale up and stay there; a guard is usually what is wanted.
"""

from __future__ import annotations

import math
from collections import deque
from statistics import fmean, median
from typing import ClassVar, Literal

from pydantic import Field

from policies.base import PolicyInput, Proposal, ReplicaSample
from policies.options import PolicyOptions, Seconds
from policies.replicas import Groups, group, replica_count

# Five minutes of estimates at a 5 s interval: enough for the median to be steady.
_NOISE_HISTORY = 60
# Fewer estimates than this and the noise is not known yet (see _tolerances).
_NOISE_MIN = 5
# While learning, only a change this large (and seen twice) is taken for real.
_LEARNING_BAND = 0.5
# For Gaussian noise, median(|x[t] - x[t-1]|) = 0.6745 * sqrt(2) * sigma.
_MAD_TO_SIGMA = 1 / (0.6745 * math.sqrt(2))


class TargetTrackingOptions(PolicyOptions):
    cpu_target: float = Field(alias="cpu.target", gt=0, le=1000)
    """Percent of the CPU limit (of one core without a limit) each replica should average."""
    memory_target: float | None = Field(default=None, alias="memory.target", gt=0, le=100)
    """Percent of the memory limit; only replicas with a memory limit report it."""
    memory_mode: Literal["target", "guard"] = Field(default="target", alias="memory.mode")
    up_tolerance: float = Field(default=0.1, alias="scale-up.tolerance", ge=0, lt=10)
    down_tolerance: float = Field(default=0.1, alias="scale-down.tolerance", ge=0, lt=1)
    noise_band: float = Field(default=4.0, alias="noise-band", ge=0, le=10)
    """Widen the tolerance to this many standard deviations of the measured noise; 0: off."""
    warmup: Seconds = Field(default=10.0, alias="warmup")
    """A new replica's samples do not count for this long: right after a scale-up the load has
    not spread yet, and counting the new replicas as idle (HPA's rule for unready ones) keeps
    the old replicas' stale, high readings from causing a second, needless scale-up."""


class TargetTracking:
    name: ClassVar[str] = "target-tracking"
    Options: ClassVar[type[TargetTrackingOptions]] = TargetTrackingOptions

    def __init__(self, options: TargetTrackingOptions) -> None:
        self.options = options
        self._estimates: dict[str, deque[float]] = {}

    def propose(self, inputs: PolicyInput) -> Proposal:
        o = self.options
        groups = group(inputs, o.warmup)
        metrics: dict[str, float] = {}
        proposals: dict[str, int] = {}
        notes: list[str] = []
        for metric, target in self._targets().items():
            values = [v for v in (_value(s, metric) for s in groups.ready) if v is not None]
            if not values:
                continue
            metrics[metric] = fmean(values)
            estimate = metrics[metric] / target * inputs.current
            up, down = self._tolerances(metric, estimate, inputs.current, notes)
            proposals[metric] = replica_count(
                values, target, inputs.current, groups, up_tolerance=up, down_tolerance=down
            )

        count, reason = self._combine(inputs, proposals, metrics, groups)
        return Proposal(count, reason, metrics, groups.ignored, tuple(notes))

    def _targets(self) -> dict[str, float]:
        targets = {"cpu": self.options.cpu_target}
        if self.options.memory_target is not None:
            targets["memory"] = self.options.memory_target
        return targets

    def _tolerances(
        self, metric: str, estimate: float, current: int, notes: list[str]
    ) -> tuple[float, float]:
        """The tolerance band, widened to the measured noise of the needed-replicas estimate."""
        o = self.options
        history = self._estimates.setdefault(metric, deque(maxlen=_NOISE_HISTORY))
        previous = history[-1] if history else None
        history.append(estimate)
        if o.noise_band <= 0:
            return o.up_tolerance, o.down_tolerance
        if len(history) < _NOISE_MIN:
            # Learning the noise: only a large change, seen twice, is taken for real.
            up = max(o.up_tolerance, _LEARNING_BAND)
            down = max(o.down_tolerance, _LEARNING_BAND)
            agree = previous is not None and (
                (previous > current * (1 + up)) == (estimate > current * (1 + up))
                and (previous < current * (1 - down)) == (estimate < current * (1 - down))
            )
            if not agree:
                notes.append(f"{metric}: learning the noise; a change must show twice")
                return math.inf, 1.0
            return up, down
        steps = [abs(b - a) for a, b in zip(history, list(history)[1:], strict=False)]
        sigma = median(steps) * _MAD_TO_SIGMA
        band = o.noise_band * sigma / max(estimate, 1.0)
        if band > max(o.up_tolerance, o.down_tolerance):
            notes.append(f"{metric} noise ±{sigma:.2f} replicas widens tolerance to ±{band:.2f}")
        return max(o.up_tolerance, band), max(o.down_tolerance, band)

    def _combine(
        self,
        inputs: PolicyInput,
        proposals: dict[str, int],
        metrics: dict[str, float],
        groups: Groups,
    ) -> tuple[int | None, str]:
        if "cpu" not in proposals:
            return None, "no usable samples: holding"
        targets = self._targets()
        deciding = "cpu"
        proposal = proposals["cpu"]
        memory = proposals.get("memory")
        if memory is not None and self.options.memory_mode == "target" and memory > proposal:
            deciding, proposal = "memory", memory
        elif (
            memory is not None and self.options.memory_mode == "guard" and proposal < inputs.current
        ):
            floor = min(inputs.current, memory)
            if floor > proposal:
                deciding, proposal = "memory", floor
        ready = len(groups.ready)
        reason = (
            f"{deciding} {metrics[deciding]:.1f}% vs target {targets[deciding]:g}% "
            f"over {ready} ready of {inputs.current}"
        )
        if deciding == "memory" and self.options.memory_mode == "guard":
            reason += " (memory guard holds the scale-down)"
        verb = "hold at" if proposal == inputs.current else "propose"
        return proposal, f"{reason}: {verb} {proposal}"


class Hpa(TargetTracking):
    """The Kubernetes HPA as it ships: the same calculation and behaviour, no noise band."""

    name: ClassVar[str] = "hpa"

    class Options(TargetTrackingOptions):
        noise_band: float = Field(default=0.0, alias="noise-band", ge=0, le=10)
        warmup: Seconds = Field(default=0.0, alias="warmup")


def _value(sample: ReplicaSample, metric: str) -> float | None:
    return sample.cpu if metric == "cpu" else sample.memory
