"""One service's controller, each state of its diagram (control/controller.py), on the in-memory
backend (backends/fake.py) with a clock the test steps: no engine, no broker, in milliseconds."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from autoscaler.backends.fake import Fake
from autoscaler.control.context import Clock, Context
from autoscaler.control.controller import Controller
from autoscaler.control.replicas import Replica, Sample, ScaleResult, counted, victims
from autoscaler.control.spec import MetricSource
from autoscaler.errors import AutoscalerError, TemplateLeaving
from autoscaler.labels import ServiceKey
from autoscaler.sources.registry import OPTIONS
from policies.base import Signal

KEY = ServiceKey("shop", "web")
WEB = {"autoscaler.enable": "true", "autoscaler.min": "1", "autoscaler.max": "6",
       "autoscaler.cpu.target": "50", "autoscaler.scale-down.stabilization": "0s"}  # fmt: skip


@dataclass
class Told:
    """What the controller told the world (control.ports.Notices)."""

    events: list[tuple[str, Mapping[str, Any], dict[str, Any]]] = field(default_factory=list)
    states: list[Mapping[str, Any]] = field(default_factory=list)

    def event(self, key: ServiceKey, action: str, attributes: Mapping[str, Any], *,
              instance: str | None, **extra: Any) -> None:  # fmt: skip
        self.events.append((action, attributes, extra))

    def state(self, key: ServiceKey, state: Mapping[str, Any]) -> None:
        self.states.append(state)

    def clear(self, key: ServiceKey) -> None:
        pass

    def actions(self, action: str) -> list[tuple[Mapping[str, Any], dict[str, Any]]]:
        return [(a, e) for n, a, e in self.events if n == action]


class Uncounted:
    """control.ports.Meter, counting nothing."""

    def acted(self, key: ServiceKey, direction: str) -> None: ...
    def failed(self, key: ServiceKey, exc: AutoscalerError) -> None: ...
    def forget(self, key: ServiceKey) -> None: ...
    def sampled(self, seconds: float) -> None: ...


@dataclass
class Time:
    monotonic: float = 1000.0
    wall: float = 1_796_000_000.0

    def pass_(self, seconds: float) -> None:
        self.monotonic += seconds
        self.wall += seconds


@dataclass
class Service:
    """One service on the fake backend under a controller, a round at a time."""

    fake: Fake
    told: Told
    time: Time
    controller: Controller
    signal: list[Signal | None] = field(default_factory=lambda: [None])

    async def round(self, cpu: float | None = None, *, seconds: float = 5.0) -> str:
        """Time passes, then one round with every running replica at `cpu` percent: the phase
        it leaves the service in, any action it started having finished."""
        self.time.pass_(seconds)
        replicas = self.fake.view(KEY)
        samples = {r.id: Sample(r.id, cpu, None, None, "fake") for r in replicas if r.running}
        async with asyncio.TaskGroup() as tg:
            self.controller.step(tg, replicas, samples)
        return self.phase

    async def mend(self) -> str:
        async with asyncio.TaskGroup() as tg:
            self.controller.mend(tg, self.fake.view(KEY))
        return self.phase

    @property
    def phase(self) -> str:
        state = self.controller.state
        assert state is not None
        return str(state.phase)

    @property
    def reason(self) -> str:
        assert self.controller.state is not None
        return self.controller.state.reason

    def running(self) -> list[Replica]:
        return [r for r in self.fake.view(KEY) if r.running]


def service(
    labels: Mapping[str, str] = WEB, *, dry_run: bool = False, metrics: Uncounted | None = None
) -> Service:
    time = Time()
    fake, told = Fake(wall=lambda: time.wall), Told()
    signals: list[Signal | None] = [None]

    def signal(source: MetricSource) -> Signal:
        return signals[0] or Signal(source.name, None)

    context = Context(
        actuator=fake, refresh=fake.refresh, restart=fake.restart, view=fake.view,
        notifier=told, metrics=metrics or Uncounted(), dry_run=dry_run, instance=lambda: "test",
        signal=signal, sources=OPTIONS, heartbeat=0.0,
        clock=Clock(wall=lambda: time.wall, monotonic=lambda: time.monotonic), interval=5.0,
    )  # fmt: skip
    fake.add(KEY, labels=labels)
    return Service(fake, told, time, Controller(KEY, context), signals)


async def test_a_service_at_its_target_holds() -> None:
    web = service()
    assert await web.round(cpu=50.0) == "holding"
    assert web.fake.calls == []


async def test_demand_above_the_target_scales_up_and_below_it_back_down() -> None:
    web = service()
    await web.round(cpu=100.0)  # 1 replica at twice the target: 2
    assert web.fake.calls == ["scale_to shop/web 2"] and len(web.running()) == 2
    ((_, extra),) = web.told.actions("scale_up")
    assert (extra["from"], extra["to"]) == (1, 2), extra
    for _ in range(3):
        await web.round(cpu=10.0)
    assert web.fake.calls[-1] == "scale_to shop/web 1" and len(web.running()) == 1
    # The user's own container stays; only the clone went.
    assert not web.running()[0].is_clone


async def test_wrong_labels_are_an_error_told_once() -> None:
    web = service(WEB | {"autoscaler.max": "many"})
    assert await web.round(cpu=100.0) == "error"
    await web.round(cpu=100.0)
    errors = web.told.actions("error")
    assert len(errors) == 1 and "autoscaler.max" in errors[0][1]["message"]
    assert web.fake.calls == []


async def test_a_service_its_owner_stopped_is_left_alone() -> None:
    web = service()
    web.fake.stop(web.fake.view(KEY)[0].id)
    assert await web.round(cpu=None) == "stopped"
    assert "no container of the service's own is running" in web.reason
    assert web.fake.calls == []


async def test_while_another_hand_stops_a_clone_nothing_acts() -> None:
    web = service(WEB | {"autoscaler.min": "2"})
    await web.round(cpu=50.0)
    clone = next(r for r in web.fake.view(KEY) if r.is_clone)
    web.fake._set(clone.id, stopping_since=web.time.wall)  # `docker compose up` stopping it
    assert await web.round(cpu=50.0) == "stopped"
    assert "another hand is creating, stopping or removing 1" in web.reason


async def test_a_failed_action_backs_off_then_tries_again() -> None:
    web = service()
    web.fake.fail("scale_to", "no room")
    assert await web.round(cpu=100.0) == "backoff"
    assert "no room" in web.told.actions("error")[0][1]["message"]
    assert await web.round(cpu=100.0, seconds=1.0) == "backoff"  # 2 s have not passed
    await web.round(cpu=100.0, seconds=2.0)
    assert web.fake.calls[-1] == "scale_to shop/web 2" and len(web.running()) == 2


async def test_a_crashed_clone_is_replaced() -> None:
    web = service(WEB | {"autoscaler.min": "2"})
    await web.round(cpu=50.0)
    clone = next(r for r in web.fake.view(KEY) if r.is_clone)
    web.fake.crash(clone.id)
    assert await web.round(cpu=50.0) == "holding"
    assert web.fake.calls[-1] == "repair shop/web -1 +1"
    assert len(web.running()) == 2 and clone.id not in {r.id for r in web.running()}
    assert web.told.actions("repair")


async def test_what_another_hand_removed_is_restored_between_rounds() -> None:
    web = service(WEB | {"autoscaler.min": "3"})
    await web.round(cpu=50.0)
    for clone in [r for r in web.fake.view(KEY) if r.is_clone]:
        web.fake.remove(clone.id)  # `docker compose up` beyond its scale
    await web.mend()  # the engine's destroy events: no round, no decision
    assert web.fake.calls[-1] == "repair shop/web -0 +2"
    ((_, extra),) = web.told.actions("restore")
    assert "2 of 3 replicas went away outside the autoscaler" in extra["reason"]


async def test_a_repair_that_only_found_its_clone_gone_tells_no_repair() -> None:
    # Each action is announced by exactly one event, by the instance that made it: an orphan
    # another hand removed first is no repair of this instance's.
    web = service(WEB | {"autoscaler.min": "2"})
    await web.round(cpu=50.0)  # 1 -> 2
    template = next(r for r in web.fake.view(KEY) if not r.is_clone)
    orphan = replace(template, id="orphan", name="shop-web-3", number=3, clone_of=template.id,
                     status="created")  # fmt: skip
    web.fake._replicas[orphan.id] = orphan  # a scale-up cut short: created, never started
    web.time.pass_(5.0)
    replicas = web.fake.view(KEY)
    web.fake.remove(orphan.id)  # `docker compose up` removes it first
    async with asyncio.TaskGroup() as tg:
        web.controller.mend(tg, replicas)
    assert web.fake.calls[-1] == "repair shop/web -1 +0"
    assert web.told.actions("repair") == []
    assert len(web.running()) == 2


async def test_a_template_gone_before_its_clones_stop_is_a_removal_not_an_error() -> None:
    # `docker compose down` stops and removes every container at once: the engine may remove
    # the template before the stop of a clone is even asked. No error for a moment like that;
    # a template that stays missing while its clones run is one.
    web = service(WEB | {"autoscaler.min": "2"})
    await web.round(cpu=50.0)  # 1 -> 2
    for _ in range(4):
        assert await web.round(cpu=50.0) == "holding"  # the same replicas: not checked again
    template = next(r for r in web.fake.view(KEY) if not r.is_clone)
    web.fake.remove(template.id)
    assert await web.round(cpu=50.0, seconds=2.0) == "stopped"
    assert web.told.actions("error") == []
    assert await web.round(cpu=50.0, seconds=10.0) == "error"
    ((attributes, _),) = web.told.actions("error")
    assert attributes["error"] == "TemplateError"


async def test_a_restore_its_owner_holds_waits_for_the_owners_next_event_not_a_backoff() -> None:
    # Compose v1's new release: it removes the clones beyond its scale and stops the template
    # before it makes the new one. The restore the removals asked for is refused (no clone of
    # a template on its way out): a hold, no failure. The new template's start, the next
    # event, restores at once, where a backoff would have waited for the next round.
    web = service(WEB | {"autoscaler.min": "3"})
    await web.round(cpu=50.0)
    for clone in [r for r in web.fake.view(KEY) if r.is_clone]:
        web.fake.remove(clone.id)
    real = web.fake.repair
    refusals: list[str] = []

    async def leaving(key: ServiceKey, *args: Any, **kwargs: Any) -> ScaleResult:
        if not refusals:
            refusals.append("refused")
            raise TemplateLeaving(str(key), "not making clone shop-web-2: its template "
                                  "shop-web-1 is being stopped or removed by its owner")  # fmt: skip
        return await real(key, *args, **kwargs)

    web.fake.repair = leaving  # type: ignore[method-assign]
    assert await web.mend() == "stopped"
    assert "its template shop-web-1 is being stopped or removed by its owner" in web.reason
    assert not web.told.actions("error")
    web.time.pass_(0.1)  # the new template started: its event, well within a backoff's 2 s
    await web.mend()
    assert web.fake.calls[-1] == "repair shop/web -0 +2" and len(web.running()) == 3


async def test_clones_of_a_replaced_template_are_rolled_onto_the_new_one() -> None:
    web = service(WEB | {"autoscaler.min": "2"})
    await web.round(cpu=50.0)
    old = next(r for r in web.fake.view(KEY) if not r.is_clone)
    # A new release, as Compose recreates a container: the old one goes, a new one comes.
    web.fake.remove(old.id)
    new = web.fake.add(KEY, labels=old.labels, fingerprint="v2")
    await web.round(cpu=50.0)
    assert web.fake.calls[-1] == "repair shop/web -1 +1"
    assert {(r.clone_of or r.id, r.fingerprint) for r in web.running()} == {(new.id, "v2")}


async def test_paused_says_what_it_would_do_and_does_nothing() -> None:
    web = service(WEB | {"autoscaler.paused": "true"})
    assert await web.round(cpu=100.0) == "paused"
    assert web.reason.startswith("paused; would:")
    assert web.fake.calls == []


async def test_a_dry_run_tells_a_decision_once_and_acts_on_nothing() -> None:
    web = service(dry_run=True)
    await web.round(cpu=100.0)
    await web.round(cpu=100.0)
    assert len(web.told.actions("scale_up")) == 1 and web.fake.calls == []


QUEUE = {"autoscaler.enable": "true", "autoscaler.min": "0", "autoscaler.max": "4",
         "autoscaler.metric.source": "mqtt", "autoscaler.metric.topic": "q/jobs",
         "autoscaler.metric.target": "10", "autoscaler.scale-down.to-zero-after": "10s",
         "autoscaler.scale-down.stabilization": "0s"}  # fmt: skip


async def test_a_quiet_service_sleeps_and_demand_wakes_it() -> None:
    web = service(QUEUE)
    web.signal[0] = Signal("mqtt q/jobs", 0.0, age=0.0)
    await web.round()  # reads the record of a sleep first: none
    for _ in range(3):
        await web.round()
    assert web.fake.calls == ["sleep shop/web"] and not web.running()
    assert await web.round() == "idle"
    web.signal[0] = Signal("mqtt q/jobs", 25.0, age=0.0)
    await web.round()
    assert web.fake.calls[-1] == "wake shop/web" and len(web.running()) == 1
    ((_, extra),) = web.told.actions("wake")
    assert (extra["from"], extra["to"]) == (0, 1)


async def test_a_missing_metric_never_puts_a_service_to_sleep() -> None:
    web = service(QUEUE)
    for _ in range(5):
        await web.round()
    assert "sleep shop/web" not in web.fake.calls


async def test_a_metric_missing_past_its_wait_runs_the_fallback_count() -> None:
    web = service(QUEUE | {"autoscaler.min": "1", "autoscaler.metric.fallback": "3",
                           "autoscaler.metric.fallback-after": "10s"})  # fmt: skip
    web.signal[0] = Signal("mqtt q/jobs", None, error="broker away")
    for _ in range(4):
        await web.round()
    assert web.fake.calls[-1] == "scale_to shop/web 3"
    assert web.told.actions("fallback")


@pytest.mark.parametrize("crashes", [1, 2])
async def test_a_crashed_template_is_an_error_its_clones_carry_the_service(crashes: int) -> None:
    web = service(WEB | {"autoscaler.min": "2"})
    await web.round(cpu=50.0)
    template = next(r for r in web.fake.view(KEY) if not r.is_clone)
    web.fake.crash(template.id, exit_code=3)
    for _ in range(crashes):
        await web.round(cpu=50.0)
    errors = web.told.actions("error")
    assert len(errors) == 1 and "crashed (exit code 3)" in errors[0][1]["message"]
    assert any(r.is_clone for r in web.running())


async def test_a_bug_while_evaluating_is_an_error_of_that_service_told_once_and_then_cleared() -> (
    None
):
    web = service(QUEUE | {"autoscaler.min": "1"})
    web.signal[0] = Signal("mqtt q/jobs", 5.0, age=0.0)
    await web.round()
    broken = web.controller._ctx.signal

    def bug(source: MetricSource) -> Signal:
        raise RuntimeError("a reader's bug")

    web.controller._ctx.signal = bug  # type: ignore[misc]
    assert await web.round() == "error" and await web.round() == "error"
    ((_, extra),) = web.told.actions("error")
    assert extra["message"] == (
        "service shop/web: unexpected RuntimeError while evaluating: a reader's bug"
    )
    assert web.reason == extra["message"]
    web.controller._ctx.signal = broken  # type: ignore[misc]
    assert await web.round() != "error"
    web.controller._ctx.signal = bug  # type: ignore[misc]
    await web.round()
    assert len(web.told.actions("error")) == 2, "the same bug again, after a fix, is told again"


async def test_a_bug_in_an_action_is_told_and_the_service_backs_off() -> None:
    web = service()

    async def bug(*args: object) -> None:
        raise RuntimeError("an actuator's bug")

    web.fake.scale_to = bug  # type: ignore[method-assign]
    await web.round(90.0)
    ((_, extra),) = web.told.actions("error")
    assert extra["message"] == (
        "service shop/web: unexpected RuntimeError while scaling: an actuator's bug"
    )
    assert await web.round(90.0, seconds=1.0) == "backoff"


async def test_a_schedule_window_is_told_once_as_it_begins_and_once_as_it_ends() -> None:
    monday_8 = 1_796_025_600.0  # Monday 2026-11-30 08:00 UTC
    web = service(WEB | {"autoscaler.schedule.morning": "Mon 08:00-08:01 min=3"})
    web.time.wall = monday_8 - 10
    await web.round(50.0)  # 07:59:55
    assert web.told.actions("schedule") == []
    await web.round(50.0)  # 08:00:00: the window begins
    await web.round(50.0)
    ((attributes, extra),) = web.told.actions("schedule")
    assert attributes == {"min": 3, "max": 6}
    assert extra["message"] == "schedule morning (min 3): min 3, max 6"
    assert len(web.running()) == 3
    for _ in range(12):
        await web.round(50.0)
    ended = web.told.actions("schedule")[1]
    assert ended == (
        {"min": 1, "max": 6},
        {"message": "no schedule window in force: the labels' min and max"},
    )
    assert len(web.told.actions("schedule")) == 2


async def test_a_saturated_service_grown_asks_for_a_look_and_no_other_action_does() -> None:
    """A saturated service grows a provable step at a time: the next step is decided as soon
    as the new windows measure (the backend's look). A service on a metric that lags, or on
    CPU below its limits, waits for the round."""
    web = service()
    looks: list[tuple[ServiceKey, list[str]]] = []
    web.controller._ctx.look = lambda key, new: looks.append((key, list(new)))
    await web.round(70.0)  # 70 % of the limit: the HPA's count, no saturation
    assert web.fake.calls[-1] == "scale_to shop/web 2" and looks == []
    replicas = web.fake.view(KEY)
    samples = {r.id: Sample(r.id, 100.0, None, None, "fake", throttled=0.9) for r in replicas}
    web.time.pass_(5.0)
    async with asyncio.TaskGroup() as tg:
        web.controller.step(tg, replicas, samples)
    assert web.fake.calls[-1].startswith("scale_to shop/web")
    # The look is told which replicas are new: the backend waits for the load to reach them.
    made = [r.id for r in web.fake.view(KEY) if r.id not in {r.id for r in replicas}]
    assert looks == [(KEY, made)] and made


async def test_a_clone_an_action_made_is_fresh_in_the_first_round_it_counts_in_only() -> None:
    web = service()
    await web.round(100.0)  # 1 -> 2
    made = [r.id for r in web.running() if r.is_clone]
    await web.round(50.0)
    await web.round(50.0)
    first, second = (e.samples for e in list(web.controller.history)[-2:])
    assert [s.container_id for s in first if s.fresh] == made
    assert not any(s.fresh for s in second)


async def a_round_on_a_view_read_before_a_removal(web: Service, cpu: float, *, removing: int,
                                                  gone: int) -> list[str]:  # fmt: skip
    """One round on the view as it was before another hand (`docker compose up --scale`)
    removed `gone` of the `removing` clones the round's scale-down picks: the action finds
    them gone. The ones it removed."""
    web.time.pass_(5.0)
    replicas = web.fake.view(KEY)
    removed = [clone.id for clone in victims(counted(replicas), removing)[:gone]]
    for clone_id in removed:
        web.fake.remove(clone_id)
    samples = {r.id: Sample(r.id, cpu, None, None, "fake") for r in replicas if r.running}
    async with asyncio.TaskGroup() as tg:
        web.controller.step(tg, replicas, samples)
    return removed


async def test_a_scale_down_that_only_found_its_clones_gone_is_no_action_of_its_own() -> None:
    # Each action is announced by exactly one event, by the instance that made it, and only
    # an action starts a cooldown: the clone another hand removed is neither.
    web = service(WEB | {"autoscaler.scale-down.cooldown": "60s"})
    await web.round(cpu=200.0)  # 1 -> 4
    web.time.pass_(60.0)  # the scale-up's cooldown is over
    refreshed: list[str] = []
    refresh = web.controller._ctx.refresh

    async def telling(container_id: str) -> object:
        refreshed.append(container_id)
        return await refresh(container_id)

    web.controller._ctx.refresh = telling
    gone = await a_round_on_a_view_read_before_a_removal(web, 37.5, removing=1, gone=1)  # 4 -> 3
    assert web.fake.calls[-1] == "scale_to shop/web 3" and len(web.running()) == 3
    assert web.told.actions("scale_down") == []
    assert web.controller.decided == 3  # the real count
    assert refreshed == gone  # the view lets the clone go as it would a removed one
    await web.round(cpu=25.0)  # 3 -> 2, no cooldown started by the clone that went
    assert web.fake.calls[-1] == "scale_to shop/web 2" and len(web.running()) == 2
    ((_, extra),) = web.told.actions("scale_down")
    assert (extra["from"], extra["to"]) == (3, 2), extra


async def test_a_scale_down_that_found_some_gone_tells_real_counts_and_rates_its_own() -> None:
    web = service(WEB | {"autoscaler.scale-down.max-replicas": "2",  # and no percent more
                         "autoscaler.scale-down.max-percent": "0",
                         "autoscaler.scale-down.period": "60s"})  # fmt: skip
    await web.round(cpu=200.0)  # 1 -> 4
    await a_round_on_a_view_read_before_a_removal(web, 25.0, removing=2, gone=1)  # 4 -> 2
    ((_, extra),) = web.told.actions("scale_down")
    assert (extra["from"], extra["to"]) == (4, 2), extra
    # This instance removed one: one more may go within the period.
    await web.round(cpu=20.0)  # 2 -> 1
    assert web.fake.calls[-1] == "scale_to shop/web 1" and len(web.running()) == 1
