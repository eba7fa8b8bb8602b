"""Stabilization windows, rate limits, cooldowns and bounds, as tables over a sequence of
proposals: the rules every policy's proposal goes through."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies.base import Decision, PolicyInput, Proposal
from policies.behavior import Behavior
from policies.options import BehaviorOptions


def decide(behavior: Behavior, current: int, proposal: int | None, now: float,
           minimum: int = 1, maximum: int = 20) -> Decision:  # fmt: skip
    inputs = PolicyInput(current, minimum, maximum, (), now)
    return behavior.decide(inputs, Proposal(proposal, f"propose {proposal}"))


def run(
    steps: list[tuple[float, int]], start: int = 4, **labels: str
) -> list[tuple[int, str | None]]:
    """Feed (time, proposal) pairs; each decision is carried out at once, as the actuator
    reports it. Returns (desired, bound)."""
    behavior = Behavior(BehaviorOptions.model_validate(labels))
    current, out = start, []
    for now, proposal in steps:
        decision = decide(behavior, current, proposal, now)
        out.append((decision.desired, decision.bound))
        behavior.record(now, current, decision.desired)
        current = decision.desired
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
    assert decide(behavior, 4, None, 0, maximum=10).desired == 4
    assert decide(behavior, 12, None, 0, maximum=10).desired == 10
    assert decide(behavior, 12, 30, 0, maximum=10).bound == "max"


@pytest.mark.parametrize(
    ("current", "proposal", "desired", "bound"),
    [
        pytest.param(2, 5, 2, "max", id="above-max"),
        pytest.param(1, 0, 1, "min", id="below-min"),
        pytest.param(2, 2, 2, None, id="at-max"),
    ],
)
def test_any_proposal_is_bounded_by_min_and_max(
    current: int, proposal: int, desired: int, bound: str | None
) -> None:
    # A plugin may propose anything; the bounds are not its to keep.
    behavior = Behavior(BehaviorOptions.model_validate({"scale-down.stabilization": "0"}))
    decision = decide(behavior, current, proposal, 0, minimum=1, maximum=2)
    assert (decision.desired, decision.bound) == (desired, bound)


def test_a_decision_that_was_never_carried_out_starts_no_cooldown_and_uses_no_rate() -> None:
    labels = {"scale-up.cooldown": "60s", "scale-up.max-replicas": "2", "scale-up.max-percent": "0"}
    behavior = Behavior(BehaviorOptions.model_validate(labels))
    assert decide(behavior, 2, 4, 0).desired == 4  # decided, but paused or dry run: not recorded
    later = decide(behavior, 2, 4, 5)
    assert (later.desired, later.bound) == (4, None), later.reason
    behavior.record(5, 2, 4)  # now it happened
    held = decide(behavior, 4, 6, 20)  # the rate's 15 s period is over, the cooldown is not
    assert (held.desired, held.bound) == (4, "cooldown")
    assert "cooldown: 45s left of 60s" in held.reason


def test_the_rate_counts_what_the_actuator_did_not_what_was_decided() -> None:
    labels = {"scale-up.max-replicas": "4", "scale-up.max-percent": "0"}
    behavior = Behavior(BehaviorOptions.model_validate(labels))
    assert decide(behavior, 2, 6, 0).desired == 6
    behavior.record(0, 2, 3)  # only one of four clones started
    assert decide(behavior, 3, 6, 5).desired == 6  # 3 more fit within the 4 of this period
    behavior.record(5, 3, 6)
    assert decide(behavior, 6, 10, 10).desired == 6  # the period's 4 are used up


def test_new_labels_keep_the_windows_and_actions_of_the_old_behaviour() -> None:
    old = Behavior(BehaviorOptions.model_validate({"scale-up.cooldown": "60s"}))
    decide(old, 2, 4, 0)
    old.record(0, 2, 4)
    new = Behavior(BehaviorOptions.model_validate({"scale-up.cooldown": "30s"}), previous=old)
    assert decide(new, 4, 6, 10).bound == "cooldown"
    assert decide(new, 4, 6, 31).desired == 6


# Each rule at its edge, with everything a decision says: the cases a mutation run of
# policies/ (make mutate) showed no test pinned.


def behaving(**labels: str) -> Behavior:
    return Behavior(BehaviorOptions.model_validate(labels))


def proposing(count: int | None, *, saturated: bool = False) -> Proposal:
    return Proposal(count, f"propose {count}", metrics={"cpu": 42.0}, notes=("a note",),
                    saturated=saturated)  # fmt: skip


def test_without_data_the_decision_holds_says_only_the_policys_reason_and_no_steps() -> None:
    decision = behaving().decide(PolicyInput(4, 1, 10, (), 100.0), proposing(None))
    assert (decision.desired, decision.stabilized, decision.bound) == (4, 4, None)
    assert (decision.reason, decision.steps) == ("propose None", ("a note",))


def test_without_data_a_count_above_max_is_bound_and_says_so() -> None:
    decision = behaving().decide(PolicyInput(12, 1, 10, (), 100.0), proposing(None))
    assert (decision.desired, decision.stabilized, decision.bound) == (10, 12, "max")
    assert decision.steps == ("a note", "bound to max 10")
    assert decision.reason == "propose None; bound to max 10"


def test_a_decision_carries_the_policys_metrics_notes_and_every_step_in_order() -> None:
    behavior = behaving(**{"scale-down.stabilization": "30s", "scale-down.max-percent": "50"})
    for now, proposal in ((100, 1), (110, 4)):
        behavior.decide(PolicyInput(10, 1, 20, (), now), proposing(proposal))
    decision = behavior.decide(PolicyInput(10, 1, 20, (), 131), proposing(1))
    assert (decision.proposal, decision.stabilized, decision.desired) == (1, 4, 5)
    assert decision.bound == "rate"
    assert decision.metrics == {"cpu": 42.0}
    steps = ("scale-down stabilization: highest proposal of the last 30s is 4",
             "rate limit: at least 5 within 15s")  # fmt: skip
    assert decision.steps == ("a note", *steps)
    assert decision.reason == "propose 1; " + "; ".join(steps)


def test_the_up_window_is_measured_from_each_proposal_at_any_time() -> None:
    assert run([(100, 8), (105, 8), (111, 8)], **{"scale-up.stabilization": "10s"}) == [
        (4, None), (4, None), (8, None),
    ]  # fmt: skip


@given(
    up=st.integers(0, 30),
    down=st.integers(0, 60),
    steps=st.lists(st.tuples(st.sampled_from([0.0, 0.5, 1.0, 2.0, 7.0]), st.integers(1, 8))),
)
def test_a_window_is_the_lowest_and_highest_of_every_proposal_it_holds(
    up: int, down: int, steps: list[tuple[float, int]]
) -> None:
    """Runs of equal proposals are kept as one: the count is what every proposal, one by one,
    within each window would make it."""
    labels = {"scale-up.stabilization": f"{up}s", "scale-down.stabilization": f"{down}s"}
    behavior, current, now = behaving(**labels), 4, 0.0
    made: list[tuple[float, int]] = []
    for gap, proposal in steps:
        now += gap
        made = made or [(now, current)]  # the window starts out holding the count
        decision = behavior.decide(PolicyInput(current, 1, 20, (), now), proposing(proposal))
        lowest = min([proposal, *(p for t, p in made if now - t < up)])
        highest = max([proposal, *(p for t, p in made if now - t < down)])
        assert decision.stabilized == min(max(current, lowest), highest)
        made.append((now, proposal))


def test_new_labels_do_not_start_the_windows_over() -> None:
    old = behaving(**{"scale-down.stabilization": "30s"})
    old.decide(PolicyInput(4, 1, 20, (), 100.0), proposing(2))
    new = Behavior(BehaviorOptions.model_validate({"scale-down.stabilization": "30s"}), old)
    assert new.decide(PolicyInput(4, 1, 20, (), 120.0), proposing(2)).desired == 4
    assert new.decide(PolicyInput(4, 1, 20, (), 131.0), proposing(2)).desired == 2


@pytest.mark.parametrize(
    ("labels", "start", "proposal", "maximum", "desired", "bound"),
    [
        pytest.param({"scale-up.max-percent": "100", "scale-up.max-replicas": "0"}, 101, 300, 400, 202, "rate", id="up-percent-exactly"),
        pytest.param({"scale-down.max-percent": "50", "scale-down.stabilization": "0"}, 101, 1, 400, 50, "rate", id="down-percent-exactly"),
        pytest.param({}, 4, 20, 20, 8, "rate", id="up-rate-names-the-rate"),
        pytest.param({}, 10, 20, 20, 20, None, id="at-max-exactly-is-no-bound"),
        pytest.param({"scale-down.max-percent": "50", "scale-down.stabilization": "0"}, 10, 5, 20, 5, None, id="at-the-down-rate-exactly-is-no-bound"),
    ],
)  # fmt: skip
def test_rates_and_bounds_at_their_edges(
    labels: dict[str, str], start: int, proposal: int, maximum: int, desired: int, bound: str | None
) -> None:
    decision = behaving(**labels).decide(
        PolicyInput(start, 1, maximum, (), 0.0), proposing(proposal)
    )
    assert (decision.desired, decision.bound) == (desired, bound)
    if bound == "rate":
        assert decision.steps[-1].startswith("rate limit: ")


@pytest.mark.parametrize(
    ("minimum", "proposal", "desired", "bound"),
    [
        pytest.param(2, 1, 2, "min", id="min-where-it-meets-the-rate"),
        pytest.param(2, 2, 2, None, id="at-min-exactly-is-no-bound"),
    ],
)
def test_the_min_bound_where_it_meets_the_down_rate(
    minimum: int, proposal: int, desired: int, bound: str | None
) -> None:
    behavior = behaving(**{"scale-down.max-percent": "50", "scale-down.stabilization": "0"})
    decision = behavior.decide(PolicyInput(4, minimum, 20, (), 0.0), proposing(proposal))
    assert (decision.desired, decision.bound) == (desired, bound)


def test_the_up_rate_never_takes_the_count_below_what_it_is() -> None:
    behavior = behaving()
    behavior.record(0.0, 2, 10)  # more than one period's rate: a restore, or a saturated climb
    decision = behavior.decide(PolicyInput(10, 1, 20, (), 1.0), proposing(20))
    assert (decision.desired, decision.bound) == (10, "rate")


def test_the_down_rate_counts_what_was_removed_within_the_period() -> None:
    labels = {"scale-down.max-percent": "50", "scale-down.stabilization": "0"}
    assert run([(0, 1), (5, 1), (16, 1)], start=10, **labels) == [
        (5, "rate"),
        (5, "rate"),
        (2, "rate"),
    ]


def test_the_up_rate_counts_only_what_was_added_and_only_within_the_period() -> None:
    labels = {"scale-down.stabilization": "0"}
    assert run([(0, 5), (5, 20)], start=10, **labels) == [(5, None), (10, "rate")]
    assert run([(0, 20), (15, 20)], start=2) == [(6, "rate"), (12, "rate")]


def test_a_cooldown_is_over_the_moment_it_has_lasted() -> None:
    assert run([(0, 6), (30, 8)], **{"scale-up.cooldown": "30s"}) == [(6, None), (8, None)]


def test_a_saturated_service_grows_through_a_cooldown_and_says_it_is_saturated_only_when_it_grows() -> (
    None
):
    behavior = behaving(**{"scale-up.cooldown": "60s"})
    behavior.record(0.0, 2, 4)
    grows = behavior.decide(PolicyInput(4, 1, 20, (), 0.5), proposing(6, saturated=True))
    assert (grows.desired, grows.saturated) == (6, True)
    at_max = behavior.decide(PolicyInput(20, 1, 20, (), 1.0), proposing(40, saturated=True))
    assert (at_max.desired, at_max.saturated) == (20, False)


def test_a_saturated_decision_adds_its_percent_of_the_count_exactly() -> None:
    behavior = behaving(**{"scale-up.saturated-max-percent": "100"})
    decision = behavior.decide(PolicyInput(101, 1, 400, (), 0.0), proposing(300, saturated=True))
    assert (decision.desired, decision.bound) == (202, "rate")


def test_an_up_action_a_whole_period_old_no_longer_counts_even_while_down_actions_are_kept() -> (
    None
):
    labels = {"scale-down.period": "30s"}  # actions are kept for the longer period
    assert run([(0, 20), (15, 20)], start=2, **labels) == [(6, "rate"), (12, "rate")]
