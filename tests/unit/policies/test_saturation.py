"""Saturation: a service whose replicas are held at their CPU limit needs at least one replica
more than what they used; and no floor at all while any replica is unready or unmeasured."""

from __future__ import annotations

import pytest

from policies.base import PolicyInput, ReplicaSample
from policies.saturation import Floor, floor, saturated


def held(cpu: float, throttled: float | None = 0.9, **more: object) -> ReplicaSample:
    return ReplicaSample(f"c{cpu}-{throttled}", cpu, throttled=throttled, **more)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("throttled", "is_saturated"),
    [(None, False), (0.49, False), (0.5, True), (1.0, True)],
)
def test_a_replica_throttled_in_half_its_periods_is_held_back(
    throttled: float | None, is_saturated: bool
) -> None:
    assert saturated(ReplicaSample("a", 100.0, throttled=throttled)) is is_saturated


def test_the_floor_is_one_more_than_what_the_replicas_used() -> None:
    samples = (held(99.5), held(99.5, 0.7), held(0.0, None))
    assert floor(PolicyInput(3, 1, 20, samples, 0.0), 50.0) == Floor(
        4,
        "saturated: 2 of 3 replicas held at their CPU limit (throttled in 80% of periods), so "
        "demand is at least 199% of one replica's limit: at least 4",
    )


@pytest.mark.parametrize(
    "samples",
    [
        pytest.param((held(100.0), held(20.0, None), held(20.0, None)), id="one-of-three-held"),
        pytest.param((held(100.0), held(100.0, ready=False)), id="one-unready-with-a-reading"),
        pytest.param((held(100.0), ReplicaSample("new", None)), id="one-not-measured-yet"),
        pytest.param((held(20.0, None),), id="none-held"),
    ],
)
def test_no_floor_unless_half_the_replicas_are_held_and_every_one_is_measured(
    samples: tuple[ReplicaSample, ...],
) -> None:
    assert floor(PolicyInput(len(samples), 1, 20, samples, 0.0), 50.0) is None


def test_half_of_the_replicas_held_is_saturated() -> None:
    samples = (held(100.0), held(100.0), held(10.0, None), held(10.0, None))
    found = floor(PolicyInput(4, 1, 20, samples, 0.0), 50.0)
    assert found is not None and found.count == 5  # floor(220 / 50) + 1
