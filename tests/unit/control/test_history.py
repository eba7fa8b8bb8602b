"""A service's history ring: a row a round for the last hour, in bounded memory."""

from __future__ import annotations

from dataclasses import replace

import pytest

from autoscaler.control.history import History
from autoscaler.control.state import Phase, ServiceState

STATE = ServiceState(
    project="p", service="web", phase=Phase.HOLDING, replicas=2, containers=("a", "b"),
    reason="holding", time=1000.0, instance=None, dry_run=False, desired=2, minimum=1,
    maximum=5, cpu=41.25, memory=None, received=1500.0, sent=None,
)  # fmt: skip


def rounds(history: History, count: int, every: float = 5.0, start: float = 1000.0) -> None:
    for i in range(count):
        history.add(replace(STATE, time=start + i * every, replicas=1 + i % 3))


def test_a_row_holds_each_value_of_the_state_and_none_for_what_is_not_known() -> None:
    history = History(interval=5.0)
    history.add(STATE)
    rows = history.since()
    assert rows == {
        "time": [1000.0], "replicas": [2], "desired": [2], "min": [1], "max": [5],
        "cpu": [41.25], "memory": [None], "metric": [None], "received": [1500.0], "sent": [None],
    }  # fmt: skip


def test_an_hour_is_kept_and_the_oldest_rows_go_first() -> None:
    history = History(interval=5.0)
    assert history.capacity == 721
    rounds(history, 2000)
    times = history.since()["time"]
    assert len(times) == 721 == len(history)
    assert times == sorted(times)
    assert times[-1] == 1000.0 + 1999 * 5 and times[-1] - times[0] == 3600.0


def test_rows_older_than_the_span_are_left_out_even_when_the_ring_has_room() -> None:
    history = History(interval=5.0)
    rounds(history, 3, every=5.0)
    history.add(replace(STATE, time=1010.0 + 4000.0))  # the loop stood still for over an hour
    assert history.since()["time"] == [5010.0]


def test_since_gives_only_the_rows_after_it() -> None:
    history = History(interval=5.0)
    rounds(history, 10)
    assert history.since(1030.0)["time"] == [1035.0, 1040.0, 1045.0]
    assert history.since(1045.0)["time"] == []


def test_the_rows_after_the_newest_time_served_are_none_even_below_a_millisecond() -> None:
    history = History(interval=5.0)
    history.add(replace(STATE, time=1000.0004))
    newest = history.since()["time"][-1]
    assert newest == 1000.0 and history.since(newest)["time"] == []


def test_a_second_state_within_half_an_interval_replaces_the_round_s_row() -> None:
    # An action's start (scaling) and its end (holding, a count later) in the same round.
    history = History(interval=5.0)
    history.add(STATE)
    history.add(replace(STATE, time=1001.0, replicas=3))
    history.add(replace(STATE, time=1005.0, replicas=3))
    rows = history.since()
    assert rows["time"] == [1001.0, 1005.0] and rows["replicas"] == [3, 3]


@pytest.mark.parametrize(
    ("interval", "rows", "kilobytes"),
    [pytest.param(5.0, 721, 32, id="default-interval"), pytest.param(1.0, 3601, 158, id="1s")],
)
def test_memory_is_bounded_by_the_span_and_the_interval(
    interval: float, rows: int, kilobytes: int
) -> None:
    history = History(interval=interval)
    rounds(history, 2 * rows, every=interval)
    assert history.capacity == rows
    assert history.bytes == 44 * rows  # whatever was added
    assert round(history.bytes / 1000) == kilobytes


def test_a_very_short_interval_is_capped() -> None:
    assert History(interval=0.1).capacity == 3601
