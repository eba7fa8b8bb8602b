"""A service that may go to zero, on the in-memory backend: what the controller does when the
pipeline's zero stage says sleep or wake, what it says while the service is at zero, and what it
leaves alone."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from autoscaler.control.controller import Controller
from autoscaler.control.replicas import Replica, ScaleResult
from autoscaler.errors import EngineError
from autoscaler.labels import ServiceKey
from policies.base import Signal
from tests.unit.control.test_controller import KEY, QUEUE, Service, Uncounted, service

JOBS = "mqtt q/jobs"


def jobs(value: float | None, error: str | None = None) -> Signal:
    return Signal(JOBS, value, age=0.0, error=error)


async def asleep(labels: dict[str, str] = QUEUE, *, web: Service | None = None) -> Service:
    """A service put to sleep by a quiet queue (`web`, or one of `labels`)."""
    web = web or service(labels)
    web.signal[0] = jobs(0.0)
    for _ in range(4):
        await web.round()
    assert web.fake.calls == ["sleep shop/web"] and not web.running()
    return web


async def test_the_sleep_is_told_with_its_counts_and_why() -> None:
    web = await asleep()
    ((attributes, extra),) = web.told.actions("sleep")
    assert attributes == {"from": 1, "to": 0}
    assert (extra["from"], extra["to"], extra["removed"], extra["stopped"]) == (1, 0, 0, 1)
    assert extra["reason"] == (
        f"asleep: {JOBS} 0 at 0 for 10s (to-zero-after 10s); woken when it is wanted"
    )
    assert isinstance(extra["seconds"], float)
    assert await web.round() == "idle"
    assert web.reason == extra["reason"]


async def test_the_wake_is_told_with_what_woke_it() -> None:
    web = await asleep()
    web.signal[0] = jobs(25.0)
    await web.round()
    ((attributes, extra),) = web.told.actions("wake")
    assert attributes == {"from": 0, "to": 1}
    assert extra["reason"] == f"{JOBS} 25 above 0"
    assert isinstance(extra["seconds"], float)
    assert await web.round() != "idle"


async def test_at_zero_a_missing_metric_wakes_nothing_and_says_so() -> None:
    web = await asleep()
    web.signal[0] = jobs(None, error="broker away")
    assert await web.round() == "idle"
    assert web.reason == f"asleep; {JOBS}: broker away: not woken on missing data"
    assert (web.told.states[-1]["min"], web.told.states[-1]["max"]) == (0, 4)
    assert web.fake.calls == ["sleep shop/web"]


async def test_a_metric_missing_at_zero_past_its_fallback_wait_wakes_it_to_that_count() -> None:
    web = await asleep(QUEUE | {"autoscaler.metric.fallback": "3",
                                "autoscaler.metric.fallback-after": "10s"})  # fmt: skip
    web.signal[0] = jobs(None, error="broker away")
    assert await web.round() == "idle"
    assert web.reason == f"asleep; {JOBS}: broker away, missing 0s: woken to its fallback 3 at 10s"
    assert await web.round() == "idle"
    await web.round()
    ((attributes, extra),) = web.told.actions("wake")
    assert attributes == {"from": 0, "to": 1}
    assert extra["reason"] == f"{JOBS}: broker away, missing 10s: fallback to 3"
    await web.round()  # awake: the fallback count, at once
    assert web.fake.calls[-2:] == ["wake shop/web", "scale_to shop/web 3"]
    assert len(web.running()) == 3 and len(web.told.actions("fallback")) == 1


async def test_a_wake_leaves_stopped_a_container_its_owner_stopped_before_the_sleep() -> None:
    web = service(QUEUE)
    by_hand = web.fake.add(KEY, number=2, labels=QUEUE)
    web.fake.stop(by_hand.id)  # `docker stop shop-web-2`
    web = await asleep(web=web)
    web.signal[0] = jobs(25.0)
    await web.round()
    ((attributes, _),) = web.told.actions("wake")
    assert attributes == {"from": 0, "to": 1}
    assert [r.number for r in web.running()] == [1]


async def test_paused_at_zero_it_says_what_would_wake_it_and_stays() -> None:
    web = await asleep()
    template = web.fake.view(KEY)[0]
    web.fake._set(template.id, labels={**template.labels, "autoscaler.paused": "true"})
    web.signal[0] = jobs(25.0)
    assert await web.round() == "idle"
    assert web.reason == f"asleep; paused: would wake: {JOBS} 25 above 0"
    assert (web.told.states[-1]["min"], web.told.states[-1]["max"]) == (0, 4)
    assert web.fake.calls == ["sleep shop/web"]


async def test_a_failed_wake_backs_off_at_zero_then_wakes() -> None:
    web = await asleep()
    web.fake.fail("wake", "the engine refused")
    web.signal[0] = jobs(25.0)
    await web.round()
    assert web.fake.calls[-1] == "wake shop/web" and not web.running()
    assert web.reason.startswith("waking failed; next try in ")
    assert await web.round(seconds=1.0) == "backoff"
    assert web.reason.startswith("the last action failed; next try in ")
    assert (web.told.states[-1]["min"], web.told.states[-1]["max"]) == (0, 4)
    for _ in range(12):
        await web.round()
    assert web.running() and web.told.actions("wake")


async def test_a_service_its_owner_started_while_asleep_is_awake_and_told_so() -> None:
    web = await asleep()
    web.fake.start(web.fake.view(KEY)[0].id)
    await web.round()
    ((attributes, extra),) = web.told.actions("wake")
    assert attributes == {"by": "owner"} and extra["message"] == "started by its owner"
    # It is the owner's again: a later stop of theirs is left alone, not woken.
    web.fake.stop(web.fake.view(KEY)[0].id)
    web.signal[0] = jobs(25.0)
    assert await web.round() == "stopped"
    assert web.fake.calls == ["sleep shop/web"]


async def test_a_service_its_owner_stopped_is_never_put_to_sleep_nor_woken() -> None:
    web = service(QUEUE)
    web.signal[0] = jobs(25.0)
    await web.round()
    web.fake.stop(web.fake.view(KEY)[0].id)
    for _ in range(3):
        assert await web.round() == "stopped"
    assert web.fake.calls == [] and not web.told.actions("wake")


async def test_a_dry_run_never_sleeps() -> None:
    web = service(QUEUE, dry_run=True)
    web.signal[0] = jobs(0.0)
    for _ in range(5):
        await web.round()
    assert web.fake.calls == [] and web.running()


class Counted(Uncounted):
    """control.ports.Meter, counting the actions."""

    def __init__(self) -> None:
        self.actions: list[tuple[ServiceKey, str]] = []

    def acted(self, key: ServiceKey, direction: str) -> None:
        self.actions.append((key, direction))


async def test_going_to_zero_and_waking_are_shown_while_they_run_and_counted() -> None:
    meter = Counted()
    web = await asleep(web=service(QUEUE, metrics=meter))
    going = web.told.states[-2]
    assert (going["phase"], going["reason"]) == ("scaling", f"going to zero; {web.reason}")
    assert (going["min"], going["max"]) == (0, 4)
    web.signal[0] = jobs(25.0)
    await web.round()
    waking = web.told.states[-2]
    assert (waking["phase"], waking["reason"]) == ("scaling", f"waking: {JOBS} 25 above 0")
    assert (waking["min"], waking["max"]) == (0, 4)
    assert meter.actions == [(KEY, "sleep"), (KEY, "wake")]


async def test_a_failed_sleep_backs_off_and_says_what_failed() -> None:
    web = service(QUEUE)
    web.fake.fail("sleep", "the engine refused")
    web.signal[0] = jobs(0.0)
    for _ in range(4):
        await web.round()
    assert web.fake.calls == ["sleep shop/web"] and web.running()
    assert web.phase == "backoff"
    assert web.reason.startswith("going to zero failed; next try in ")


async def test_a_sleep_that_stops_short_is_told_as_its_error_not_as_a_sleep() -> None:
    # A stop refused, or fenced (the instance lost its lease meanwhile): not at zero.
    web = service(QUEUE)
    real = web.fake.sleep

    async def short(key: ServiceKey, replicas: Sequence[Replica]) -> ScaleResult:
        result = await real(key, replicas)
        result.errors.append(EngineError("stopping shop-web-1 failed", service=str(key)))
        return result

    web.fake.sleep = short  # type: ignore[method-assign]
    web.signal[0] = jobs(0.0)
    for _ in range(4):
        await web.round()
    assert web.told.actions("sleep") == []
    assert web.phase == "backoff" and "stopping shop-web-1 failed" in web.reason


def restarted(web: Service, *, dry_run: bool = False) -> Service:
    """The same service under a new instance: it knows of no sleep until it has asked."""
    web.controller = Controller(KEY, replace(web.controller._ctx, dry_run=dry_run))
    return web


async def test_a_restarted_instance_finds_its_sleep_and_wakes_the_service_when_wanted() -> None:
    web = restarted(await asleep())
    told = len(web.told.states)
    assert await web.round() == "idle"
    assert web.reason == "asleep (the autoscaler put it to zero)"
    assert [state["phase"] for state in web.told.states[told:]] == ["idle"]  # never "stopped"
    assert await web.round() == "idle"
    web.signal[0] = jobs(25.0)
    await web.round()
    assert web.fake.calls == ["sleep shop/web", "wake shop/web"] and web.running()


async def test_a_restarted_instance_leaves_alone_a_service_its_owner_stopped() -> None:
    web = service(QUEUE)
    web.fake.stop(web.fake.view(KEY)[0].id)
    web.signal[0] = jobs(25.0)
    await web.round()
    assert web.reason == "done reading the record of a sleep"
    assert await web.round() == "stopped"
    assert web.fake.calls == [] and not web.running()


async def test_a_restarted_instance_ends_a_sleep_its_owner_ended_while_none_ran() -> None:
    web = await asleep()
    web.fake.start(web.fake.view(KEY)[0].id)  # while no instance ran
    web = restarted(web)
    await web.round()
    assert web.reason == "done ending the record of a sleep"
    assert not web.told.actions("wake")  # it never saw the sleep: none of its own ended
    web.fake.stop(web.fake.view(KEY)[0].id)
    web.signal[0] = jobs(25.0)
    assert await web.round() == "stopped"  # the owner's stop, left alone
    assert web.fake.calls == ["sleep shop/web"]


async def test_a_dry_run_at_zero_says_what_would_wake_it_and_stays() -> None:
    web = restarted(await asleep(), dry_run=True)
    assert await web.round() == "idle"
    web.signal[0] = jobs(25.0)
    assert await web.round() == "idle"
    assert web.reason == f"asleep; dry run: would wake: {JOBS} 25 above 0"
    assert web.fake.calls == ["sleep shop/web"] and not web.running()


async def test_a_sleep_counts_in_the_rates_only_what_it_changed() -> None:
    """A clone another hand removed first is no change of the sleep's (as for a scale-down)."""
    web = service(QUEUE | {"autoscaler.scale-down.stabilization": "60s"})  # held at 3 till asleep
    web.signal[0] = jobs(25.0)
    for _ in range(3):
        await web.round()  # 25 jobs at 10 a replica: 3
    assert len(web.running()) == 3
    real = web.fake.sleep

    async def sleep(key: ServiceKey, replicas: Sequence[Replica]) -> ScaleResult:
        result = await real(key, replicas)
        result.gone.append(result.removed.pop())  # `docker compose up` removed it first
        return result

    web.fake.sleep = sleep  # type: ignore[method-assign]
    web.signal[0] = jobs(0.0)
    for _ in range(4):
        await web.round()
    assert web.fake.calls[-2:] == ["scale_to shop/web 3", "sleep shop/web"]
    pipeline = web.controller._pipeline
    assert pipeline is not None
    # 3 -> 0, of which one clone was gone already: the sleep took 2 away.
    assert pipeline.behavior._actions[-1][1] == -2
