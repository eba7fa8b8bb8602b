"""`simulate` says what `run` does: one trace replayed through the simulator's pipeline, and
through a service's controller on the in-memory backend (each round the controller sees the
simulator's replicas and their reports as its samples, and the trace's demand as its metric),
gives the same actions: scale actions, and with `min 0` sleeps and wakes."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime

import pytest

from autoscaler.backends.fake import Fake
from autoscaler.control.context import Clock, Context
from autoscaler.control.controller import Controller
from autoscaler.control.replicas import Replica, Sample
from autoscaler.control.spec import MetricSource, schedule_of
from autoscaler.control.state import Evaluation
from autoscaler.sources.registry import OPTIONS
from policies import registry
from policies.base import Decision, Signal
from policies.pipeline import Outcome, Round, Zero
from policies.simulator import Model, simulate
from policies.zero import ZeroRule
from tests.unit.control.test_controller import KEY, Time, Told, Uncounted

LABELS = {"cpu.target": "50", "scale-down.stabilization": "60s", "scale-up.cooldown": "0s"}
TRACE = [(0.0, 0.6), (120.0, 2.6), (300.0, 4.4), (480.0, 1.2), (800.0, 0.4), (1100.0, 0.4)]
"""CPU cores over time: a step up, a bigger one, then down twice."""
QUIET = [(0.0, 0.2), (900.0, 0.2)]
"""A level, light load: what a schedule's window changes stands out."""


class Driven:
    """The simulator's decider, played by a controller on the fake backend: the backend holds
    as many replicas as the simulator's model (health `starting` while the model's starts),
    each round's reports are their samples, and the round's signal is the service's metric.
    A round of the controller runs both stages (zero, then decide); the stage it ended in is
    what the simulator is told."""

    def __init__(self, time: Time, model: Model, labels: dict[str, str]) -> None:
        self._time = time
        self.fake = Fake(wall=lambda: time.wall)
        self._signal: Signal | None = None
        self._stepped: tuple[int, Evaluation | None] | None = None
        """Before this round's step: how many calls the backend had, the newest evaluation."""
        labels = {f"autoscaler.{k}": v for k, v in labels.items()}
        labels |= {"autoscaler.enable": "true", "autoscaler.min": str(model.minimum),
                   "autoscaler.max": str(model.maximum)}  # fmt: skip

        def signal(source: MetricSource) -> Signal:
            return self._signal or Signal(source.name, None)

        self.fake.add(KEY, labels=labels, cpu_limit=model.capacity)
        context = Context(
            actuator=self.fake, refresh=self.fake.refresh, restart=self.fake.restart,
            view=self.fake.view, notifier=Told(), metrics=Uncounted(), dry_run=False,
            instance=lambda: "parity", sources=OPTIONS, interval=model.interval, signal=signal,
            clock=Clock(wall=lambda: time.wall, monotonic=lambda: time.monotonic),
        )  # fmt: skip
        self.controller = Controller(KEY, context)
        if model.minimum == 0:
            # A service that may sleep first reads whether a sleep of ours is recorded (none):
            # a start-up round, before the trace.
            asyncio.run(self._step({}))

    def zero(self, now: Round, *, running: bool) -> Zero | None:
        self._round(now)
        new = self.fake.calls[self._stepped[0] :] if self._stepped else []
        for act in ("sleep", "wake"):
            if f"{act} {KEY}" in new:
                self._stepped = None
                return Zero(act, "the controller's")  # type: ignore[arg-type]
        return None if running else Zero(None, "asleep")

    def decide(self, now: Round) -> Outcome:
        if self._stepped is None:
            self._round(now)
        assert self._stepped is not None
        newest, self._stepped = self._stepped[1], None
        if self._newest() is newest:
            # The round was the controller's own (the end of a sleep's record): nothing decided.
            hold = Decision(len(now.samples), len(now.samples), "no decision")
            return Outcome(hold, None)  # type: ignore[arg-type]
        return Outcome(self.controller.history[-1].decision, None)  # type: ignore[arg-type]

    def record(self, now: float, before: int, after: int, *, saturated: bool = False) -> None:
        """The controller records its own actions."""

    def _round(self, now: Round) -> None:
        self._time.monotonic, self._time.wall = now.now, now.wall
        self._signal = None if now.signal is None else Signal(
            now.signal.name, now.signal.value, age=0.0)  # fmt: skip
        self._match(len(now.samples))
        replicas = sorted(self._running(), key=lambda r: r.number or 0)
        samples = {}
        for replica, report in zip(replicas, now.samples, strict=True):
            health = None if report.ready else "starting"
            self.fake._set(replica.id, health=health)
            samples[replica.id] = Sample(replica.id, report.cpu, None, None, "model",
                                         throttled=report.throttled)  # fmt: skip
        self._stepped = (len(self.fake.calls), self._newest())
        asyncio.run(self._step(samples))

    async def _step(self, samples: dict[str, Sample]) -> None:
        async with asyncio.TaskGroup() as tg:
            self.controller.step(tg, self.fake.view(KEY), samples)

    def _newest(self) -> Evaluation | None:
        return self.controller.history[-1] if self.controller.history else None

    def _running(self) -> list[Replica]:
        return [r for r in self.fake.view(KEY) if r.running]

    def _match(self, count: int) -> None:
        """As many replicas running as the model has (the simulator scales its model itself;
        the controller's own actions on the backend come to the same count where the two
        agree, which is what is tested)."""
        view = sorted(self._running(), key=lambda r: r.number or 0)
        while len(view) > count:
            self.fake.remove(view.pop().id)
        while len(view) < count:
            template = min(self.fake.view(KEY), key=lambda r: r.number or 0)
            number = max(r.number or 0 for r in self.fake.view(KEY)) + 1
            made = self.fake.add(KEY, number=number, labels=template.labels,
                                 cpu_limit=template.cpu_limit)  # fmt: skip
            self.fake._set(made.id, clone_of=template.id)
            view = sorted(self._running(), key=lambda r: r.number or 0)


def replay(
    policy: str,
    labels: dict[str, str],
    model: Model,
    trace: list[tuple[float, float]],
    source: dict[str, str] | None = None,
) -> tuple[list[tuple[float, int, int]], list[tuple[float, int, int]]]:
    """The actions of `trace` in the simulator, and in a controller on the fake backend (whose
    labels also name the metric's `source`)."""
    built, behavior = registry.build(policy, labels)
    if model.minimum == 0:
        model = replace(model, zero=ZeroRule.of(behavior, built.options))  # type: ignore[attr-defined]
    simulated = simulate(trace, built, model, behavior)
    time = Time(monotonic=0.0, wall=model.start.timestamp())
    driven = Driven(time, model, labels | (source or {}) | {"policy": policy})
    controlled = simulate(trace, registry.build(policy, labels)[0], model, decider=driven)
    return ([(t, before, after) for t, before, after, _ in simulated.decisions],
            [(t, before, after) for t, before, after, _ in controlled.decisions])  # fmt: skip


@pytest.mark.parametrize("policy", ["target-tracking", "hpa"])
def test_a_trace_gives_the_same_actions_in_the_simulator_and_in_a_controller(policy: str) -> None:
    model = Model(capacity=0.5, startup=10.0, interval=5.0, target=50.0, minimum=1, maximum=10,
                  initial=1)  # fmt: skip
    simulated, controlled = replay(policy, LABELS, model, TRACE)
    assert simulated, "the trace asks for actions"
    assert controlled == simulated


def test_a_schedule_with_its_lead_and_time_zone_gives_the_same_actions() -> None:
    """The bounds in force are the pipeline's in both: a window's min, early by its lead, in
    its time zone's hours."""
    labels = LABELS | {"schedule.morning": "Mon 08:00-08:10 min=4", "schedule.lead": "2m",
                       "schedule.timezone": "Europe/Berlin"}  # fmt: skip
    windows = {f"autoscaler.{k}": v for k, v in labels.items() if k.startswith("schedule.")}
    model = Model(capacity=0.5, startup=10.0, interval=5.0, target=50.0, minimum=1, maximum=10,
                  initial=1, start=datetime(2026, 11, 30, 7, 55),
                  schedule=schedule_of(KEY, windows))  # fmt: skip
    policy_labels = {k: v for k, v in labels.items() if not k.startswith("schedule.")}
    simulated, controlled = replay("target-tracking", policy_labels | labels, model, QUIET)
    assert (180.0, 1, 4) in simulated, "the window's min, two minutes early (07:58 in Berlin)"
    assert controlled == simulated


def test_a_quiet_service_sleeps_and_wakes_the_same_in_the_simulator_and_in_a_controller() -> None:
    """With `min 0` the demand is the metric in both: the sleep after `to-zero-after` of none,
    and the wake when it comes back, are the pipeline's zero stage in both."""
    labels = LABELS | {"metric.target": "0.4", "scale-down.to-zero-after": "60s"}
    model = Model(capacity=0.5, startup=10.0, interval=5.0, target=50.0, minimum=0, maximum=10,
                  initial=1)  # fmt: skip
    trace = [(0.0, 0.3), (100.0, 0.0), (400.0, 1.5), (700.0, 0.0), (900.0, 0.0)]
    source = {"metric.source": "mqtt", "metric.topic": "shop/demand"}
    simulated, controlled = replay("target-tracking", labels, model, trace, source)
    assert [a for a in simulated if a[2] == 0], "the trace puts the service to sleep"
    assert [a for a in simulated if a[1] == 0], "and wakes it"
    assert controlled == simulated
