"""One controller per service: its spec, decision history, behaviour state, in-flight action,
backoffs and last state all live here, and nowhere else.

Every interval, when nothing of the service's is in flight, `step` runs:

    labels wrong, or no template ──────────────────────────────► ERROR (reported once, skipped)
    min 0: quiet for to-zero-after ─► sleep ───────────────────► IDLE (at zero) ─► wake on demand
    none of the service's own containers serves (stopped, ─────► STOPPED (its owner stopped,
      paused, asked to stop), or another hand is creating,           paused or is changing it)
      stopping or removing some of its containers
    the last action failed, its backoff not over ──────────────► BACKOFF (2, 4, ... 60 s)
    broken clones ──(crash-loop backoff allows)──► repair ─────► REPAIRING ─► guarded runner
    replicas gone by another hand, stale clones ─► restore, roll ► REPAIRING ─► guarded runner
    ─ ─ ─ ─ ─ ─ ─ ─ ─ ─ (`mend`, between rounds on an engine event, stops here) ─ ─ ─ ─ ─ ─ ─ ─
    the same settled replicas, and the last hold stands (quiet.py) ─► HOLDING, with its readings
    policy.propose ─► Behavior.decide ─► Decision
        no change ──────────────────────────────────────────────► HOLDING
        paused ─────────────────────────────────────────────────► PAUSED (says what it would do)
        dry run ──(a decision not announced yet)─► scale event ─► HOLDING
        otherwise ─► actuator.scale_to ────────────────────────► SCALING ─► guarded runner

The guarded runner (runner.py) is the one way a side effect runs: a scale action is recorded in
the behaviour's rate limits and cooldowns from what the actuator reports, never from what was
decided, and any error, expected or not, becomes an error event and a backoff.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
from collections import deque
from collections.abc import Coroutine, Mapping, Sequence
from typing import Any

from autoscaler.control import quiet
from autoscaler.control.checked import Checked
from autoscaler.control.context import Context
from autoscaler.control.history import History
from autoscaler.control.idle import IdleWatch
from autoscaler.control.keep import Memory
from autoscaler.control.metric import MetricWatch
from autoscaler.control.operator import ControlWatch
from autoscaler.control.repairs import (
    STOPPED_GRACE,
    CrashLoop,
    Repair,
    being_removed,
    broken,
    heeded,
    held,
    restore,
    roll,
    woke,
)
from autoscaler.control.replicas import Replica, Sample, ScaleResult, counted, template_of
from autoscaler.control.report import Report
from autoscaler.control.runner import Runner
from autoscaler.control.sleep import Sleep
from autoscaler.control.spec import ServiceSpec, allowed, own_labels, parse
from autoscaler.control.startup import Startup
from autoscaler.control.state import Evaluation, Phase, ServiceState, Tally, replica_samples
from autoscaler.errors import AutoscalerError, InternalError, TemplateError
from autoscaler.labels import ServiceKey
from policies.base import Direction
from policies.pipeline import Pipeline, Round, Zero

logger = logging.getLogger(__name__)

HISTORY = 50
"""Evaluations kept per service, for /status and `autoscaler explain`."""


class Controller:
    def __init__(self, key: ServiceKey, context: Context) -> None:
        self.key = key
        self._ctx = context
        self.spec: ServiceSpec | None = None
        self._pipeline: Pipeline | None = None
        """The decision (policies/pipeline.py): the policy, the behaviour and what they carry
        over from round to round; a new one with new labels."""
        self._error: str | None = None  # the labels' or template's error, while it lasts
        self._read: Mapping[str, str] | None = None  # the template's labels the spec is of
        self._bug: str | None = None  # an unexpected error while evaluating, while it lasts
        self._down: str | None = None  # the user's crashed containers, while they are down
        self._announced: tuple[int, int] | None = None  # dry run: the last decision told
        self.history: deque[Evaluation] = deque(maxlen=HISTORY)
        self._crash_loop = CrashLoop()
        self._samples: Mapping[str, Sample] = {}  # this round's, by container id
        self._report = Report(key, context)
        self._startup = Startup()
        self._runner = Runner(key, context, self._report, self._startup, self._settled)
        self._metric = MetricWatch(key, context, self._report)
        self._idle = IdleWatch(key, self._report)
        self._schedule: str | None = None  # the schedule's windows in force, in words
        self._controls = ControlWatch(lambda: context.control(key), self._report)
        self._zero = Sleep(key, context, self._report)
        self._memory = Memory(context.keep, key)
        self.decided: int | None = None
        """The count the last action settled on (or that was found): what vanished replicas are
        restored to."""
        self._checked: Checked | None = None  # what the last step found, to decide on
        self._holding: tuple[int, tuple[object, ...]] | None = None
        """Which state the last hold showed (Report.shown), and what else it showed (`_shown`):
        a quiet round goes on from it."""
        self._template_seen = -math.inf  # when a step last saw a container of the user's (wall)
        self.tally = Tally()
        """Its evaluations as /metrics reads them."""

    @property
    def busy(self) -> bool:
        return self._runner.busy

    @property
    def inflight(self) -> asyncio.Task[None] | None:
        """Its one action in flight, if any (for the process's bounded drain)."""
        return self._runner.inflight

    def close(self) -> None:
        """The service is gone for good: its series leave /metrics, and its retained state is
        cleared from the broker, so that no reader takes a removed service for a live one."""
        self._ctx.metrics.forget(self.key)
        self._ctx.notifier.clear(self.key)

    def keep(self) -> None:
        """What the service's policy learned is saved (AUTOSCALER_STATE_DIR): the process stops,
        or new labels replace the policy."""
        if self._pipeline is not None:
            self._memory.save(self._pipeline.policy)

    def release(self) -> None:
        """Another instance acts on the service now: what this one counted goes (the retained
        state is the acting instance's to keep)."""
        self._ctx.metrics.forget(self.key)

    def step(
        self, tg: asyncio.TaskGroup, replicas: Sequence[Replica], samples: Mapping[str, Sample]
    ) -> None:
        """One round for this service; starts at most one action, in `tg`, and never raises."""
        self._guard(tg, replicas, samples, decide=True)

    def mend(self, tg: asyncio.TaskGroup, replicas: Sequence[Replica]) -> None:
        """Between rounds, when the engine said replicas went away or a container of the
        user's started (Compose removing clones, replacing the template): restore, roll or
        repair now, on the last round's samples, without deciding the size (that waits for the
        round). Never raises."""
        if self.spec is not None and not self._zero.asleep:
            self._guard(tg, replicas, self._samples, decide=False)

    def _guard(
        self,
        tg: asyncio.TaskGroup,
        replicas: Sequence[Replica],
        samples: Mapping[str, Sample],
        *,
        decide: bool,
    ) -> None:
        if self.busy:
            return
        try:
            replicas = heeded(replicas, self._ctx.clock.wall())
            self._step(tg, replicas, samples, decide=decide)
        except Exception as exc:
            # A bug for one service must not stop the others, nor flood the log and the broker:
            # told once while it lasts, and shown in the service's state.
            error = InternalError(str(self.key), "evaluating", exc)
            if str(error) != self._bug:
                logger.error("%s", error, exc_info=exc)
                self._report.fault(error)
            self._bug = str(error)
            try:
                self._show(Phase.ERROR, replicas, self.spec, None, str(error), error=str(error))
            except Exception:
                logger.debug("%s: its state could not be shown either", self.key, exc_info=True)
        else:
            self._bug = None

    def _step(
        self,
        tg: asyncio.TaskGroup,
        replicas: Sequence[Replica],
        samples: Mapping[str, Sample],
        *,
        decide: bool = True,
    ) -> None:
        self._samples = samples
        # The same settled replicas as the last step that went on to decide find what it
        # found (repairs.py's checks of settled replicas do not depend on the time): their
        # labels' spec, nothing being removed or stopped, and nothing to mend while the
        # bounds, the pause and the decided count are the same too.
        checked, self._checked = self._checked, None
        if checked is None or not checked.holds(replicas):
            checked = None
        else:
            self._template_seen = self._ctx.clock.wall()  # among the same replicas still
        if checked is None and (gone := self._going(replicas)) is not None:
            self._show(Phase.STOPPED, replicas, self.spec, None, gone)
            return
        try:
            spec = self._spec_for(replicas) if checked is None else checked.spec
        except AutoscalerError as exc:
            if str(exc) != self._error:
                logger.error("%s; skipping this service until it is fixed", exc)
                self._report.fault(exc)
            self._error = str(exc)
            self._show(Phase.ERROR, replicas, None, None, str(exc), error=str(exc))
            return
        if self._error is not None:
            logger.info("%s: its error is fixed; scaling it again", self.key)
            self._error = None
        spec = self._controls.applied(self._in_force(spec), self._ctx.clock.wall())
        if decide and self._zero_step(tg, spec, replicas):
            return
        if checked is None and (reason := self._stopped(replicas)) is not None:
            # Stopped by its owner (`docker compose stop`, `down`, `restart`, `pause`, Compose
            # replacing its containers, or still being created): cloning it back to life would
            # fight them. (A Swarm service its owner scaled to 0 has no tasks, and is not
            # listed; one whose tasks are all on their way holds.)
            self._show(Phase.STOPPED, replicas, spec, None, reason)
            return
        if (reason := self._runner.failing()) is not None:
            self._show(Phase.BACKOFF, replicas, spec, None, reason)
            return
        monotonic = self._ctx.clock.monotonic()
        # Clones are mended where they are made of a template of the user's; a scheduler (Swarm)
        # mends its own.
        mends = not self._ctx.dry_run and any(r.users for r in replicas)
        kept = checked is not None and checked.mended == (spec.maximum, spec.paused, self.decided)
        if mends and not kept and self._upkeep(tg, spec, replicas, monotonic):
            return
        self._checked = checked if kept else Checked.of(replicas, self.spec, spec, self.decided)
        if decide and not (checked is not None and self._held(spec, replicas, samples)):
            self._decide(tg, spec, replicas, samples)

    def _going(self, replicas: Sequence[Replica]) -> str | None:
        """Why the service's containers are on their way out, or None. `docker compose down`
        stops and removes every container at once: its template may be gone before the stop of
        a clone is even asked (the engine answers each in its own time, and a loaded one late).
        Only clones, each stopping, or only clones within STOPPED_GRACE of the template's last
        sight: a removal under way, not a missing template (that error is told once the grace
        has passed with the clones still running)."""
        wall = self._ctx.clock.wall()
        if any(not r.is_clone for r in replicas):
            self._template_seen = wall
            return None
        if being_removed(replicas, wall):
            return "its containers are being removed: not scaling"
        if replicas and wall - self._template_seen < STOPPED_GRACE:
            return "its own containers were just removed (a `docker compose down`?): not scaling"
        return None

    def _decide(
        self,
        tg: asyncio.TaskGroup,
        spec: ServiceSpec,
        replicas: Sequence[Replica],
        samples: Mapping[str, Sample],
    ) -> None:
        """The policy proposes, the behaviour disposes, and the decision is acted on."""
        evaluation = self._evaluate(spec, replicas, samples)
        decision = evaluation.decision
        if decision.direction is Direction.NONE:
            self._show(Phase.HOLDING, replicas, spec, evaluation, decision.reason)
            self._holding = (self._report.shown, self._shown(spec))
        elif spec.paused:
            paused = c.describe() if (c := self._controls.current) is not None else "paused"
            reason = f"{paused}; would: {decision.reason}"
            self._show(Phase.PAUSED, replicas, spec, evaluation, reason)
        elif self._ctx.dry_run:
            logger.info("%s: dry run: would scale %d -> %d: %s", self.key,
                        decision.current, decision.desired, decision.reason)  # fmt: skip
            if self._announced != (decision.current, decision.desired):
                self._announced = (decision.current, decision.desired)
                self._report.scaled(spec, evaluation, None)
            self._show(Phase.HOLDING, replicas, spec, evaluation, f"dry run; {decision.reason}")
        else:
            logger.info("%s: %d -> %d: %s", self.key,
                        decision.current, decision.desired, decision.reason)  # fmt: skip
            self._show(Phase.SCALING, replicas, spec, evaluation, decision.reason)
            # A saturated service's next step is decided as soon as the new replicas measure.
            look = decision.saturated and decision.desired > len(replicas)
            self._runner.run(tg, "scaling", self._scale(spec, replicas, evaluation), look=look)

    def _held(
        self, spec: ServiceSpec, replicas: Sequence[Replica], samples: Mapping[str, Sample]
    ) -> bool:
        """A quiet round (quiet.py): the hold the last decision made stands, as the pipeline
        finds it would decide it again, and the state shown goes on with this round's readings.
        False: the round decides."""
        holding, self._holding = self._holding, None
        if holding is None or holding[0] != self._report.shown or spec.metric is not None:
            return False
        if self._startup.waiting or holding[1] != self._shown(spec):
            return False
        read = quiet.read(replicas, samples)
        if read is None:
            return False
        assert self._pipeline is not None
        labelled, now, wall = self._labelled(), self._ctx.clock.monotonic(), self._ctx.clock.wall()
        again = Round(labelled.minimum, labelled.maximum, (), now, wall, own=read.own,
                      schedule=labelled.schedule)  # fmt: skip
        if self._pipeline.again(again, read.cpu, read.held) is None:
            return False
        self._memory.tick(self._pipeline.policy, now)
        self.tally.again(read.cpu, read.memory)
        self._report.again(read.cpu, read.memory, read.received, read.sent, read.sampler)
        self._holding = holding
        return True

    def _shown(self, spec: ServiceSpec) -> tuple[object, ...]:
        """What the state shows beside the decision and the readings: a quiet round keeps
        the state only while these are as they were."""
        return (
            spec.minimum, spec.maximum, spec.paused, self._controls.current, self._schedule,
            self._down, self._metric.error, self._idle.finding, self._startup.seconds,
            self.decided, self._pipeline, self._ctx.dry_run,
        )  # fmt: skip

    def _labelled(self) -> ServiceSpec:
        """The labels' spec, as the pipeline takes it (it applies the schedule itself), with an
        operator's hold in force: the held count for min and max, no schedule."""
        assert self.spec is not None
        control = self._controls.current
        return control.applied(self.spec) if control and control.action == "hold" else self.spec

    def _in_force(self, spec: ServiceSpec) -> ServiceSpec:
        """The spec with the min and max its schedule sets now; a change of window told once."""
        spec, in_force = spec.in_force(self._ctx.clock.wall())
        if in_force.reason != self._schedule:
            # A window began or ended: told once, as the bounds change.
            self._schedule = in_force.reason
            message = in_force.reason or "no schedule window in force: the labels' min and max"
            logger.info("%s: %s", self.key, message)
            self._report.event("schedule", {"min": spec.minimum, "max": spec.maximum},
                               message=message)  # fmt: skip
        return spec

    def _zero_step(
        self, tg: asyncio.TaskGroup, spec: ServiceSpec, replicas: Sequence[Replica]
    ) -> bool:
        """A service whose labels allow zero, or that is asleep: zero.Sleep takes the round
        when it acts or the service is at zero, as the pipeline's zero stage says."""
        zero_able = self.spec is not None and self.spec.minimum == 0
        if not zero_able and not self._zero.asleep:
            return False
        assert self._pipeline is not None and self.spec is not None
        pipeline, labelled, signal = self._pipeline, self._labelled(), self._metric.read(spec)
        now = Round(labelled.minimum, labelled.maximum, (), self._ctx.clock.monotonic(),
                    self._ctx.clock.wall(), signal, fallback=self._metric.rule(spec),
                    schedule=labelled.schedule, zero=labelled.zero)  # fmt: skip

        def decide(running: bool) -> Zero | None:
            return pipeline.zero(now, running=running)

        return self._zero.step(tg, self, spec, replicas, signal, decide)

    def _stopped(self, replicas: Sequence[Replica]) -> str | None:
        """Why its owner holds the service (repairs.held), or None. A crashed template is no
        owner's stop: the service is kept at its count by its clones, and the template is
        reported down (in the state, and once as an error event) until it runs again."""
        own = [r for r in replicas if r.users]
        if not own:
            return None  # a scheduler's replicas (Swarm): no owner's word to read
        down = [r for r in own if r.crashed and r.status in ("exited", "dead")]
        if not down or any(r.serving or r.status == "restarting" for r in own):
            self._down = None
            return held(replicas, self._ctx.clock.wall())
        message = "; ".join(f"{r.name} crashed ({r.exit})" for r in down)
        error = TemplateError(
            str(self.key), f"{message}: its clones keep the service at its count until it runs"
        )
        if str(error) != self._down:
            logger.error("%s", error)
            self._report.fault(error)
        self._down = str(error)
        return None

    def _spec_for(self, replicas: Sequence[Replica]) -> ServiceSpec:
        """The spec from the template's labels, parsed again only when they change; a new spec
        brings a new policy, and a behaviour that carries the old one's windows over."""
        template = template_of(self.key, replicas)
        if (why := template.unclonable) is not None:
            raise TemplateError(str(self.key), f"{template.name} cannot be cloned: {why}")
        all_labels = template.labels
        if self.spec is not None and all_labels is self._read:
            spec = self.spec  # the same inspect's labels as last round: read already
        elif self.spec is not None and dict(self.spec.labels) == own_labels(all_labels):
            spec = self.spec
        else:
            spec = self._parsed(all_labels)
        self._read = all_labels
        allowed(spec, template.name, template.privileges)
        return spec

    def _parsed(self, all_labels: Mapping[str, str]) -> ServiceSpec:
        spec = parse(self.key, all_labels, self._ctx.sources)
        self.keep()  # what the policy the labels replace learned
        self._pipeline = Pipeline(spec.new_policy(), spec.behavior, previous=self._pipeline)
        self._memory.restore(self._pipeline.policy)
        self.spec = spec
        return spec

    def _evaluate(
        self, spec: ServiceSpec, replicas: Sequence[Replica], samples: Mapping[str, Sample]
    ) -> Evaluation:
        assert self._pipeline is not None
        now, wall = self._ctx.clock.monotonic(), self._ctx.clock.wall()
        observed = replica_samples(
            replicas, samples, self._startup.on_our_clock(replicas, now, wall)
        )
        counting = (s.container_id for s in observed if s.ready and s.cpu is not None)
        fresh = self._startup.counted(counting, now, (r.id for r in replicas))
        if fresh:
            observed = tuple(dataclasses.replace(s, fresh=True) if s.container_id in fresh else s
                             for s in observed)  # fmt: skip
        signal = self._metric.read(spec)
        rule = self._metric.rule(spec)
        labelled = self._labelled() if self.spec else spec
        outcome = self._pipeline.decide(Round(
            labelled.minimum, labelled.maximum, observed, now, wall, signal,
            self._startup.seconds, own=sum(1 for r in counted(replicas) if r.users),
            fallback=rule, schedule=labelled.schedule,
        ))  # fmt: skip
        self._idle.tell(outcome.idle, replicas)
        self._metric.tell(signal, outcome, rule)
        self._memory.tick(self._pipeline.policy, now)
        decision = outcome.decision
        logger.debug("%s: %d -> %d: %s", self.key, decision.current, decision.desired,
                     decision.reason)  # fmt: skip
        evaluation = Evaluation(wall, decision, observed, {r.id: r.name for r in replicas})
        self.history.append(evaluation)
        self.tally.evaluated(evaluation)
        return evaluation

    def _upkeep(
        self, tg: asyncio.TaskGroup, spec: ServiceSpec, replicas: Sequence[Replica], now: float
    ) -> bool:
        """Broken clones, vanished replicas, stale clones (repairs.py): True while one is being
        mended or waits out the crash-loop backoff. The service's size is not decided then, or a
        scale-up would sidestep the backoff."""
        live = len(counted(replicas))
        if self.decided is None or live > self.decided:
            self.decided = live  # at start-up, or the user added containers of their own
        self.decided = min(self.decided, spec.maximum)
        wall = self._ctx.clock.wall()
        since = woke(replicas)
        if any(broken(r, wall, since) for r in replicas):
            repair = self._crash_loop.plan(replicas, now, wall, self.decided)
            if repair is None:
                reason = "broken clones: waiting out the crash-loop backoff to replace them"
                self._show(Phase.REPAIRING, replicas, spec, None, reason)
                return True
        elif spec.paused:
            return False
        else:
            template = template_of(self.key, replicas)
            repair = restore(replicas, self.decided, wall) or roll(replicas, template, self.decided)
            if repair is None:
                return False
        reason = f"{repair.kind}: {'; '.join(repair.reasons)}"
        logger.warning("%s: %s", self.key, reason)
        self._show(Phase.REPAIRING, replicas, spec, None, reason)
        self._runner.run(tg, repair.doing, self._mend(replicas, repair))
        return True

    # -- the actions the runner runs, and what is shown once they end ---------------------------

    def run(
        self, tg: asyncio.TaskGroup, doing: str, action: Coroutine[Any, Any, ScaleResult]
    ) -> None:
        """Run `action` as this service's one action in flight, guarded (for zero.Sleep)."""
        self._runner.run(tg, doing, action)

    def failing(self) -> str | None:
        """While the last action's backoff lasts, how long is left, in words."""
        return self._runner.failing()

    def record(self, result: ScaleResult) -> None:
        """A sleep or a wake happened: a scale action for the behaviour's rates and cooldowns,
        which count what it changed, not the clones it found gone (as `_scale` does)."""
        assert self._pipeline is not None
        before = result.before - len(result.gone)
        self._pipeline.record(self._ctx.clock.monotonic(), before, result.after)
        self.decided = result.after

    def show(self, phase: Phase, replicas: Sequence[Replica], spec: ServiceSpec,
             reason: str) -> None:  # fmt: skip
        self._show(phase, replicas, spec, self._last, reason)

    def _settled(self, doing: str, failure: str | None, error: AutoscalerError | None) -> None:
        replicas = self._ctx.view(self.key)
        if failure is not None:
            self._show(Phase.BACKOFF, replicas, self.spec, self._last, failure, error=str(error))
        elif error is not None:
            self._show(Phase.STOPPED, replicas, self.spec, self._last, f"{doing}: {error}")
        elif self._zero.asleep:
            self._show(Phase.IDLE, replicas, self.spec, self._last, self._zero.reason)
        else:
            reason = self._last.decision.reason if self._last else f"done {doing}"
            self._show(Phase.HOLDING, replicas, self.spec, self._last, reason)

    async def _scale(
        self, spec: ServiceSpec, replicas: Sequence[Replica], evaluation: Evaluation
    ) -> ScaleResult:
        target = evaluation.decision.desired
        result = await self._ctx.actuator.scale_to(self.key, replicas, target)
        assert self._pipeline is not None
        self.decided = result.after
        self._report.scaled(spec, evaluation, result)
        if result.changed:
            # The rates count what this action changed, not the clones it found gone.
            saturated = evaluation.decision.saturated
            self._pipeline.record(
                self._ctx.clock.monotonic(), result.before - len(result.gone), result.after,
                saturated=saturated,
            )  # fmt: skip
            logger.info("%s: scaled %d -> %d in %.2fs", self.key, result.before, result.after,
                        result.seconds)  # fmt: skip
        elif result.gone:
            # Its clones were gone already (the view was read before another hand's removal
            # reached it): no action of this instance's, to start no cooldown and use no rate.
            logger.info("%s: %d clone(s) were removed already by another hand; the count is %d",
                        self.key, len(result.gone), result.after)  # fmt: skip
        return result

    async def _mend(self, replicas: Sequence[Replica], repair: Repair) -> ScaleResult:
        result = await self._ctx.actuator.repair(
            self.key, replicas, repair.remove, repair.replace, surge=repair.surge
        )
        if not result.changed:
            # Every clone it came to remove was gone already, and none was to be made: another
            # hand's action, not this instance's, so no event tells it as one.
            logger.info("%s: %s: %d clone(s) were removed already by another hand", self.key,
                        repair.kind, len(result.gone))  # fmt: skip
            return result
        names = {r.id: r.name for r in repair.remove}
        self._report.event(
            repair.kind,
            {"removed": len(result.removed), "created": len(result.created)},
            removed=[names.get(i, i[:12]) for i in result.removed],
            created=len(result.created),
            reason="; ".join(repair.reasons),
        )
        return result

    @property
    def _last(self) -> Evaluation | None:
        return self.history[-1] if self.history else None

    @property
    def state(self) -> ServiceState | None:
        """The service as it stands after the latest step (None before the first)."""
        return self._report.state

    @property
    def timeline(self) -> History:
        """Its states over the last hour, a row a round."""
        return self._report.history

    def _show(
        self,
        phase: Phase,
        replicas: Sequence[Replica],
        spec: ServiceSpec | None,
        evaluation: Evaluation | None,
        reason: str,
        *,
        error: str | None = None,
    ) -> None:
        self._report.show(
            phase, replicas, spec, evaluation, reason,
            decided=self.decided, samples=self._samples, signal=self._metric.last,
            error=error or self._down or self._metric.error, finding=self._idle.finding,
            schedule=self._schedule, startup=self._startup.seconds,
            control=self._controls.current,
        )  # fmt: skip
