"""`simulate` says what `run` does: one trace replayed through the simulator's pipeline, and
through a service's controller on the in-memory backend (each round the controller sees the
simulator's replicas and their reports as its samples), gives the same actions."""

from __future__ import annotations

import asyncio

import pytest

from autoscaler.backends.fake import Fake
from autoscaler.control.context import Clock, Context
from autoscaler.control.controller import Controller
from autoscaler.control.replicas import Sample
from autoscaler.sources.registry import OPTIONS
from policies import registry
from policies.pipeline import Outcome, Round
from policies.simulator import Model, simulate
from tests.unit.control.test_controller import KEY, Time, Told, Uncounted

LABELS = {"cpu.target": "50", "scale-down.stabilization": "60s", "scale-up.cooldown": "0s"}
TRACE = [(0.0, 0.6), (120.0, 2.6), (300.0, 4.4), (480.0, 1.2), (800.0, 0.4), (1100.0, 0.4)]
"""CPU cores over time: a step up, a bigger one, then down twice."""


class Driven:
    """The simulator's decider, played by a controller on the fake backend: the backend holds
    as many replicas as the simulator's model (health `starting` while the model's starts),
    and each round's reports are their samples."""

    def __init__(self, time: Time, model: Model) -> None:
        self._time = time
        self.fake = Fake(wall=lambda: time.wall)
        labels = {f"autoscaler.{k}": v for k, v in LABELS.items()}
        labels |= {"autoscaler.enable": "true", "autoscaler.min": str(model.minimum),
                   "autoscaler.max": str(model.maximum)}  # fmt: skip
        self.fake.add(KEY, labels=labels, cpu_limit=model.capacity)
        context = Context(
            actuator=self.fake, refresh=self.fake.refresh, restart=self.fake.restart,
            view=self.fake.view, notifier=Told(), metrics=Uncounted(), dry_run=False,
            instance=lambda: "parity", sources=OPTIONS, interval=model.interval,
            clock=Clock(wall=lambda: time.wall, monotonic=lambda: time.monotonic),
        )  # fmt: skip
        self.controller = Controller(KEY, context)

    def decide(self, now: Round) -> Outcome:
        self._time.monotonic, self._time.wall = now.now, now.wall
        self._match(len(now.samples))
        replicas = sorted(self.fake.view(KEY), key=lambda r: r.number or 0)
        samples = {}
        for replica, report in zip(replicas, now.samples, strict=True):
            health = None if report.ready else "starting"
            self.fake._set(replica.id, health=health)
            samples[replica.id] = Sample(replica.id, report.cpu, None, None, "model",
                                         throttled=report.throttled)  # fmt: skip
        asyncio.run(self._step(samples))
        evaluation = self.controller.history[-1]
        return Outcome(evaluation.decision, None)  # type: ignore[arg-type]

    def record(self, now: float, before: int, after: int, *, saturated: bool = False) -> None:
        """The controller records its own actions."""

    async def _step(self, samples: dict[str, Sample]) -> None:
        async with asyncio.TaskGroup() as tg:
            self.controller.step(tg, self.fake.view(KEY), samples)

    def _match(self, count: int) -> None:
        """As many replicas as the model has (the simulator scales its model itself)."""
        view = sorted(self.fake.view(KEY), key=lambda r: r.number or 0)
        while len(view) > count:
            self.fake.remove(view.pop().id)
        while len(view) < count:
            number = max(r.number or 0 for r in view) + 1
            template = view[0]
            made = self.fake.add(KEY, number=number, labels=template.labels,
                                 cpu_limit=template.cpu_limit)  # fmt: skip
            self.fake._set(made.id, clone_of=template.id)
            view = sorted(self.fake.view(KEY), key=lambda r: r.number or 0)


@pytest.mark.parametrize("policy", ["target-tracking", "hpa"])
def test_a_trace_gives_the_same_actions_in_the_simulator_and_in_a_controller(policy: str) -> None:
    model = Model(capacity=0.5, startup=10.0, interval=5.0, target=50.0, minimum=1, maximum=10,
                  initial=1)  # fmt: skip
    simulated = simulate(TRACE, *registry.build(policy, LABELS)[:1], model,
                         registry.build(policy, LABELS)[1])  # fmt: skip
    time = Time(monotonic=0.0, wall=model.start.timestamp())
    driven = Driven(time, model)
    labels = {f"autoscaler.{k}": v for k, v in LABELS.items()} | {"autoscaler.policy": policy}
    driven.fake._set(driven.fake.view(KEY)[0].id,
                     labels={**driven.fake.view(KEY)[0].labels, **labels})  # fmt: skip
    controlled = simulate(TRACE, *registry.build(policy, LABELS)[:1], model, decider=driven)
    actions = [(t, before, after) for t, before, after, _ in simulated.decisions]
    assert actions, "the trace asks for actions"
    assert [(t, b, a) for t, b, a, _ in controlled.decisions] == actions
