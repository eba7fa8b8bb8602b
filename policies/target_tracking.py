"""Target tracking, the default policy: the Kubernetes HPA's calculation, plus saturation.

The calculation is the HPA's (replicas.py), and so is its answer to noise: the tolerance band,
and the scale-down stabilization window that the behaviour rules apply. Saturation
(saturation.py) is what the HPA cannot see: replicas held at their CPU limit read 100 % however
large the demand, and the default policy knows from CFS throttling when that is so.

An earlier default widened the tolerance band to the measured noise of the need. Measured in
the simulator it held noisy but level loads below their need (under-provisioned for minutes where
the HPA was for seconds): a band wide enough to hide the noise also hides a real shortfall. The
HPA's asymmetry does better: it follows a rise at once and lets the count fall only as far as the
highest proposal of the last five minutes, so noise moves a service at most once, upwards.

Memory can be a second target (the proposal is the larger of the two) or, with
`memory.mode=guard`, only a guard: it never scales up, but holds a scale-down that would push
memory per replica above its target. Container memory rarely shrinks once touched, so a memory
*target* tends to scale up and stay there; a guard is usually what is wanted.
"""

from __future__ import annotations

import math
from statistics import fmean
from typing import ClassVar, Literal

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from policies import saturation
from policies.base import PolicyInput, Proposal, ReplicaSample, Steady
from policies.options import PolicyOptions, Seconds
from policies.replicas import Groups, assumed_missing, group, replica_count, steady


class TargetTrackingOptions(PolicyOptions):
    cpu_target: float | None = Field(default=None, alias="cpu.target", gt=0, le=1000)
    """Percent of the CPU limit (of one core without a limit) each replica should average.
    Required unless a metric source gives the demand (`metric.target`)."""
    memory_target: float | None = Field(default=None, alias="memory.target", gt=0, le=100)
    """Percent of the memory limit; only replicas with a memory limit report it."""
    memory_mode: Literal["target", "guard"] = Field(default="target", alias="memory.mode")
    up_tolerance: float = Field(default=0.1, alias="scale-up.tolerance", ge=0, lt=10)
    down_tolerance: float = Field(default=0.1, alias="scale-down.tolerance", ge=0, lt=1)
    warmup: Seconds = Field(default=0.0, alias="warmup")
    """A new replica's samples do not count for this long (it counts as idle when scaling up),
    for applications that burn CPU starting up. Not needed otherwise: every replica's sample
    window restarts when a scale action ends, so no reading mixes the old count's load in."""
    metric_target: float | None = Field(default=None, alias="metric.target", gt=0)
    """The value of the service's metric (autoscaler.metric.source) one replica should carry:
    the proposal is ceil(value / target), the HPA's AverageValue rule."""
    metric_activation: float | None = Field(default=None, alias="metric.activation", ge=0)
    """Below this value the metric asks for min."""

    @model_validator(mode="after")
    def _a_target(self) -> TargetTrackingOptions:
        if self.cpu_target is None and self.metric_target is None:
            raise PydanticCustomError(
                "missing",
                "required (or metric.target, with a metric source)",
                {"label": "cpu.target"},
            )
        return self


class TargetTracking:
    name: ClassVar[str] = "target-tracking"
    Options: ClassVar[type[TargetTrackingOptions]] = TargetTrackingOptions
    hpa_only: ClassVar[bool] = False
    """The `hpa` reference runs the HPA's rules alone (`replica_calculator.go`): no saturation;
    it scales down on the ready replicas' readings while another is not counted yet; it assumes
    a replica without a reading at its full limit on a scale-down (`GetResourceReplicas`), where
    target tracking assumes it at the target; and only CPU heeds readiness and the warm-up
    (`groupPods`)."""

    def __init__(self, options: TargetTrackingOptions) -> None:
        self.options = options

    def propose(self, inputs: PolicyInput) -> Proposal:
        o = self.options
        groups = group(inputs, o.warmup)
        metrics: dict[str, float] = {}
        proposals: dict[str, int] = {}
        notes: list[str] = []
        counted: dict[str, Groups] = {}
        for metric, target in self._targets().items():
            # The HPA heeds readiness and the warm-up for CPU alone (`groupPods`).
            by_readiness = metric == "cpu" or not self.hpa_only
            counted[metric] = groups if by_readiness else group(inputs, o.warmup, readiness=False)
            ready = counted[metric].ready
            values = [v for v in (_value(s, metric) for s in ready) if v is not None]
            if not values:
                continue
            metrics[metric] = fmean(values)
            proposals[metric] = replica_count(
                values,
                target,
                inputs.current,
                counted[metric],
                up_tolerance=o.up_tolerance,
                down_tolerance=o.down_tolerance,
                missing_down=assumed_missing(target, resource=True) if self.hpa_only else None,
                hold_while_unready=not self.hpa_only,
            )

        count, reason = self._combine(inputs, proposals, metrics, counted)
        count, reason = self._with_signal(inputs, count, reason, metrics, notes)
        held = None
        if not self.hpa_only and o.cpu_target is not None:
            held = saturation.floor(inputs, o.cpu_target)
        if held is None:
            steady = self._steady(inputs, groups, metrics) if count is not None else None
            return Proposal(count, reason, metrics, groups.ignored, tuple(notes), steady=steady)
        steady = None
        if count is None or held.count >= count:
            if count is not None:
                steady = self._steady(inputs, groups, metrics, floor=held.count)
            count, reason = held.count, held.reason
        else:
            reason = f"{held.reason}; the calculation asks for more: {reason}"
        return Proposal(
            count, reason, metrics, groups.ignored, tuple(notes), saturated=True, steady=steady
        )

    def _steady(
        self, inputs: PolicyInput, groups: Groups, metrics: dict[str, float], floor: int = 0
    ) -> Steady | None:
        """Where the count stands (policies/base.py Steady): CPU its one measure, every replica
        ready, measured and past its warm-up for good, none fresh, and none held back at its limit;
        or, for the saturation `floor` the calculation asks no more than, every one held back at
        its limit: the floor's band over what they used. Their mean CPU has no say then. Each
        used at least its reading, so the floor is above what the calculation gives them outside
        its tolerance band, and inside it the count they are, which the floor is at least."""
        o = self.options
        if o.memory_target is not None or o.metric_target is not None or inputs.signal is not None:
            return None
        if groups.unready or groups.missing or len(groups.ready) != inputs.current:
            return None
        for s in inputs.samples:
            held = saturation.saturated(s) if floor else not saturation.saturated(s)
            if not held or s.fresh or (s.started_at > 0 and inputs.now - s.started_at < o.warmup):
                return None
        assert o.cpu_target is not None
        ready = len(groups.ready)
        if floor:
            if floor < ready:
                return None  # the tolerance band could hold the calculation above the floor
            return Steady(-math.inf, math.inf, saturation.band(floor, o.cpu_target))
        low, high = steady(
            metrics["cpu"], o.cpu_target, ready,
            up_tolerance=o.up_tolerance, down_tolerance=o.down_tolerance,
        )  # fmt: skip
        return Steady(low, high)

    def _targets(self) -> dict[str, float]:
        targets: dict[str, float] = {}
        if self.options.cpu_target is not None:
            targets["cpu"] = self.options.cpu_target
        if self.options.memory_target is not None:
            targets["memory"] = self.options.memory_target
        return targets

    def _with_signal(
        self,
        inputs: PolicyInput,
        count: int | None,
        reason: str,
        metrics: dict[str, float],
        notes: list[str],
    ) -> tuple[int | None, str]:
        """The larger of the utilisation proposal and the metric's (the HPA's multi-metric
        rule); a metric that is missing or stale holds any scale-down."""
        o, signal = self.options, inputs.signal
        if o.metric_target is None or signal is None:
            return count, reason
        if signal.value is None:
            why = signal.error or "no value yet"
            notes.append(f"{signal.name}: {why}: no scale-down on missing data")
            if count is None or count < inputs.current:
                return inputs.current, f"{signal.name}: {why}: hold at {inputs.current}"
            return count, f"{reason}; {signal.name}: {why}"
        metrics["metric"] = signal.value
        wanted, why = self._metric_count(inputs, signal.value, signal.name)
        if count is None or wanted >= count:
            return wanted, why
        return count, f"{reason} (the metric asks for {wanted})"

    def _metric_count(self, inputs: PolicyInput, value: float, name: str) -> tuple[int, str]:
        o = self.options
        assert o.metric_target is not None
        if o.metric_activation is not None and value < o.metric_activation:
            return inputs.minimum, f"{name} {value:g} below activation {o.metric_activation:g}: min"
        ratio = value / (o.metric_target * max(inputs.current, 1))
        if inputs.current and 1 - o.down_tolerance <= ratio <= 1 + o.up_tolerance:
            wanted = inputs.current
        else:
            wanted = math.ceil(value / o.metric_target - 1e-9)
        verb = "hold at" if wanted == inputs.current else "propose"
        return wanted, f"{name} {value:g} vs {o.metric_target:g} a replica: {verb} {wanted}"

    def _combine(
        self,
        inputs: PolicyInput,
        proposals: dict[str, int],
        metrics: dict[str, float],
        counted: dict[str, Groups],
    ) -> tuple[int | None, str]:
        if "cpu" not in proposals:
            if self.options.cpu_target is None:
                return None, ""
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
        ready = len(counted[deciding].ready)
        reason = (
            f"{deciding} {metrics[deciding]:.1f}% vs target {targets[deciding]:g}% "
            f"over {ready} ready of {inputs.current}"
        )
        if deciding == "memory" and self.options.memory_mode == "guard":
            reason += " (memory guard holds the scale-down)"
        verb = "hold at" if proposal == inputs.current else "propose"
        return proposal, f"{reason}: {verb} {proposal}"


class Hpa(TargetTracking):
    """The Kubernetes HPA as it ships: the same calculation and behaviour, blind to saturation."""

    name: ClassVar[str] = "hpa"
    hpa_only: ClassVar[bool] = True


def _value(sample: ReplicaSample, metric: str) -> float | None:
    return sample.cpu if metric == "cpu" else sample.memory
