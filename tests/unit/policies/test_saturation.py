"""Saturation: a service whose replicas are held at their CPU limit needs at least one replica
more than what they used; and no floor at all while any replica is unready or unmeasured."""

from __future__ import annotations

import pytest

from policies.base import PolicyInput, ReplicaSample
from policies.saturation import Floor, floor, held_back, saturated


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
    samples = (held(92.0, 0.7), held(92.0, 0.7), held(0.0, None))
    assert floor(PolicyInput(3, 1, 20, samples, 0.0), 50.0) == Floor(
        4,
        "saturated: 2 of 3 replicas held at their CPU limit (throttled in 70% of periods), so "
        "demand is at least 184% of one replica's limit: at least 4",
    )


@pytest.mark.parametrize(
    ("pegged", "count"),
    [
        pytest.param(99.2, 5, id="reading-short-of-the-limit"),  # 2 x 100: floor(4) + 1
        pytest.param(104.0, 5, id="reading-past-the-limit"),  # 208: floor(4.16) + 1
        pytest.param(120.0, 5, id="past-it-by-a-period"),  # 240: floor(4.8) + 1
        pytest.param(126.0, 6, id="past-it-by-more"),  # 252: floor(5.04) + 1
    ],
)
def test_a_replica_throttled_in_nearly_every_period_used_at_least_its_limit(
    pegged: float, count: int
) -> None:
    samples = (held(pegged, 0.9), held(pegged, 0.95))
    found = floor(PolicyInput(2, 1, 20, samples, 0.0), 50.0)
    assert found is not None and found.count == count


def test_a_saturated_replica_reading_within_five_percent_of_its_limit_used_all_of_it() -> None:
    # A window that began a period before the load rose: throttled in 5 of its 6 periods.
    found = floor(PolicyInput(2, 1, 20, (held(97.0, 0.83), held(95.0, 0.83)), 0.0), 50.0)
    assert found is not None and found.count == 5  # 2 x 100: floor(4) + 1
    found = floor(PolicyInput(2, 1, 20, (held(97.0, 0.83), held(94.0, 0.83)), 0.0), 50.0)
    assert found is not None and found.count == 4  # floor(194 / 50) + 1


def test_a_replica_held_back_only_in_some_periods_keeps_its_reading() -> None:
    # A bursty load: throttled in its bursts, idle between them. It used 70 %, not its limit.
    samples = (held(70.0, 0.89), held(70.0, 0.6))
    found = floor(PolicyInput(2, 1, 20, samples, 0.0), 50.0)
    assert found is not None and found.count == 3  # floor(140 / 50) + 1


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


def test_new_replicas_have_no_say_in_whether_the_service_is_held_back_but_count_in_the_sum() -> (
    None
):
    # Right after 2 -> 5: the 2 old ones still at their limit, the 3 new ones still taking on
    # their share. Judged on all 5 (2 of 5 held), the service would not be saturated.
    old = (held(100.0, 0.95), held(90.0, 0.6))
    new = tuple(ReplicaSample(f"n{i}", 80.0, throttled=0.2, fresh=True) for i in range(3))
    found = floor(PolicyInput(5, 1, 20, old + new, 0.0), 50.0)
    assert found == Floor(
        9,  # floor((100 + 90 + 3 x 80) / 50) + 1
        "saturated: 2 of 2 settled replicas held at their CPU limit (throttled in 77% of "
        "periods; 3 new ones taking on their share), so demand is at least 430% of one "
        "replica's limit: at least 9",
    )
    # The same readings once the new ones have served a window of their own: 2 of 5.
    settled = tuple(ReplicaSample(f"n{i}", 80.0, throttled=0.2) for i in range(3))
    assert floor(PolicyInput(5, 1, 20, old + settled, 0.0), 50.0) is None
    # All of them new (nothing else to judge by): judged on all.
    every = tuple(ReplicaSample(f"n{i}", 100.0, throttled=0.95, fresh=True) for i in range(2))
    assert floor(PolicyInput(2, 1, 20, every, 0.0), 50.0) == Floor(
        5,
        "saturated: 2 of 2 replicas held at their CPU limit (throttled in 95% of periods), so "
        "demand is at least 200% of one replica's limit: at least 5",
    )


def test_held_to_the_limit_asks_every_held_replica_to_be_at_its_limit() -> None:
    # What the Compose backend's watch looks early for: a window that began before the load
    # rose (throttled in 5 of 6 periods, reading 87 %) is held back, not yet to the limit.
    rising = (held(87.0, 0.83), held(90.0, 0.83))
    assert held_back(rising) and not held_back(rising, to_the_limit=True)
    assert not held_back((held(87.0, 0.83), held(96.0, 0.83)), to_the_limit=True)
    assert held_back((held(97.0, 0.83), held(96.0, 0.83)), to_the_limit=True)
    assert held_back((held(80.0, 0.9), held(20.0, None)), to_the_limit=True)  # half, pegged
    assert not held_back((held(96.0, 0.4), held(96.0, 0.4)), to_the_limit=True)  # not throttled
    assert not held_back(())
