"""Target tracking as a table: samples and the current count in, the desired count out."""

from __future__ import annotations

import pytest

from policies import registry
from policies.base import PolicyInput, ReplicaSample


def samples(*cpu: float | None, not_ready: int = 0) -> tuple[ReplicaSample, ...]:
    ready = tuple(ReplicaSample(f"c{i}", value) for i, value in enumerate(cpu))
    starting = tuple(
        ReplicaSample(f"s{i}", 0.0, ready=False, note="health starting") for i in range(not_ready)
    )
    return ready + starting


def decide(
    current: int,
    cpu: tuple[ReplicaSample, ...],
    *,
    minimum: int = 1,
    maximum: int = 10,
    **labels: str,
) -> int:
    labels = {"cpu.target": "50", "scale-down.stabilization": "0", **labels}
    policy = registry.create("target-tracking", labels)
    decision = policy.evaluate(PolicyInput(current, minimum, maximum, cpu, now=0.0))
    return decision.desired


@pytest.mark.parametrize(
    ("current", "cpu", "desired"),
    [
        pytest.param(1, samples(100.0), 2, id="double-the-target-doubles"),
        pytest.param(2, samples(75.0, 75.0), 3, id="ceil-of-current-times-ratio"),
        pytest.param(4, samples(20.0, 20.0, 20.0, 20.0), 2, id="scales-down-proportionally"),
        pytest.param(3, samples(54.0, 54.0, 54.0), 3, id="within-tolerance-holds"),
        pytest.param(3, samples(46.0, 46.0, 46.0), 3, id="within-tolerance-below-holds"),
        pytest.param(3, samples(56.0, 56.0, 56.0), 4, id="just-outside-tolerance-scales"),
        pytest.param(2, samples(50.0, 50.0), 2, id="on-target-holds"),
        pytest.param(3, samples(0.0, 0.0, 0.0), 1, id="idle-goes-to-min"),
        pytest.param(2, samples(500.0, 500.0), 6, id="bound-by-rate"),
        pytest.param(6, samples(*[500.0] * 6), 10, id="bound-by-max"),
        pytest.param(2, (), 2, id="no-samples-holds"),
        pytest.param(2, samples(None, None), 2, id="first-readings-hold"),
    ],
)
def test_target_tracking(current: int, cpu: tuple[ReplicaSample, ...], desired: int) -> None:
    assert decide(current, cpu) == desired


@pytest.mark.parametrize(
    ("current", "cpu", "desired"),
    [
        # One replica busy at 150 %, one starting: counting the starter as idle gives 75 %,
        # so 3 rather than the 6 that trusting only the busy one would give.
        pytest.param(2, samples(150.0, not_ready=1), 3, id="unready-count-as-idle-when-scaling-up"),
        # One idle replica and one missing: the missing one is assumed at target, so 25 % mean.
        pytest.param(2, samples(0.0, None), 1, id="missing-assumed-at-target-when-scaling-down"),
        # Busy 70 % but the starter, as idle, brings it to 35 %: the direction flips, so hold.
        pytest.param(2, samples(70.0, not_ready=1), 2, id="direction-flip-holds"),
    ],
)
def test_replicas_without_samples_follow_hpa(
    current: int, cpu: tuple[ReplicaSample, ...], desired: int
) -> None:
    assert decide(current, cpu) == desired


def test_the_tolerance_is_a_label() -> None:
    assert decide(3, samples(54.0, 54.0, 54.0), **{"scale-up.tolerance": "0.05"}) == 4


def test_min_and_max_bound_the_proposal_and_say_so() -> None:
    policy = registry.create("target-tracking", {"cpu.target": "50"})
    up = policy.evaluate(PolicyInput(2, 1, 3, samples(200.0, 200.0), now=0.0))
    assert (up.proposal, up.desired, up.bound) == (8, 3, "max")
    assert "bound to max 3" in up.reason
    policy = registry.create(
        "target-tracking", {"cpu.target": "50", "scale-down.stabilization": "0"}
    )
    down = policy.evaluate(PolicyInput(4, 3, 10, samples(1.0, 1.0, 1.0, 1.0), now=0.0))
    assert (down.desired, down.bound) == (3, "min")


def test_memory_target_takes_the_larger_proposal() -> None:
    policy = registry.create("target-tracking", {"cpu.target": "50", "memory.target": "40"})
    sample = (ReplicaSample("a", 50.0, memory=80.0), ReplicaSample("b", 50.0, memory=80.0))
    decision = policy.evaluate(PolicyInput(2, 1, 10, sample, now=0.0))
    assert decision.desired == 4
    assert decision.reason.startswith("memory 80.0%")


def test_a_decision_lists_the_samples_it_ignored_and_why() -> None:
    policy = registry.create("target-tracking", {"cpu.target": "50"})
    decision = policy.evaluate(PolicyInput(2, 1, 10, samples(50.0, not_ready=1), now=0.0))
    assert decision.ignored == {"s0": "health starting"}
