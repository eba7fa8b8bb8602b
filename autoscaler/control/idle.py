"""One service's replicas that take no load while others are saturated, as its controller tells
of them (policies/idle.py: the rule; policies/pipeline.py: the rounds it must last and the
proposal made over the replicas that take load; here, the telling): a finding, told once while
it lasts."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from autoscaler.control.replicas import Replica
from autoscaler.control.report import Report
from autoscaler.labels import ServiceKey
from policies.idle import Idle

logger = logging.getLogger(__name__)


class IdleWatch:
    def __init__(self, key: ServiceKey, report: Report) -> None:
        self.key = key
        self._report = report
        self._told: tuple[str, ...] = ()  # the idle replicas the finding was told for
        self.finding: str | None = None
        """The finding in words, while it lasts: shown in the state."""

    def tell(self, idle: Idle | None, replicas: Sequence[Replica]) -> None:
        """Replicas found idle beside saturated ones (the pipeline's, once it has lasted): a
        finding, told once while it lasts, kept in words for the state."""
        if idle is None:
            if self.finding is not None:
                logger.info("%s: every replica takes load again", self.key)
            self.finding, self._told = None, ()
            return
        names = {r.id: r.name for r in replicas}
        which = ", ".join(sorted(names.get(i, i[:12]) for i in idle.idle))
        verb = "takes" if len(idle.idle) == 1 else "take"
        others = (f"{idle.held} of {idle.measured} are saturated" if idle.held
                  else "the others take it")  # fmt: skip
        finding = f"{which} {verb} no load while {others}: is it on the proxy's network?"
        if not self._told:
            # Told once; the state keeps the counts current while it lasts.
            logger.warning("%s: %s", self.key, finding)
            self._report.event("finding", {"idle": which}, message=finding)
        self.finding, self._told = finding, idle.idle
