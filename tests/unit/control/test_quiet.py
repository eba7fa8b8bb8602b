"""A quiet round (control/quiet.py): a service whose hold stands is not decided again, and its
state goes on with each round's readings; a reading past the band, a changed replica or a
metric bring the full decision back at once."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from autoscaler.control import quiet
from autoscaler.control.controls import Control
from autoscaler.control.replicas import Sample
from autoscaler.control.report import stagger
from autoscaler.labels import ServiceKey
from policies.base import PolicyInput, Proposal
from tests.unit.control.test_controller import KEY, WEB, Service, service


def asked(web: Service) -> list[float]:
    """The mean CPU of each round the service's policy was asked to propose for, from now on."""
    pipeline = web.controller._pipeline
    assert pipeline is not None
    policy, means = pipeline.policy, []
    real = policy.propose

    def propose(inputs: PolicyInput) -> Proposal:
        proposal = real(inputs)
        means.append(proposal.metrics.get("cpu", -1.0))
        return proposal

    policy.propose = propose  # type: ignore[method-assign]
    return means


async def settled() -> Service:
    """A service of two replicas at 10 % of a 50 % target (1 asked, 2 held at its min), past
    the round in which its new clone first counted (a fresh replica's round decides in full)."""
    web = service(WEB | {"autoscaler.min": "2"})
    for _ in range(3):
        await web.round(cpu=10.0)
    return web


async def test_a_quiet_service_is_not_decided_again_but_its_state_follows_its_readings() -> None:
    web = await settled()
    means = asked(web)
    for cpu in (12.0, 9.0, 11.0):
        assert await web.round(cpu=cpu) == "holding"
        state = web.controller.state
        assert state is not None and state.cpu == cpu
    assert means == []  # the hold stood: nothing proposed, nothing decided
    rows = web.controller.timeline.since()
    assert rows["cpu"][-3:] == [12.0, 9.0, 11.0] and rows["replicas"][-3:] == [2, 2, 2]
    assert web.controller.tally.evaluations == 6 and web.controller.tally.cpu == 11.0
    assert web.fake.calls == ["scale_to shop/web 2"]


async def test_a_reading_past_the_band_is_decided_in_the_same_round() -> None:
    web = await settled()
    means = asked(web)
    assert await web.round(cpu=80.0) == "holding"  # the scale-up ran within the round
    assert means == [80.0]
    assert web.fake.calls[-1] == "scale_to shop/web 4" and len(web.running()) == 4


async def test_a_replica_that_changed_or_was_not_measured_is_decided_in_full() -> None:
    web = await settled()
    means = asked(web)
    clone = next(r for r in web.fake.view(KEY) if r.is_clone)
    web.fake._set(clone.id, health="healthy")  # a new inspect: another object
    await web.round(cpu=10.0)
    assert means == [10.0]
    await web.round(cpu=10.0)  # the same objects again: quiet
    assert means == [10.0]
    # A replica without a reading this round: decided in full.
    web.time.pass_(5.0)
    replicas = web.fake.view(KEY)
    samples = {r.id: Sample(r.id, 10.0, None, None, "fake") for r in replicas[:1]}
    async with asyncio.TaskGroup() as tg:
        web.controller.step(tg, replicas, samples)
    assert len(means) == 2


async def test_a_throttled_replica_is_decided_in_full() -> None:
    web = await settled()
    means = asked(web)
    web.time.pass_(5.0)
    replicas = web.fake.view(KEY)
    samples = {r.id: replace(Sample(r.id, 10.0, None, None, "fake"), throttled=0.6)
               for r in replicas}  # fmt: skip
    async with asyncio.TaskGroup() as tg:
        web.controller.step(tg, replicas, samples)
    assert means == [10.0]


async def saturated_round(web: Service, readings: list[tuple[float, float]]) -> None:
    """A round in which the service's replicas read these (CPU, throttled share) pairs."""
    web.time.pass_(5.0)
    replicas = [r for r in web.fake.view(KEY) if r.running]
    samples = {r.id: replace(Sample(r.id, cpu, None, None, "fake"), throttled=throttled)
               for r, (cpu, throttled) in zip(replicas, readings, strict=True)}  # fmt: skip
    async with asyncio.TaskGroup() as tg:
        web.controller.step(tg, replicas, samples)


async def test_a_service_held_at_its_limit_and_its_max_is_not_decided_again() -> None:
    """Two replicas pegged at their CPU limit, at max 2: saturation asks for 5 (demand at least
    200 % of one replica's limit), the max holds 2. While both stay at their limit and ask for
    the same floor, the hold stands; one that is no longer at its limit is decided in full."""
    web = service(WEB | {"autoscaler.min": "2", "autoscaler.max": "2"})
    for _ in range(3):
        await web.round(cpu=10.0)
    await saturated_round(web, [(99.8, 0.97), (100.1, 0.95)])
    decision = web.controller.history[-1].decision
    assert (decision.proposal, decision.desired, decision.bound) == (5, 2, "max")
    means = asked(web)
    for pair in ([(99.5, 0.96), (100.3, 0.99)], [(97.0, 0.92), (99.9, 0.91)]):
        await saturated_round(web, pair)
    assert means == []
    state = web.controller.state
    assert state is not None and state.cpu == (97.0 + 99.9) / 2 and state.saturated
    await saturated_round(web, [(80.0, 0.6), (100.0, 0.97)])  # held back, not at its limit
    assert means == [90.0]


async def test_the_jitter_of_replicas_held_at_their_limit_is_not_told() -> None:
    """At their limit, replicas read 100 % give or take a window's cut across CFS periods: the
    state told last stands (until a heartbeat); once they are no longer held, it is told."""
    web = service(WEB | {"autoscaler.min": "2", "autoscaler.max": "2"})
    web.controller._ctx.heartbeat = 60.0
    for _ in range(3):
        await web.round(cpu=10.0)
    await saturated_round(web, [(99.8, 0.97), (100.1, 0.95)])
    told = len(web.told.states)
    assert web.told.states[-1]["saturated"] is True
    for pair in ([(88.0, 0.96), (91.0, 0.99)], [(112.0, 0.98), (109.0, 0.97)]):
        await saturated_round(web, pair)  # 10 points and more from the state told
    await saturated_round(web, [(75.0, 0.6), (100.0, 0.97)])  # held back in most periods still
    assert len(web.told.states) == told
    await saturated_round(web, [(60.0, 0.1), (62.0, 0.1)])  # the load fell: no longer held
    assert len(web.told.states) == told + 1
    assert web.told.states[-1]["saturated"] is False and web.told.states[-1]["cpu"] == 61.0


def test_a_quiet_round_reads_replicas_held_at_their_limit_only_where_every_one_is() -> None:
    """What replicas held back at their CPU limit used, summed as saturation's floor sums it,
    where every one is (a saturated service's band); a round where some are and some are not
    has no band at all."""
    web = service(WEB | {"autoscaler.min": "2"})
    first = web.fake.view(KEY)[0]
    a, b = replace(first, id="a"), replace(first, id="b")

    def read(*pairs: tuple[float, float | None]) -> quiet.Reading | None:
        samples = {r.id: replace(Sample(r.id, cpu, None, None, "fake"), throttled=throttled)
                   for r, (cpu, throttled) in zip((a, b), pairs, strict=True)}  # fmt: skip
        return quiet.read([a, b], samples)

    none = read((40.0, None), (60.0, 0.1))
    assert none is not None and none.held is None and none.cpu == 50.0
    both = read((99.0, 0.95), (97.0, 0.6))  # pegged, or throttled and within 5 % of the limit
    assert both is not None and both.held == 200.0 and both.cpu == 98.0
    short = read((99.0, 0.95), (80.0, 0.6))  # one held back, reading short of its limit
    assert short is not None and short.held == 180.0
    assert read((99.0, 0.95), (60.0, 0.1)) is None  # one at its limit, one not held back


async def test_a_pause_over_the_same_replicas_is_shown_at_once() -> None:
    web = await settled()
    means = asked(web)
    pause = Control("pause", since=web.time.wall)
    web.controller._ctx.control = lambda key: pause
    await web.round(cpu=10.0)
    assert means == [10.0]  # decided again, and the state says it is paused
    state = web.controller.state
    assert state is not None and state.paused and state.control is not None


async def test_a_quiet_round_tells_its_state_when_a_reading_moves_past_the_band() -> None:
    web = await settled()
    web.controller._ctx.heartbeat = 60.0
    means, told = asked(web), len(web.told.states)
    await web.round(cpu=12.0)  # 2 points from the state told last (10 %): kept, not told
    assert len(web.told.states) == told
    await web.round(cpu=20.0)  # 10 points: told, though the hold stands
    assert len(web.told.states) == told + 1 and web.told.states[-1]["cpu"] == 20.0
    assert web.told.states[-1]["phase"] == "holding" and means == []
    web.time.pass_(60.0)  # a heartbeat on: told again, unchanged
    await web.round(cpu=20.0)
    assert len(web.told.states) == told + 2 and means == []


def test_services_started_together_spread_their_heartbeats() -> None:
    """Each service's first heartbeat comes later by its own share of a heartbeat (the same on
    every run): at 500 services started at once, not 500 states in one round a minute."""
    shares = sorted(stagger(ServiceKey("shop", f"s{i}")) for i in range(500))
    assert 0.0 <= shares[0] and shares[-1] < 1.0
    tenths = [sum(1 for s in shares if k / 10 <= s < (k + 1) / 10) for k in range(10)]
    assert max(tenths) < 80, tenths  # about 50 a tenth
    assert stagger(ServiceKey("shop", "s1")) == stagger(ServiceKey("shop", "s1"))


async def test_a_steady_services_heartbeat_is_its_share_shorter() -> None:
    web = await settled()
    web.controller._ctx.heartbeat = 60.0
    beat = 60.0 * (1 - stagger(KEY) / 4)
    await web.round(cpu=30.0)  # moved: told, and its heartbeat counts from here
    told, rounds = len(web.told.states), 0
    while len(web.told.states) == told:
        await web.round(cpu=30.0, seconds=1.0)
        rounds += 1
    assert beat <= rounds < beat + 1
