"""One service's replicas that take no load while others are saturated, as its controller
watches them (policies/idle.py: the rule; here, the rounds it must last and the telling): a
finding, told once while it lasts, and a proposal made over the replicas that take load."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from autoscaler.control.replicas import Replica
from autoscaler.control.report import Report
from autoscaler.labels import ServiceKey
from policies.base import Policy, PolicyInput, Proposal
from policies.idle import idle_beside_saturated, propose_without, still_idle

logger = logging.getLogger(__name__)

IDLE_ROUNDS = 3
"""Rounds in a row replicas must idle beside saturated ones to be a finding, not a moment."""


class IdleWatch:
    def __init__(self, key: ServiceKey, report: Report) -> None:
        self.key = key
        self._report = report
        self._rounds = 0  # rounds in a row with replicas idle beside saturated ones
        self._idle: tuple[str, ...] = ()  # the idle replicas the finding was told for
        self.finding: str | None = None
        """The finding in words, while it lasts: shown in the state."""

    def propose(self, policy: Policy, inputs: PolicyInput, replicas: Sequence[Replica]) -> Proposal:
        """The policy's proposal; over the replicas that take load only, once some have idled
        beside saturated ones for IDLE_ROUNDS rounds in a row (a finding, told once)."""
        if self._idle:
            idle = still_idle(inputs.samples, self._idle)
        else:
            idle = idle_beside_saturated(inputs.samples)
            self._rounds = self._rounds + 1 if idle else 0
        if idle is None or (not self._idle and self._rounds < IDLE_ROUNDS):
            if idle is None and self.finding is not None:
                logger.info("%s: every replica takes load again", self.key)
                self.finding, self._idle, self._rounds = None, (), 0
            return policy.propose(inputs)
        names = {r.id: r.name for r in replicas}
        which = ", ".join(sorted(names.get(i, i[:12]) for i in idle.idle))
        verb = "takes" if len(idle.idle) == 1 else "take"
        others = (f"{idle.held} of {idle.measured} are saturated" if idle.held
                  else "the others take it")  # fmt: skip
        finding = f"{which} {verb} no load while {others}: is it on the proxy's network?"
        if not self._idle:
            # Told once; the state keeps the counts current while it lasts.
            logger.warning("%s: %s", self.key, finding)
            self._report.event("finding", {"idle": which}, message=finding)
        self.finding, self._idle = finding, idle.idle
        return propose_without(policy, inputs, idle, "takes no load while others are saturated")
