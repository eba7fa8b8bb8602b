"""A service that may go to zero, on the in-memory backend: what the controller does when the
pipeline's zero stage says sleep or wake, what it says while the service is at zero, and what it
leaves alone."""

from __future__ import annotations

from policies.base import Signal
from tests.unit.control.test_controller import KEY, QUEUE, Service, service

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
    assert await web.round() != "idle"


async def test_at_zero_a_missing_metric_wakes_nothing_and_says_so() -> None:
    web = await asleep()
    web.signal[0] = jobs(None, error="broker away")
    assert await web.round() == "idle"
    assert web.reason == f"asleep; {JOBS}: broker away: not woken on missing data"
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
    assert web.fake.calls == ["sleep shop/web"]


async def test_a_failed_wake_backs_off_at_zero_then_wakes() -> None:
    web = await asleep()
    web.fake.fail("wake", "the engine refused")
    web.signal[0] = jobs(25.0)
    await web.round()
    assert web.fake.calls[-1] == "wake shop/web" and not web.running()
    assert await web.round(seconds=1.0) == "backoff"
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
