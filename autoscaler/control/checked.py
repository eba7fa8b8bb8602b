"""What a service's step found before it decided, kept for the next step: its replicas, their
labels' spec, and the bounds, pause and decided count nothing needed mending at.

Before each decision a step reads the template's labels and checks the replicas for what holds
the service (being removed, stopped by its owner) and what to mend (repairs.py: broken, vanished
or stale clones). Of settled replicas (running, no stop asked, not being removed, no failing
health check, seen by the engine as itself) those checks do not depend on the time: the engine
hands the same replica objects until a container changes (a new inspect is a new object), so a
step given the very same objects finds the same, and skips them. Most services, most rounds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from autoscaler.control.replicas import Replica
from autoscaler.control.spec import ServiceSpec


def settled(replica: Replica) -> bool:
    """Running as it should, with nothing under way: its checks' verdicts hold until it
    changes."""
    return (
        replica.status == "running"
        and not replica.stopping
        and not replica.removing
        and replica.health in (None, "healthy")
        and replica.unseen is None
    )


@dataclass(frozen=True, slots=True)
class Checked:
    replicas: tuple[Replica, ...]
    spec: ServiceSpec
    """The labels' spec the template's labels gave."""
    mended: tuple[int, bool, int | None]
    """The max in force, the pause and the decided count nothing needed mending at."""

    @classmethod
    def of(
        cls,
        replicas: Sequence[Replica],
        labelled: ServiceSpec | None,
        in_force: ServiceSpec,
        decided: int | None,
    ) -> Checked | None:
        """What a step found, to be kept; None when a replica is not settled (a check may find
        otherwise as time passes: a stop's grace, a clone resting after its owner's stop)."""
        if labelled is None or not all(settled(r) for r in replicas):
            return None
        return cls(tuple(replicas), labelled, (in_force.maximum, in_force.paused, decided))

    def holds(self, replicas: Sequence[Replica]) -> bool:
        """The same replica objects, in the same order."""
        if len(replicas) != len(self.replicas):
            return False
        # A plain loop: it runs for every service, every round.
        for a, b in zip(replicas, self.replicas, strict=True):
            if a is not b:
                return False
        return True
