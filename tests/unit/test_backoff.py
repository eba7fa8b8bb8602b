"""Reconnect delays: doubling to a cap, jittered in the upper half, back to the start on reset."""

from __future__ import annotations

from autoscaler.backoff import Reconnect


def test_waits_double_up_to_the_cap_each_drawn_from_its_upper_half() -> None:
    retry = Reconnect(0.25, 2.0)
    bounds = [0.25, 0.5, 1.0, 2.0, 2.0]
    for bound in bounds:
        wait = retry.next()
        assert bound / 2 <= wait <= bound


def test_a_reset_starts_again_from_the_first_wait() -> None:
    retry = Reconnect(0.5, 30.0)
    for _ in range(4):
        retry.next()
    retry.reset()
    assert retry.delay == 0.5
    assert 0.25 <= retry.next() <= 0.5
