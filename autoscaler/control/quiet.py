"""A quiet round: a service whose hold stands is not decided again.

Most services, most rounds, hold: the same replicas read about the same, and the decision would
be the last one again. A step given the very same settled replicas as the last (checked.py)
whose last decision was a hold reads only what its state shows of the round (here) and asks the
pipeline whether that hold stands (policies/pipeline.py `again`): the policy's proposal would be
the same (its Steady band holds this round's mean CPU, and for a service held at its replicas'
CPU limit what they used: policies/saturation.py), the bounds are the same, and no earlier
proposal has entered or left the behaviour's windows. Then the state goes on with this round's
readings, and nothing else is built: no samples for the policy, no evaluation, no decision.

It decides exactly what a full round would have decided (tests/unit/policies/test_again.py replays
rounds through both). A round that differs in anything the decision reads (a replica changed,
unready or unmeasured; some held at their CPU limit and some not; a new clone not counted yet; a
metric; a pause, hold or schedule; anything shown in the state beside the readings) decides in full.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from autoscaler.control.replicas import Replica, Sample
from policies.records import record
from policies.saturation import saturated, used


@record
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
    held: float | None = None
    """What they used, summed as policies/saturation.py's floor sums it, where every one is
    held back at its CPU limit; None where none is."""


def read(replicas: Sequence[Replica], samples: Mapping[str, Sample]) -> Reading | None:
    """This round's reading of settled replicas (each running and counted, as a step that kept
    its checks has them); None where one has no CPU reading, or where some are held back at
    their CPU limit and some not (the round decides in full); where every one is held back,
    what they used (`held`)."""
    # One pass, few objects: it runs for most services, every round.
    cpu: list[float] = []
    memory: list[float] = []
    held: list[float] = []
    received: float | None = None
    sent: float | None = None
    source: str | None = None
    sources: set[str] | None = None  # where the replicas' samplers differ
    own = 0
    for replica in replicas:
        sample = samples.get(replica.id)
        if sample is None or sample.cpu is None:
            return None
        if saturated(sample):
            held.append(used(sample))  # as saturation's floor counts it
        cpu.append(sample.cpu)
        if sample.memory is not None:
            memory.append(sample.memory)
        if sample.received is not None:
            received = sample.received if received is None else received + sample.received
        if sample.sent is not None:
            sent = sample.sent if sent is None else sent + sample.sent
        if sample.source != source:
            if source is None:
                source = sample.source
            else:
                sources = (sources or {source}) | {sample.source}
        own += replica.users
    if not cpu or 0 < len(held) < len(cpu):
        return None
    # fsum over the count: statistics.fmean's mean, to the last bit.
    return Reading(
        cpu=math.fsum(cpu) / len(cpu),
        memory=math.fsum(memory) / len(memory) if memory else None,
        received=received,
        sent=sent,
        sampler="+".join(sorted(sources)) if sources else source,
        own=own,
        held=math.fsum(held) if held else None,
    )
