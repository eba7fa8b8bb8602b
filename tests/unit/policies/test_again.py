"""A quiet round decides what a full one would: a proposal's Steady band (policies/base.py), the
behaviour's standing hold (behavior.py `again`) and the pipeline that puts them together
(pipeline.py `again`), replayed against the full decision round after round."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies import registry, saturation
from policies.base import PolicyInput, Proposal, ReplicaSample
from policies.pipeline import Pipeline, Round
from policies.target_tracking import TargetTracking, TargetTrackingOptions

readings = st.floats(min_value=0.0, max_value=400.0, allow_nan=False)
tolerances = st.sampled_from([0.0, 0.05, 0.1, 0.3])


def options(target: float, up: float, down: float) -> TargetTrackingOptions:
    return TargetTrackingOptions.model_validate(
        {"cpu.target": target, "scale-up.tolerance": up, "scale-down.tolerance": down}
    )


def inputs(values: list[float], *, minimum: int = 1, maximum: int = 50) -> PolicyInput:
    samples = tuple(ReplicaSample(f"r{i}", v) for i, v in enumerate(values))
    return PolicyInput(len(values), minimum, maximum, samples, now=1000.0)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(readings, min_size=1, max_size=8),
    st.lists(readings, min_size=8, max_size=8),
    st.floats(min_value=1.0, max_value=200.0),
    tolerances,
    tolerances,
)
def test_within_its_steady_band_target_tracking_proposes_the_same_count_again(
    before: list[float], after: list[float], target: float, up: float, down: float
) -> None:
    policy = TargetTracking(options(target, up, down))
    first = policy.propose(inputs(before))
    assert first.steady is not None  # every replica ready and measured, none throttled
    again = policy.propose(inputs(after[: len(before)]))
    mean = math.fsum(after[: len(before)]) / len(before)
    if first.steady.holds(mean):
        assert again.count == first.count


def held(samples: tuple[ReplicaSample, ...]) -> float | bool | None:
    """What a quiet round reads of replicas held back at their CPU limit (control/quiet.py):
    what they used, summed as the floor sums it, where every one is; None where none is; False
    where some are and some are not (no band: the round decides in full)."""
    held = [s for s in samples if saturation.saturated(s)]
    if 0 < len(held) < len(samples):
        return False
    return math.fsum(saturation.used(s) for s in held) if held else None


held_back = st.one_of(  # (CPU, throttled share) of a replica held back at its CPU limit:
    # pegged there, or throttled in most periods and within 5 % of the limit (at its limit),
    # or throttled in most periods and reading well short of it (a burst in some)
    st.tuples(st.floats(min_value=60.0, max_value=101.0), st.floats(min_value=0.9, max_value=1.0)),
    st.tuples(st.floats(min_value=95.0, max_value=101.0), st.floats(min_value=0.5, max_value=1.0)),
    st.tuples(st.floats(min_value=20.0, max_value=95.0), st.floats(min_value=0.5, max_value=0.9)),
)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(held_back, min_size=1, max_size=8),
    st.lists(held_back, min_size=8, max_size=8),
    st.sampled_from([10.0, 25.0, 40.0, 50.0, 70.0, 90.0]),
    tolerances,
)
def test_within_its_saturated_band_target_tracking_proposes_the_same_floor_again(
    before: list[tuple[float, float]], after: list[tuple[float, float]], target: float, up: float
) -> None:
    """Replicas each held back at its CPU limit: the floor (saturation.py) over what they used,
    unless the calculation asks for more. Where their sum stays in the band, the same count."""
    policy = TargetTracking(options(target, up, 0.1))

    def propose(pairs: list[tuple[float, float]]) -> tuple[Proposal, tuple[ReplicaSample, ...]]:
        samples = tuple(ReplicaSample(f"r{i}", c, throttled=t) for i, (c, t) in enumerate(pairs))
        return policy.propose(PolicyInput(len(pairs), 1, 50, samples, now=1000.0)), samples

    first, _ = propose(before)
    assert first.saturated
    if first.steady is None:
        return  # the calculation asked for more than the floor
    again, samples = propose(after[: len(before)])
    used = held(samples)
    assert used is not False and used is not None
    mean = math.fsum(s.cpu or 0.0 for s in samples) / len(samples)
    if first.steady.holds(mean, used):
        assert again.count == first.count
    assert not first.steady.holds(mean)  # no band over replicas none of which is held


def test_two_replicas_pegged_at_their_limit_stand_at_their_floor_of_five() -> None:
    """Exactly 200 % used (two at 100 %) asks for 5 at a 50 % target, at the very edge the
    floor's epsilon keeps on the side of 5: the band holds it."""
    samples = (ReplicaSample("a", 100.0, throttled=0.95), ReplicaSample("b", 100.0, throttled=1.0))
    proposal = TargetTracking(options(50.0, 0.1, 0.1)).propose(
        PolicyInput(2, 1, 9, samples, now=1000.0)
    )
    assert proposal.count == 5 and proposal.steady is not None
    assert proposal.steady.holds(100.0, 200.0) and proposal.steady.holds(99.0, 249.9)
    assert not proposal.steady.holds(100.0, 250.0) and not proposal.steady.holds(100.0, 199.9)


@pytest.mark.parametrize(
    ("mean", "count", "low", "high"),
    [
        (0.5, 1, 0.0, 25.0),  # idle: ceil(2 * 0.01) = 1 for any mean above 0, up to 25
        (0.0, 0, -25.0, 0.0),  # nothing at all: 0, and any reading above it asks for 1
        (50.0, 2, 45.0, 55.0),  # within the tolerance band: hold at 2
        (60.0, 3, 55.0, 75.0),  # above it: ceil(2 * 1.2) = 3 up to 75, cut where it begins
        (40.0, 2, 25.0, 45.0),  # below it: ceil(2 * 0.8) = 2, cut where it begins
    ],
)
def test_the_band_is_the_whole_slice_of_readings_that_give_its_count(
    mean: float, count: int, low: float, high: float
) -> None:
    """Two replicas, a target of 50 % with the HPA's 10 % tolerance either way."""
    proposal = TargetTracking(options(50.0, 0.1, 0.1)).propose(inputs([mean, mean]))
    assert proposal.count == count and proposal.steady is not None
    assert proposal.steady.low == pytest.approx(low, abs=1e-6)
    assert proposal.steady.high == pytest.approx(high, abs=1e-6)
    assert proposal.steady.holds(mean)


def test_a_throttled_unready_or_fresh_replica_or_a_memory_target_gives_no_band() -> None:
    policy = TargetTracking(options(50.0, 0.1, 0.1))
    assert policy.propose(inputs([10.0, 20.0])).steady is not None
    throttled = (ReplicaSample("a", 10.0, throttled=0.6), ReplicaSample("b", 20.0))
    unready = (ReplicaSample("a", 10.0), ReplicaSample("b", None, ready=False, note="starting"))
    fresh = (ReplicaSample("a", 10.0), ReplicaSample("b", 20.0, fresh=True))
    for samples in (throttled, unready, fresh):
        assert policy.propose(PolicyInput(2, 1, 9, samples, now=1000.0)).steady is None
    both = TargetTracking(
        TargetTrackingOptions.model_validate({"cpu.target": 50, "memory.target": 60})
    )
    assert both.propose(inputs([10.0, 20.0])).steady is None


BEHAVIOURS = [
    {},
    {"scale-down.stabilization": "0s"},
    {"scale-down.stabilization": "30s", "scale-up.stabilization": "10s"},
    {"scale-down.stabilization": "20s", "scale-down.cooldown": "15s", "scale-up.cooldown": "5s"},
    {"scale-down.stabilization": "0s", "scale-down.max-replicas": "1", "scale-up.max-replicas": "1",
     "scale-up.max-percent": "0", "scale-down.max-percent": "0"},
]  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(
    st.integers(min_value=0, max_value=2**32 - 1),
    st.sampled_from(BEHAVIOURS),
    st.integers(min_value=1, max_value=3),
    st.integers(min_value=3, max_value=8),
)
def test_a_quiet_round_decides_what_a_full_round_decides(
    seed: int, behaviour: dict[str, str], minimum: int, maximum: int
) -> None:
    """Two pipelines see the same rounds: one decides each in full, the other asks `again`
    first and decides in full only where it gets None. Their decisions are the same, round
    after round, through level stretches, drifts, jumps and the scale actions they cause."""
    rng = random.Random(seed)
    labels = {"cpu.target": "50", **behaviour}
    full, quick = (Pipeline(*registry.build("target-tracking", labels)) for _ in range(2))
    count, now, level = minimum, 1000.0, rng.uniform(0, 120)
    quiet = 0
    for _ in range(120):
        now += rng.choice([1.0, 2.0, 5.0, 15.0])
        if rng.random() < 0.1:
            level = rng.uniform(0, 150)  # a jump
        level = max(0.0, level + rng.gauss(0, 2))
        samples = tuple(limited(f"r{i}", level + rng.gauss(0, 3), rng) for i in range(count))
        own = 1
        whole = Round(minimum, maximum, samples, now, now, own=own)
        expected = full.decide(whole).decision
        mean = math.fsum(s.cpu or 0.0 for s in samples) / len(samples)
        used = held(samples)
        standing = None
        if used is not False:
            standing = quick.again(Round(minimum, maximum, (), now, now, own=own), mean, used)
        if standing is None:
            got = quick.decide(whole).decision
        else:
            quiet += 1
            got = standing.decision
        facts = ("current", "desired", "proposal", "stabilized", "bound", "steps", "saturated")
        assert [getattr(got, f) for f in facts] == [getattr(expected, f) for f in facts], now
        if expected.desired != count:
            full.record(now, count, expected.desired, saturated=expected.saturated)
            quick.record(now, count, expected.desired, saturated=expected.saturated)
            count = expected.desired


def limited(name: str, demand: float, rng: random.Random) -> ReplicaSample:
    """A replica under a CPU limit asked for `demand` percent of it: below, it reads its demand
    and is rarely throttled; above, it reads about its limit, throttled in most periods, or
    held back in some and reading short of its limit."""
    if demand < 100.0:
        return ReplicaSample(name, max(0.0, demand), throttled=rng.choice([None, 0.0, 0.1]))
    if rng.random() < 0.8:
        return ReplicaSample(name, 100.0 + rng.gauss(0, 0.5), throttled=rng.uniform(0.9, 1.0))
    return ReplicaSample(name, rng.uniform(80.0, 100.0), throttled=rng.uniform(0.5, 0.9))


def test_a_quiet_stretch_is_taken_without_deciding() -> None:
    """The test above holds with `again` never standing: this one pins that it stands."""
    pipeline = Pipeline(*registry.build("target-tracking", {"cpu.target": "50"}))
    samples = (ReplicaSample("a", 10.0), ReplicaSample("b", 12.0))
    pipeline.decide(Round(2, 6, samples, 1000.0, 1000.0))
    stands = [pipeline.again(Round(2, 6, (), 1000.0 + t, 1000.0 + t), 11.0) for t in (2, 4, 6)]
    assert all(s is not None for s in stands)
    # Past its band (2 replicas at 60 % of a 50 % target ask for 3), it decides again.
    assert pipeline.again(Round(2, 6, (), 1008.0, 1008.0), 60.0) is None
    # Other bounds, another count of the user's: it decides again.
    assert pipeline.again(Round(2, 5, (), 1010.0, 1010.0), 11.0) is None
    assert pipeline.again(Round(2, 6, (), 1012.0, 1012.0, own=1), 11.0) is None


def test_an_earlier_proposal_leaving_the_scale_down_window_ends_the_standing_hold() -> None:
    """Started at 4, the window holds 4 for five minutes: the hold at 4 stands until then,
    and the round after is decided in full (down to what the readings ask)."""
    pipeline = Pipeline(*registry.build("target-tracking", {"cpu.target": "50"}))
    samples = tuple(ReplicaSample(f"r{i}", 20.0) for i in range(4))
    first = pipeline.decide(Round(1, 6, samples, 1000.0, 1000.0)).decision
    assert (first.proposal, first.desired) == (2, 4)  # the window seeded with 4
    assert pipeline.again(Round(1, 6, (), 1299.0, 1299.0), 20.0) is not None
    assert pipeline.again(Round(1, 6, (), 1300.0, 1300.0), 20.0) is None
    assert pipeline.decide(Round(1, 6, samples, 1300.0, 1300.0)).decision.desired == 2


def test_no_hold_stands_after_an_action() -> None:
    """A sleep or a wake is recorded between holds (the zero stage acts, not `decide`): what
    stood for the count before it stands no more."""
    pipeline = Pipeline(*registry.build("target-tracking", {"cpu.target": "50"}))
    pipeline.decide(Round(2, 6, (ReplicaSample("a", 10.0), ReplicaSample("b", 12.0)), 1000.0, 0))
    assert pipeline.again(Round(2, 6, (), 1002.0, 0), 11.0) is not None
    pipeline.record(1003.0, 2, 0)
    assert pipeline.again(Round(2, 6, (), 1004.0, 0), 11.0) is None
