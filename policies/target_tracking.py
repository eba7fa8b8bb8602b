"""Target tracking, as the Kubernetes HPA computes it: keep each metric's mean utilisation near its
target by scaling the replica count in proportion, `desired = ceil(current * utilisation / target)`,
and leave the count alone while the ratio is within the tolerance band.
"""

from __future__ import annotations

import math
from statistics import fmean
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from policies.base import Decision, PolicyInput, ReplicaSample, clamp

# Guards ceil() against 3.0000000000000004 turning into 4.
_EPSILON = 1e-9


class TargetTrackingOptions(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="forbid")

    cpu_target: float = Field(alias="cpu.target", gt=0, le=1000)
    """Percent of the CPU limit (of one core without a limit) each replica should average."""
    memory_target: float | None = Field(default=None, alias="memory.target", gt=0, le=100)
    """Percent of the memory limit; only replicas with a memory limit report it."""
    tolerance: float = Field(default=0.1, alias="tolerance", ge=0, lt=1)


class TargetTracking:
    name: ClassVar[str] = "target-tracking"
    Options: ClassVar[type[TargetTrackingOptions]] = TargetTrackingOptions

    def __init__(self, options: TargetTrackingOptions) -> None:
        self.options = options

    def _targets(self) -> dict[str, float]:
        targets = {"cpu": self.options.cpu_target}
        if self.options.memory_target is not None:
            targets["memory"] = self.options.memory_target
        return targets

    def evaluate(self, inputs: PolicyInput) -> Decision:
        ready = [s for s in inputs.samples if s.ready and s.cpu is not None]
        ignored = {
            s.container_id: s.note or "no sample yet" for s in inputs.samples if s not in ready
        }
        metrics: dict[str, float] = {}
        proposals: dict[str, int] = {}
        for metric, target in self._targets().items():
            values = [v for v in (_value(s, metric) for s in ready) if v is not None]
            if not values:
                continue
            metrics[metric] = fmean(values)
            proposals[metric] = self._propose(inputs.current, values, target)

        if not proposals:
            desired, bound = clamp(inputs.current, inputs.minimum, inputs.maximum)
            reason = "no ready samples: holding"
            if bound:
                reason += f"; bound to {bound} {desired}"
            return Decision(inputs.current, desired, reason, None, bound, metrics, ignored)

        metric = max(proposals, key=lambda m: proposals[m])
        proposal = proposals[metric]
        desired, bound = clamp(proposal, inputs.minimum, inputs.maximum)
        reason = (
            f"{metric} {metrics[metric]:.1f}% vs target {self._targets()[metric]:g}% "
            f"over {len(ready)} ready of {inputs.current} replicas"
        )
        if proposal == inputs.current:
            reason += f": hold at {proposal} (tolerance ±{self.options.tolerance:g})"
        else:
            reason += f": propose {proposal}"
        if bound:
            reason += f", bound to {bound} {desired}"
        return Decision(inputs.current, desired, reason, proposal, bound, metrics, ignored)

    def _propose(self, current: int, values: list[float], target: float) -> int:
        """HPA's rule: replicas without a usable sample count as idle when scaling up and as at
        target when scaling down, so a new replica cannot cause an overshoot and a missing one
        cannot cause a scale-down; if that flips the direction, or lands within tolerance, hold."""
        tolerance = self.options.tolerance
        ratio = fmean(values) / target
        if abs(ratio - 1) <= tolerance:
            return current
        missing = max(current - len(values), 0)
        if missing:
            assumed = 0.0 if ratio > 1 else target
            adjusted = (sum(values) + missing * assumed) / (len(values) + missing) / target
            if abs(adjusted - 1) <= tolerance or (adjusted > 1) != (ratio > 1):
                return current
            ratio = adjusted
        return max(math.ceil(current * ratio - _EPSILON), 1)


def _value(sample: ReplicaSample, metric: str) -> float | None:
    return sample.cpu if metric == "cpu" else sample.memory
