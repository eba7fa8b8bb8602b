"""A fallback when the metric fails: a count to run once the service's metric has been missing
for long enough, where the default is to hold (never a scale-down on missing data).

Holding is right for a short outage, but a metric that stays missing (a broker gone, a query
that broke with a release) leaves the service at whatever it had, for as long as it lasts:
Nomad's autoscaler scaled 26 to 23 on a failed check before it grew `on_check_error`, and KEDA
has `fallback` for the same reason. With `autoscaler.metric.fallback: "6"` the service runs 6
while the metric is missing, within min and max and the behaviour rules like any proposal. A
service held at its CPU limit (a saturated proposal) is not taken below what it needs now. A
service asleep at zero is woken for a fallback above 0, as KEDA does (pipeline.py's zero stage).

Pure: the signal, how long it has been missing and the labels in, a proposal out.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from policies.base import Proposal, Signal


@dataclass(frozen=True, slots=True)
class Fallback:
    replicas: int
    after: float
    """Seconds the metric must have been missing."""


def due(signal: Signal | None, missing_for: float | None, fallback: Fallback | None) -> bool:
    """Whether the fallback count is what the service runs now."""
    return (
        fallback is not None
        and signal is not None
        and signal.value is None
        and missing_for is not None
        and missing_for >= fallback.after
    )


def wakes(signal: Signal | None, missing_for: float | None, fallback: Fallback | None) -> bool:
    """Whether a service asleep at zero is woken to run its fallback count now: the fallback is
    due, and above 0 (a fallback of 0 is what the service runs already)."""
    return due(signal, missing_for, fallback) and fallback is not None and fallback.replicas > 0


def apply(
    proposal: Proposal, signal: Signal | None, missing_for: float | None, fallback: Fallback | None
) -> Proposal:
    """The policy's proposal, or the fallback's while it is due."""
    if not due(signal, missing_for, fallback):
        return proposal
    assert signal is not None and missing_for is not None and fallback is not None
    rule = describe(signal, missing_for, fallback)
    if proposal.saturated and proposal.count is not None and proposal.count > fallback.replicas:
        return replace(proposal, reason=f"{proposal.reason}; {rule}, below what it needs now",
                       notes=(*proposal.notes, rule))  # fmt: skip
    return replace(proposal, count=fallback.replicas, reason=rule, notes=(*proposal.notes, rule))


def describe(signal: Signal, missing_for: float, fallback: Fallback) -> str:
    """`mqtt q/jobs: <why>, missing 75s: fallback to 6`: the metric, how long it has been
    missing, and the count."""
    return f"{missing(signal)}, missing {missing_for:.0f}s: fallback to {fallback.replicas}"


def missing(signal: Signal) -> str:
    """`mqtt q/jobs: <why>`: the metric, and why it has no value."""
    return f"{signal.name}: {signal.error or 'no value'}"
