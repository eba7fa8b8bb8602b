"""The classic step rule, as a baseline: one replica more while utilisation is above the target,
one fewer while it is below half the target. No stabilization by default."""

from __future__ import annotations

from collections.abc import Mapping
from statistics import fmean
from typing import ClassVar

from pydantic import Field

from policies.base import PolicyInput, Proposal
from policies.options import PolicyOptions, Seconds
from policies.replicas import group


class StepOptions(PolicyOptions):
    cpu_target: float = Field(alias="cpu.target", gt=0, le=1000)
    step: int = Field(default=1, alias="step", ge=1)
    """Replicas added or removed per action."""
    warmup: Seconds = Field(default=0.0, alias="warmup")


class Step:
    name: ClassVar[str] = "step"
    Options: ClassVar[type[StepOptions]] = StepOptions
    behavior_defaults: ClassVar[Mapping[str, str]] = {"scale-down.stabilization": "0"}
    """The classic rule has no scale-down window; the other behaviour labels keep theirs."""

    def __init__(self, options: StepOptions) -> None:
        self.options = options

    def propose(self, inputs: PolicyInput) -> Proposal:
        o = self.options
        groups = group(inputs, o.warmup)
        values = [s.cpu for s in groups.ready if s.cpu is not None]
        proposal: int | None = None
        metrics: dict[str, float] = {}
        if not values:
            reason = "no usable samples: holding"
        else:
            cpu = metrics["cpu"] = fmean(values)
            if cpu > o.cpu_target:
                proposal, rule = inputs.current + o.step, f"above target {o.cpu_target:g}%"
            elif cpu < o.cpu_target / 2 and not groups.missing:
                proposal, rule = inputs.current - o.step, f"below half of {o.cpu_target:g}%"
            else:
                proposal, rule = inputs.current, "within the band"
            verb = "hold at" if proposal == inputs.current else "propose"
            reason = f"cpu {cpu:.1f}% {rule}: {verb} {proposal}"
        return Proposal(proposal, reason, metrics, groups.ignored)
