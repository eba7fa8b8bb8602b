"""A quiet round: a service whose hold stands is not decided again.

Most services, most rounds, hold: the same replicas read about the same, and the decision would
be the last one again. A step given the very same settled replicas as the last (checked.py)
whose last decision was a hold reads only what its state shows of the round (here) and asks the
pipeline whether that hold stands (policies/pipeline.py `again`): the policy's proposal would be
the same (its Steady band holds this round's mean CPU), the bounds are the same, and no earlier
proposal has entered or left the behaviour's windows. Then the state goes on with this round's
readings, and nothing else is built: no samples for the policy, no evaluation, no decision.

It decides exactly what a full round would have decided (tests/unit/policies/test_again.py
replays rounds through both). A round that differs in anything the decision reads (a replica
changed, unready, unmeasured or held at its CPU limit; a new clone not counted yet; a metric;
a pause, hold or schedule; anything shown in the state beside the readings) decides in full.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from autoscaler.control.replicas import Replica, Sample
from policies.saturation import THROTTLED


@dataclass(frozen=True, slots=True)
class Reading:
    """What a quiet round reads of its replicas' samples: what the state shows, and the mean
    CPU the pipeline checks its hold against."""

    cpu: float
    memory: float | None
    received: float | None
    sent: float | None
    sampler: str | None
    own: int
    """The user's own replicas among them."""


def read(replicas: Sequence[Replica], samples: Mapping[str, Sample]) -> Reading | None:
    """This round's reading of settled replicas (each running and counted, as a step that kept
    its checks has them); None where one has no CPU reading or is held at its CPU limit (the
    round decides in full)."""
    cpu: list[float] = []
    memory: list[float] = []
    received: list[float] = []
    sent: list[float] = []
    sources: set[str] = set()
    own = 0
    for replica in replicas:
        sample = samples.get(replica.id)
        if sample is None or sample.cpu is None:
            return None
        if sample.throttled is not None and sample.throttled >= THROTTLED:
            return None
        cpu.append(sample.cpu)
        if sample.memory is not None:
            memory.append(sample.memory)
        if sample.received is not None:
            received.append(sample.received)
        if sample.sent is not None:
            sent.append(sample.sent)
        sources.add(sample.source)
        own += replica.users
    if not cpu:
        return None
    # fsum over the count: statistics.fmean's mean, to the last bit.
    return Reading(
        cpu=math.fsum(cpu) / len(cpu),
        memory=math.fsum(memory) / len(memory) if memory else None,
        received=sum(received) if received else None,
        sent=sum(sent) if sent else None,
        sampler="+".join(sorted(sources)) or None,
        own=own,
    )
