"""One service's sleep and wake (`autoscaler.min: "0"`): policies/pipeline.py says when; this
says what the controller does about it, and remembers what the engine says.

    running, own ───(marker or label of a sleep left: its owner started it)──► the record ends
    running ───(metric quiet for to-zero-after)──► sleep: record it, clones removed, own stopped
    nothing runs ───(no record)──────────────────► its owner's stop: left alone (STOPPED)
    nothing runs, recorded ──(metric active, a schedule's min, or ──► wake: what the sleep
                           │  its metric missing past its fallback      stopped is started
                           │  wait, with a fallback above 0)            again
                           └─(otherwise)───────────────────────────► IDLE

When to sleep and when to wake is the decision pipeline's zero stage (policies/pipeline.py), so
that `simulate --min 0` sleeps and wakes as `run` does.

Whether a sleep is the autoscaler's is the backend's to record and read (a marker container on
the engine, backends/compose/marker.py; a label on a Swarm service), so that a restarted instance
knows it too: until it has asked once, `asleep` is None.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Protocol

from autoscaler.control.context import Context
from autoscaler.control.replicas import Replica, ScaleResult, counted
from autoscaler.control.report import Report
from autoscaler.control.spec import ServiceSpec
from autoscaler.control.state import Phase
from autoscaler.labels import ServiceKey
from policies.base import Signal
from policies.pipeline import Zero

logger = logging.getLogger(__name__)


class Owner(Protocol):
    """The service's controller, as a sleep needs it: its one guarded runner, its backoff, its
    behaviour's record of actions, and its state."""

    def run(
        self, tg: asyncio.TaskGroup, doing: str, action: Coroutine[Any, Any, ScaleResult]
    ) -> None: ...

    def failing(self) -> str | None: ...

    def record(self, result: ScaleResult) -> None: ...

    def show(
        self, phase: Phase, replicas: Sequence[Replica], spec: ServiceSpec, reason: str
    ) -> None: ...


class Sleep:
    def __init__(self, key: ServiceKey, context: Context, report: Report) -> None:
        self.key = key
        self._ctx = context
        self._report = report
        self.asleep: bool | None = None
        """True while the autoscaler holds the service at zero; None until the engine is asked."""
        self.reason = ""
        """Why it sleeps, or what would wake it, in words: the state's reason while IDLE."""

    def step(
        self,
        tg: asyncio.TaskGroup,
        owner: Owner,
        spec: ServiceSpec,
        replicas: Sequence[Replica],
        signal: Signal | None,
        decide: Callable[[bool], Zero | None],
    ) -> bool:
        """This round's part of a service that can go to zero; True when it took the round
        (an action started, or the service is at zero). `decide(running)` is the decision
        pipeline's zero stage (policies/pipeline.py): whether to sleep, or to wake."""
        if self._running(replicas):
            if self.asleep is not False:
                # At start-up, or its owner started it while asleep: any record of a sleep ends
                # now, or a later `docker compose stop` would be taken for ours.
                owner.run(tg, "ending the record of a sleep", self._awake())
                return True
            zero = decide(True)
            if zero is None or spec.paused or self._ctx.dry_run or owner.failing():
                return False
            self.reason = f"asleep: {zero.reason}; woken when it is wanted"
            logger.info("%s: going to zero: %s", self.key, self.reason)
            owner.show(Phase.SCALING, replicas, spec, f"going to zero; {self.reason}")
            owner.run(tg, "going to zero", self._sleep(owner, replicas))
            return True
        if self.asleep is None:
            owner.run(tg, "reading the record of a sleep", self._read())
            return True
        if not self.asleep:
            return False  # its owner's stop
        if (failing := owner.failing()) is not None:
            owner.show(Phase.BACKOFF, replicas, spec, failing)
            return True
        zero = decide(False)
        if zero is None or zero.act != "wake":
            reason = self.reason
            if zero is not None and signal is not None and signal.error:
                reason = f"asleep; {zero.reason}"  # not woken, or not yet: its fallback's wait
            owner.show(Phase.IDLE, replicas, spec, reason)
            return True
        why = zero.reason
        if spec.paused or self._ctx.dry_run:
            self.reason = f"asleep; {'paused' if spec.paused else 'dry run'}: would wake: {why}"
            owner.show(Phase.IDLE, replicas, spec, self.reason)
            return True
        logger.info("%s: waking: %s", self.key, why)
        owner.show(Phase.SCALING, replicas, spec, f"waking: {why}")
        owner.run(tg, "waking", self._wake(owner, replicas, why))
        return True

    def _running(self, replicas: Sequence[Replica]) -> bool:
        """Whether any replica of the service runs (one of the user's own, where replicas are
        clones of them: a clone left alone does not make a service awake), and nobody asked it
        to stop: a service its owner is stopping is theirs, not one to put to sleep."""
        own = [r for r in replicas if not r.is_clone]
        return any(not r.stopping for r in counted(own))

    async def _read(self) -> ScaleResult:
        self.asleep = await self._ctx.actuator.asleep(self.key)
        if self.asleep:
            self.reason = "asleep (the autoscaler put it to zero)"
            logger.info("%s: found asleep: woken when its metric is wanted", self.key)
        return ScaleResult(self.key, 0)

    async def _awake(self) -> ScaleResult:
        if await self._ctx.actuator.awake(self.key) and self.asleep is not None:
            logger.info("%s: started again while asleep: its owner's start; the sleep ends",
                        self.key)  # fmt: skip
            self._report.event("wake", {"by": "owner"}, message="started by its owner")
        self.asleep = False
        return ScaleResult(self.key, 0)

    async def _sleep(self, owner: Owner, replicas: Sequence[Replica]) -> ScaleResult:
        result = await self._ctx.actuator.sleep(self.key, replicas)
        self.asleep = True
        owner.record(result)
        if result.errors:
            # Not at zero: a stop failed (or was fenced). Its errors are told as the action's;
            # a sleep is told once it is one.
            done = len(result.stopped) + len(result.removed)
            logger.warning("%s: going to zero stopped short (%d done)", self.key, done)
            return result
        self._ctx.metrics.acted(self.key, "sleep")
        self._report.event(
            "sleep",
            {"from": result.before, "to": 0},
            **{"from": result.before, "to": 0},
            removed=len(result.removed),
            stopped=len(result.stopped),
            seconds=round(result.seconds, 3),
            reason=self.reason,
        )
        logger.info("%s: asleep (%d -> 0 in %.2fs)", self.key, result.before, result.seconds)
        return result

    async def _wake(self, owner: Owner, replicas: Sequence[Replica], why: str) -> ScaleResult:
        result = await self._ctx.actuator.wake(self.key, replicas)
        if result.after > 0:
            self.asleep = False
            owner.record(result)
            self._ctx.metrics.acted(self.key, "wake")
            self._report.event(
                "wake",
                {"from": 0, "to": result.after},
                **{"from": 0, "to": result.after},
                seconds=round(result.seconds, 3),
                reason=why,
            )
            logger.info("%s: awake (0 -> %d in %.2fs)", self.key, result.after, result.seconds)
        return result
