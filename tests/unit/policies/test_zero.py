"""Scale to zero: a service sleeps once its metric has been below activation for the whole of
`to-zero-after`, and wakes when its metric reaches activation; a missing value does neither."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from policies.zero import Quiet, ZeroRule


def test_without_an_activation_any_demand_is_wanted_and_none_is_quiet() -> None:
    rule = ZeroRule(after=60)
    assert rule.active(0.5)
    assert not rule.active(0)
    assert not rule.active(None)
    assert rule.describe(0) == "0 at 0"
    assert rule.describe(3) == "3 above 0"
    assert rule.describe(None) == "no value"


def test_with_an_activation_the_service_is_wanted_from_that_value() -> None:
    rule = ZeroRule(after=60, activation=5)
    assert not rule.active(4.9)
    assert rule.active(5)
    assert rule.describe(2) == "2 below activation 5"
    assert rule.describe(5) == "5 reaches activation 5"


def test_the_sleep_is_due_once_the_quiet_lasted_to_zero_after() -> None:
    quiet = Quiet(ZeroRule(after=60))
    quiet.observe(0, now=100)
    quiet.observe(0, now=159)
    assert not quiet.due(159)
    assert quiet.lasted(159) == 59
    quiet.observe(0, now=160)
    assert quiet.due(160)


def test_demand_during_the_quiet_starts_it_afresh() -> None:
    quiet = Quiet(ZeroRule(after=60))
    quiet.observe(0, now=100)
    quiet.observe(1, now=150)
    quiet.observe(0, now=151)
    assert not quiet.due(200)
    assert quiet.due(211)


def test_a_missing_value_is_no_quiet() -> None:
    quiet = Quiet(ZeroRule(after=60))
    quiet.observe(0, now=100)
    quiet.observe(None, now=130)
    assert not quiet.due(170)
    assert quiet.lasted(170) == 0


@given(
    values=st.lists(st.one_of(st.none(), st.floats(0, 10)), min_size=1, max_size=30),
    after=st.floats(0, 100),
    activation=st.one_of(st.none(), st.floats(0.1, 10)),
)
def test_a_sleep_is_due_only_after_that_long_of_values_all_below_activation(
    values: list[float | None], after: float, activation: float | None
) -> None:
    rule = ZeroRule(after=after, activation=activation)
    quiet = Quiet(rule)
    for i, value in enumerate(values):
        quiet.observe(value, now=float(i * 10))
    now = (len(values) - 1) * 10.0
    trailing = 0
    for value in reversed(values):
        if value is None or rule.active(value):
            break
        trailing += 1
    assert quiet.due(now) == (trailing > 0 and (trailing - 1) * 10.0 >= after)
