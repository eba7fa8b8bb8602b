"""The regression gate reads each headline figure beside its baseline from the same run, and
fails a ratio more than 20 % worse than the stored table's."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from bench.gate import Headline, headlines, regressions, rows

STORED = """# bench/reaction.py, 2026-12-03 08:01, 2 cores, x86_64, Python 3.11.7

Reaction: 2 replicas of 0.1 CPU ...
policy                       interval s  10 running s  most  actions  scale-down in 60 s  counts seen after the step
--------------------------------------------------------------------------------------------------------------------
target-tracking                       2           6.4    11        4                  no  2 -> 4 -> 8 -> 11
hpa                                   2          20.2    10        5                  no  2 -> 4 -> 5 -> 6 -> 7 -> 8 -> 10
target-tracking                       1           3.3    11        4                  no  2 -> 3 -> 4 -> 7 -> 8 -> 10 -> 11
hpa                                   1          18.3    11        5                  no  2 -> 3 -> 4 -> 5 -> 6 -> 7 -> 9 -> 11

Queue step, the same service from 1 replica: ...
policy                       interval s   9 running s  most  actions  scale-down in 60 s  counts seen after the step
--------------------------------------------------------------------------------------------------------------------
target-tracking + queue               2           2.6     9        1                  no  1 -> 2 -> 4 -> 9
target-tracking                       2           8.2     9        4                  no  1 -> 2 -> 4 -> 5 -> 6 -> 8 -> 9
"""


def table(ours_2: str, hpa_2: str, ours_1: str = "3.3", hpa_1: str = "18.3") -> str:
    return STORED.replace("6.4", ours_2).replace("20.2", hpa_2).replace(
        "3.3 ", f"{ours_1} ").replace("18.3", hpa_1)  # fmt: skip


def test_each_headline_is_read_beside_its_baseline_from_the_same_table() -> None:
    found = headlines("reaction", STORED)
    assert found["reaction step, 2 s interval"] == Headline(
        "reaction step, 2 s interval", 6.4, 20.2
    )
    assert found["reaction step, 1 s interval"].ratio == 3.3 / 18.3
    # The queue step's baseline is our own policy on CPU alone: not a headline of the gate.
    assert set(found) == {"reaction step, 2 s interval", "reaction step, 1 s interval"}
    assert headlines("page", STORED) == {}  # a bench without headlines yet


def test_a_ratio_more_than_a_fifth_worse_fails_with_the_figure_the_stored_one_and_the_change() -> (
    None
):
    stored = headlines("reaction", STORED)
    assert regressions(stored, headlines("reaction", STORED)) == []
    # Slower by 15 %: within the tolerance.
    assert regressions(stored, headlines("reaction", table("7.4", "20.2"))) == []
    failed = regressions(stored, headlines("reaction", table("8.0", "20.2")))
    assert failed == ["reaction step, 2 s interval: 8.0 s against 20.2 s (0.40x), "
                      "stored 6.4 s against 20.2 s (0.32x): +25%"]  # fmt: skip


def test_a_slower_machine_that_slows_the_baseline_too_is_no_regression() -> None:
    stored = headlines("reaction", STORED)
    assert regressions(stored, headlines("reaction", table("8.0", "25.3"))) == []


def test_never_reaching_the_count_is_the_worst_figure_and_a_missing_headline_fails() -> None:
    stored = headlines("reaction", STORED)
    never = headlines("reaction", table("never", "20.2"))
    assert math.isinf(never["reaction step, 2 s interval"].figure)
    assert [f.split(":")[0] for f in regressions(stored, never)] == ["reaction step, 2 s interval"]
    cut = STORED.replace("target-tracking                       1", "x" * 37)
    assert regressions(stored, headlines("reaction", cut)) == [
        f"reaction step, 1 s interval: not measured (stored: {stored['reaction step, 1 s interval']})"
    ]


@given(st.text())
def test_any_text_reads_as_rows_or_nothing(text: str) -> None:
    for seconds in rows(text).values():
        assert seconds >= 0


def test_a_row_that_is_not_a_figure_is_not_read() -> None:
    assert rows(
        "policy  interval s\n"
        + "x" * 28
        + " 2 -5\n"
        + "y" * 28
        + " 2 nan\n"
        + "z" * 28
        + " 1 2.5\n"
    ) == {(0, "z" * 28, 1.0): 2.5}
