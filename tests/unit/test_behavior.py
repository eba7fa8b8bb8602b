"""Stabilization windows, rate limits and cooldowns, as tables over a sequence of proposals."""

from __future__ import annotations

import pytest

from policies.behavior import Behavior
from policies.options import BehaviorOptions


def run(
    steps: list[tuple[float, int]], start: int = 4, **labels: str
) -> list[tuple[int, str | None]]:
    """Feed (time, proposal) pairs; the count follows each decision. Returns (desired, bound)."""
    behavior = Behavior(BehaviorOptions.model_validate(labels))
    current, out = start, []
    for now, proposal in steps:
        n = behavior.normalize(current, proposal, 1, 20, now)
        out.append((n.desired, n.bound))
        current = n.desired
    return out


@pytest.mark.parametrize(
    ("steps", "labels", "expected"),
    [
        pytest.param([(0, 8)], {}, [(8, None)], id="up-at-once-by-default"),
        pytest.param([(0, 2)], {}, [(4, None)], id="down-waits-for-the-300s-window"),
        pytest.param([(0, 4), (100, 2), (299, 2), (301, 2)], {}, [(4, None), (4, None), (4, None), (2, None)], id="down-after-the-window"),
        pytest.param([(0, 2), (10, 3), (20, 2), (31, 2)], {"scale-down.stabilization": "30s"}, [(4, None), (4, None), (4, None), (3, None)], id="down-to-the-highest-proposal-in-the-window"),
        pytest.param([(0, 2)], {"scale-down.stabilization": "0"}, [(2, None)], id="no-window-no-wait"),
        pytest.param([(0, 8), (5, 8)], {"scale-up.stabilization": "10s"}, [(4, None), (4, None)], id="up-window-starts-with-the-current-count"),
        pytest.param([(0, 4), (5, 8), (10, 8)], {"scale-up.stabilization": "10s"}, [(4, None), (4, None), (8, None)], id="up-window-holds-until-the-low-proposal-expires"),
    ],
)  # fmt: skip
def test_stabilization(
    steps: list[tuple[float, int]], labels: dict[str, str], expected: list[tuple[int, str | None]]
) -> None:
    assert run(steps, **labels) == expected


@pytest.mark.parametrize(
    ("start", "steps", "labels", "expected"),
    [
        pytest.param(2, [(0, 20)], {}, [(6, "rate")], id="up-by-4-when-that-beats-100-percent"),
        pytest.param(10, [(0, 40)], {}, [(20, "max")], id="up-by-100-percent-when-that-beats-4"),
        pytest.param(10, [(0, 19)], {}, [(19, None)], id="within-the-rate"),
        pytest.param(2, [(0, 20), (5, 20), (15, 20)], {}, [(6, "rate"), (6, "rate"), (12, "rate")], id="the-period-counts-what-was-added"),
        pytest.param(10, [(0, 1)], {"scale-down.stabilization": "0", "scale-down.max-percent": "50"}, [(5, "rate")], id="down-by-percent"),
        pytest.param(10, [(0, 1)], {"scale-down.stabilization": "0", "scale-down.max-percent": "0", "scale-down.max-replicas": "2"}, [(8, "rate")], id="down-by-replicas"),
    ],
)  # fmt: skip
def test_rate_limits(
    start: int,
    steps: list[tuple[float, int]],
    labels: dict[str, str],
    expected: list[tuple[int, str | None]],
) -> None:
    assert run(steps, start=start, **labels) == expected


@pytest.mark.parametrize(
    ("steps", "labels", "expected"),
    [
        pytest.param([(0, 6), (10, 8), (31, 8)], {"scale-up.cooldown": "30s"}, [(6, None), (6, "cooldown"), (8, None)], id="up-cooldown"),
        pytest.param([(0, 6), (10, 2)], {"scale-down.cooldown": "60s", "scale-down.stabilization": "0"}, [(6, None), (6, "cooldown")], id="down-cooldown-after-an-up"),
        pytest.param([(0, 6), (10, 2)], {"scale-up.cooldown": "60s", "scale-down.stabilization": "0"}, [(6, None), (2, None)], id="cooldowns-are-per-direction"),
    ],
)  # fmt: skip
def test_cooldowns(
    steps: list[tuple[float, int]], labels: dict[str, str], expected: list[tuple[int, str | None]]
) -> None:
    assert run(steps, **labels) == expected


def test_no_data_holds_but_bounds_still_apply() -> None:
    behavior = Behavior(BehaviorOptions())
    assert behavior.normalize(4, None, 1, 10, 0).desired == 4
    assert behavior.normalize(12, None, 1, 10, 0).desired == 10
    assert behavior.normalize(12, 30, 1, 10, 0).bound == "max"
