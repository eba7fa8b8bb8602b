"""Replicas that take no load while others of the same service are held at their CPU limit.

Replicas of one service behind one balancer share its load. When some are saturated (CFS holds
them back, policies/saturation.py) while others idle round after round, the idle ones are not
spare capacity: the balancer does not reach them (a network the proxy is not on, a proxy that
never looked them up again, a sticky session). Averaged in, their idle CPU would hide the
saturation: two pegged and three idle read 40 % against a 50 % target, and nothing grows.

So the decision is made over the replicas that take load, and the idle ones are kept on top of
what those need; and it is a finding to tell (the controller does, once it has lasted). Once
found, it lasts while those replicas idle beside others that take load, saturated or not: a
scale-up that relieves the saturation does not make them reachable.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from policies.base import Policy, PolicyInput, Proposal, ReplicaSample
from policies.saturation import saturated

IDLE_BELOW = 5.0
"""Percent of its CPU limit under which a replica takes no load worth the name."""


@dataclass(frozen=True, slots=True)
class Idle:
    idle: tuple[str, ...]
    """The container ids of the replicas that take no load."""
    held: int
    """How many of the measured replicas are saturated."""
    measured: int


def idle_beside_saturated(samples: tuple[ReplicaSample, ...]) -> Idle | None:
    """The replicas that idle while others are saturated, or None where none do."""
    measured = [s for s in samples if s.ready and s.cpu is not None]
    held = [s for s in measured if saturated(s)]
    idle = [s for s in measured if (s.cpu or 0.0) < IDLE_BELOW and not saturated(s)]
    if not held or not idle:
        return None
    return Idle(tuple(s.container_id for s in idle), len(held), len(measured))


def still_idle(samples: tuple[ReplicaSample, ...], idle: tuple[str, ...]) -> Idle | None:
    """Replicas found idle, while they still are; None once one takes load again, they are
    gone, or nobody takes any (no demand is no finding). A round that measured nothing (right
    after an action, while the windows start afresh) ends nothing."""
    present = [s for s in samples if s.container_id in idle]
    measured = [s for s in samples if s.ready and s.cpu is not None]
    others = [s for s in measured if s.container_id not in idle]
    takes = [s for s in present if s in measured and (s.cpu or 0.0) >= IDLE_BELOW]
    if not present or takes or (others and all((s.cpu or 0.0) < IDLE_BELOW for s in others)):
        return None
    held = sum(1 for s in measured if saturated(s))
    return Idle(tuple(s.container_id for s in present), held, len(measured))


def propose_without(policy: Policy, inputs: PolicyInput, idle: Idle, why: str) -> Proposal:
    """`policy`'s proposal over the replicas that take load, with the idle ones kept on top."""
    busy = tuple(s for s in inputs.samples if s.container_id not in idle.idle)
    kept = len(idle.idle)
    proposal = policy.propose(replace(inputs, current=inputs.current - kept, samples=busy))
    if proposal.count is None:
        return replace(proposal, ignored={**proposal.ignored, **dict.fromkeys(idle.idle, why)})
    count = proposal.count + kept
    ignored = {**proposal.ignored, **dict.fromkeys(idle.idle, why)}
    note = (
        f"decided on the {inputs.current - kept} replicas that take load, {kept} idle kept on top"
    )
    reason = f"{proposal.reason}; {kept} idle kept on top: {count}"
    return replace(
        proposal, count=count, reason=reason, ignored=ignored, notes=(*proposal.notes, note)
    )
