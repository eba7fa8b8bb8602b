"""The HPA's replica calculation, rule by rule: which samples count (ready, unready, missing),
and the count one metric asks for, with missing and unready replicas assumed at the side that
cannot cause an overshoot or a scale-down. Each row pins one rule at its edge."""

from __future__ import annotations

import pytest

from policies.base import PolicyInput, ReplicaSample
from policies.replicas import Groups, group, replica_count


def inputs(current: int, *samples: ReplicaSample, now: float = 100.0) -> PolicyInput:
    return PolicyInput(current, 1, 20, samples, now)


def test_ready_unready_and_missing_replicas_are_told_apart_and_each_says_why() -> None:
    found = group(
        inputs(
            7,
            ReplicaSample("ready", 40.0),
            ReplicaSample("starting", 90.0, ready=False, note="health starting"),
            ReplicaSample("silent", 90.0, ready=False),
            ReplicaSample("warming", 90.0, started_at=97.0),
            ReplicaSample("new", None),
            ReplicaSample("newer", None),
        ),
        warmup=10.0,
    )
    assert found == Groups(
        ready=(ReplicaSample("ready", 40.0),),
        unready=3,
        missing=3,  # "new", "newer", and the seventh replica that sent no sample at all
        ignored={
            "starting": "health starting",
            "silent": "not ready",
            "warming": "warming up (3s)",
            "new": "no sample yet",
            "newer": "no sample yet",
        },
    )


@pytest.mark.parametrize(
    ("started_at", "warming"),
    [
        pytest.param(95.0, True, id="inside-its-warm-up"),
        pytest.param(90.0, False, id="its-warm-up-just-over"),
        pytest.param(0.5, False, id="started-long-ago-on-our-clock"),
        pytest.param(0.0, False, id="start-not-known"),
    ],
)
def test_a_replica_is_warming_up_for_exactly_its_warm_up(started_at: float, warming: bool) -> None:
    found = group(inputs(1, ReplicaSample("a", 40.0, started_at=started_at)), warmup=10.0)
    assert (found.unready == 1) is warming
    early = group(inputs(1, ReplicaSample("a", 40.0, started_at=started_at), now=5.0), warmup=10.0)
    assert early.unready == (1 if started_at > 0 else 0)  # an unknown start is never a warm-up


def groups(values: int = 0, unready: int = 0, missing: int = 0) -> Groups:
    ready = tuple(ReplicaSample(f"r{i}", 0.0) for i in range(values))
    return Groups(ready, unready, missing, {})


@pytest.mark.parametrize(
    ("values", "current", "unready", "missing", "desired"),
    [
        # All present: ceil(ready * utilisation / target), unless within the tolerance.
        pytest.param([80.0, 80.0], 2, 0, 0, 4, id="up"),
        pytest.param([20.0, 20.0, 20.0], 3, 0, 0, 2, id="down"),
        pytest.param([55.0, 55.0], 2, 0, 0, 2, id="within-up-edge-holds"),
        pytest.param([45.0, 45.0], 2, 0, 0, 2, id="within-down-edge-holds"),
        pytest.param([56.0, 56.0], 2, 0, 0, 3, id="just-past-the-up-edge"),
        pytest.param([44.0, 44.0, 44.0, 44.0, 44.0], 5, 0, 0, 5, id="just-past-the-down-edge-rounds-up"),
        pytest.param([60.0, 60.0, 60.0, 60.0, 60.0], 5, 0, 0, 6, id="ceil-of-six"),
        pytest.param([150.0], 1, 0, 0, 3, id="exactly-three-is-not-four"),
        # Unready replicas: the count never falls while one is (it carries its share already).
        pytest.param([20.0, 20.0], 3, 1, 0, 3, id="unready-holds-a-scale-down"),
        # Scaling up, an unready replica counts as idle: it cannot cause an overshoot.
        pytest.param([100.0, 100.0], 3, 1, 0, 4, id="unready-counts-idle-going-up"),
        pytest.param([60.0, 60.0], 4, 2, 0, 4, id="unready-idle-flips-the-direction-holds"),
        # Missing replicas: at the target going down, idle going up.
        pytest.param([10.0, 10.0], 3, 0, 1, 2, id="missing-at-target-going-down"),
        pytest.param([100.0, 100.0], 3, 0, 1, 4, id="missing-idle-going-up"),
        pytest.param([60.0, 60.0], 4, 0, 2, 4, id="missing-idle-flips-the-direction-holds"),
        pytest.param([30.0], 2, 0, 1, 2, id="missing-at-target-lands-within-holds"),
        pytest.param([70.0, 70.0], 3, 0, 1, 3, id="missing-idle-lands-within-holds"),
        pytest.param([40.0, 40.0, 40.0], 3, 0, 3, 3, id="a-scale-down-that-would-grow-holds"),
        pytest.param([100.0, 100.0], 4, 1, 1, 4, id="missing-and-unready-going-up"),
        pytest.param([10.0, 10.0], 4, 0, 2, 3, id="each-missing-at-the-target"),
        pytest.param([81.0, 81.0], 3, 1, 0, 3, id="unready-idle-lands-within-holds"),
        pytest.param([82.5, 82.5], 3, 1, 0, 3, id="adjusted-at-the-up-edge-holds"),
        pytest.param([40.0] * 5, 10, 0, 5, 10, id="adjusted-at-the-down-edge-holds"),
        pytest.param([50.0, 50.0], 4, 0, 2, 4, id="at-the-target-missing-ones-are-no-idle-ones"),
        pytest.param([50.0, 50.0], 5, 1, 2, 5, id="at-the-target-with-unready-and-missing"),
        # A scale-up never proposes fewer than there are, a scale-down never more.
        pytest.param([100.0, 100.0], 6, 0, 1, 6, id="up-never-below-current"),
        pytest.param([10.0, 10.0], 1, 0, 1, 1, id="down-never-above-current"),
    ],
)  # fmt: skip
def test_the_hpa_count_of_one_metric(
    values: list[float], current: int, unready: int, missing: int, desired: int
) -> None:
    got = replica_count(
        values, 50.0, current, groups(len(values), unready, missing),
        up_tolerance=0.1, down_tolerance=0.1,
    )  # fmt: skip
    assert got == desired


@pytest.mark.parametrize(
    ("values", "desired"),
    [
        pytest.param([46.0, 46.0], 3, id="unready-left-out-going-down-lands-within"),
        pytest.param([50.0, 50.0], 3, id="unready-left-out-at-the-target"),
        pytest.param([20.0, 20.0], 1, id="the-ready-ones-alone"),
    ],
)
def test_the_hpas_own_rule_leaves_unready_replicas_out_going_down(
    values: list[float], desired: int
) -> None:
    got = replica_count(values, 50.0, 3, groups(2, unready=1), up_tolerance=0.1,
                        down_tolerance=0.1, hold_while_unready=False)  # fmt: skip
    assert got == desired


def test_without_the_unready_rule_the_hpa_shrinks_on_the_ready_replicas_alone() -> None:
    held = replica_count([20.0, 20.0], 50.0, 3, groups(2, unready=1), up_tolerance=0.1,
                         down_tolerance=0.1)  # fmt: skip
    shrunk = replica_count([20.0, 20.0], 50.0, 3, groups(2, unready=1), up_tolerance=0.1,
                           down_tolerance=0.1, hold_while_unready=False)  # fmt: skip
    assert (held, shrunk) == (3, 1)
