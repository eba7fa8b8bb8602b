"""Schedules: windows of the week that change min and max, whatever the load."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies.schedule import Window, bounds, parse_window

WORK = parse_window("work", "Mon-Fri 08:00-18:00 min=4")
NIGHT = parse_window("night", "00:00-06:00 max=2")
LATE = parse_window("late", "Fri 22:00-02:00 min=3")
MONDAY = datetime(2026, 11, 30)  # a Monday


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return MONDAY + timedelta(days=day, hours=hour, minutes=minute)


def test_a_window_is_in_force_on_its_days_from_its_start_until_just_before_its_end() -> None:
    assert not WORK.active(at(0, 7, 59))
    assert WORK.active(at(0, 8, 0))
    assert WORK.active(at(4, 17, 59))
    assert not WORK.active(at(4, 18, 0))
    assert not WORK.active(at(5, 12))  # Saturday


def test_a_window_without_days_is_every_day() -> None:
    assert all(NIGHT.active(at(day, 3)) for day in range(7))


def test_a_window_that_ends_before_it_starts_runs_past_midnight_into_the_next_day() -> None:
    assert LATE.active(at(4, 23))  # Friday night
    assert LATE.active(at(5, 1, 59))  # Saturday, small hours
    assert not LATE.active(at(5, 2))
    assert not LATE.active(at(3, 23))  # Thursday night
    assert not LATE.active(at(4, 1))  # Friday's small hours belong to Thursday night


def test_windows_change_min_and_max_within_the_services_own() -> None:
    work = bounds(1, 10, [WORK, NIGHT], at(0, 9))
    assert (work.minimum, work.maximum, work.windows) == (4, 10, (WORK,))
    assert work.reason == "schedule work (min 4): min 4, max 10"
    off = bounds(1, 10, [WORK, NIGHT], at(0, 20))
    assert (off.minimum, off.maximum, off.windows, off.reason) == (1, 10, (), None)
    night = bounds(1, 10, [WORK, NIGHT], at(0, 3))
    assert (night.minimum, night.maximum) == (1, 2)
    assert night.reason == "schedule night (max 2): min 1, max 2"


def test_overlaps_take_the_most_demanding_min_and_the_least_max_and_a_cap_wins() -> None:
    early = parse_window("early", "Mon 05:00-09:00 min=6")
    both = bounds(1, 10, [WORK, NIGHT, early], at(0, 5, 30))
    assert (both.minimum, both.maximum) == (2, 2)  # min 6 asked, capped at max 2
    assert [w.name for w in both.windows] == ["early", "night"]
    morning = bounds(1, 10, [WORK, early], at(0, 8, 30))
    assert (morning.minimum, morning.maximum) == (6, 10)
    assert bounds(1, 5, [early], at(0, 6)).minimum == 5  # within the service's own max


def test_day_lists_and_ranges_wrap_round_the_week() -> None:
    assert parse_window("w", "Fri-Mon 10:00-11:00 min=2").days == {4, 5, 6, 0}
    assert parse_window("w", "Mon-Wed,Fri 10:00-11:00 min=2").days == {0, 1, 2, 4}
    assert parse_window("w", "sat, sun 10:00-24:00 max=1").end == 24 * 60


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("Mon-Fri 08:00-18:00", "expected"),
        ("Mon-Fri 8-18 min=4", "expected"),
        ("Mon-Fry 08:00-18:00 min=4", "'fry' is not a day"),
        ("25:00-26:00 min=1", "not a time of day"),
        ("08:61-09:00 min=1", "not a time of day"),
        ("08:00-08:00 min=1", "never be in force"),
        ("08:00-09:00 min=5 max=2", "greater than max"),
        ("08:00-09:00 min=1 min=2", "given twice"),
        ("08:00-09:00 max=0", "at least 1"),
    ],
)
def test_a_window_that_is_not_one_says_what_is_wrong(text: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        parse_window("w", text)


@given(st.text(max_size=40))
def test_any_text_is_a_window_or_a_value_error(text: str) -> None:
    try:
        window = parse_window("w", text)
    except ValueError:
        return
    assert isinstance(window, Window) and window.days and window.start != window.end


@given(
    st.integers(0, 6), st.integers(0, 23), st.integers(0, 59), st.integers(1, 5),
    st.integers(5, 20),
)  # fmt: skip
def test_the_bounds_in_force_are_always_a_range_within_the_services_max(
    day: int, hour: int, minute: int, low: int, high: int
) -> None:
    early = parse_window("early", "Mon 05:00-09:00 min=12")
    found = bounds(low, high, [WORK, NIGHT, LATE, early], at(day, hour, minute))
    assert 0 <= found.minimum <= found.maximum <= high


def test_a_windows_min_comes_a_lead_early_so_the_replicas_serve_when_it_begins() -> None:
    assert bounds(1, 10, [WORK], at(0, 7, 58), lead=120).minimum == 4
    assert bounds(1, 10, [WORK], at(0, 7, 57), lead=120).minimum == 1
    assert bounds(1, 10, [WORK], at(0, 18, 0), lead=120).minimum == 1  # over at its own end
    # A cap is no earlier than its time: tonight's max 2 does not shrink the evening.
    assert bounds(1, 10, [NIGHT], at(0, 23, 59), lead=120).maximum == 10


def test_a_cron_window_is_in_force_for_its_length_after_each_start() -> None:
    first_monday = parse_window("batch", "cron(0 2 * * mon#1) 3h min=8")
    assert first_monday.active(datetime(2026, 12, 7, 4, 59))  # the first Monday of December
    assert not first_monday.active(datetime(2026, 12, 7, 5, 0))
    assert not first_monday.active(datetime(2026, 12, 14, 3, 0))  # the second Monday
    often = parse_window("often", "cron(*/2 * * * *) 5m max=3")
    assert often.active(datetime(2026, 12, 7, 10, 7))  # begun 10:06, though 10:02's is over
    assert bounds(1, 10, [often], datetime(2026, 12, 7, 10, 7)).maximum == 3


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("cron(61 * * * *) 1h min=2", "cron(61 * * * *)"),
        ("cron(0 2 * * *) 0m min=2", "longer than 0s"),
        ("cron(0 2 * * *) min=2", "expected"),
    ],
)
def test_a_cron_window_that_is_not_one_says_what_is_wrong(text: str, words: str) -> None:
    with pytest.raises(ValueError, match=re.escape(words)):
        parse_window("w", text)
