"""The one decision pipeline, stage by stage: the bounds a schedule sets, the zero stage, the
floor, the policy, idle replicas, the fallback, the behaviour rules, the user's own floor."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from policies import registry
from policies.base import ReplicaSample, Signal
from policies.fallback import Fallback
from policies.pipeline import IDLE_ROUNDS, Pipeline, Round, Zero
from policies.schedule import Schedule, parse_window
from policies.zero import ZeroRule

MONDAY_8 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC).timestamp()
MORNING = Schedule((parse_window("morning", "Mon 08:00-09:00 min=3"),))
QUIET = ZeroRule(after=60.0)
AT_TARGET = (ReplicaSample("a", 50.0), ReplicaSample("b", 50.0))
PEGGED = (ReplicaSample("a", 100.0, throttled=0.9), ReplicaSample("b", 100.0, throttled=0.8))
IDLE = (ReplicaSample("x", 0.0, throttled=0.0),)


def pipeline(labels: dict[str, str] | None = None, previous: Pipeline | None = None) -> Pipeline:
    policy, behavior = registry.build(
        "target-tracking", {"cpu.target": "50", "scale-down.stabilization": "0s", **(labels or {})}
    )
    return Pipeline(policy, behavior, previous=previous)


def round_(samples: tuple[ReplicaSample, ...] = AT_TARGET, *, now: float = 100.0,
           wall: float = MONDAY_8 - 7200, **extra: object) -> Round:  # fmt: skip
    fields: dict[object, object] = {"minimum": 1, "maximum": 10} | extra
    return Round(samples=samples, now=now, wall=wall, **fields)  # type: ignore[arg-type]


def demand(value: float | None, error: str | None = None) -> Signal:
    return Signal("mqtt shop/queue", value, age=0.0, error=error)


# -- the bounds ---------------------------------------------------------------------------------


def test_a_schedule_window_raises_the_min_in_force_and_the_decision_follows_it() -> None:
    outcome = pipeline().decide(round_(wall=MONDAY_8 + 60, schedule=MORNING))
    assert outcome.bounds is not None and outcome.bounds.minimum == 3
    assert outcome.decision.desired == 3 and outcome.decision.bound == "min"
    before = pipeline().decide(round_(wall=MONDAY_8 - 60, schedule=MORNING))
    assert before.bounds is not None and before.bounds.minimum == 1
    assert before.decision.desired == 2


def test_a_schedules_lead_brings_its_min_early_in_its_own_time_zone() -> None:
    early = Schedule(MORNING.windows, lead=120.0)
    assert round_(wall=MONDAY_8 - 100, schedule=early).bounds.minimum == 3
    assert round_(wall=MONDAY_8 - 130, schedule=early).bounds.minimum == 1
    berlin = Schedule(MORNING.windows, timezone=ZoneInfo("Europe/Berlin"))
    assert round_(wall=MONDAY_8 - 60, schedule=berlin).bounds.minimum == 3  # 08:59 in Berlin
    assert round_(wall=MONDAY_8 + 60, schedule=berlin).bounds.minimum == 1  # 09:01 in Berlin
    assert round_(wall=MONDAY_8 - 3660, schedule=berlin).bounds.minimum == 1  # 07:59 in Berlin
    assert round_(wall=MONDAY_8 - 60, schedule=MORNING).bounds.minimum == 1  # 07:59 in UTC


def test_a_running_service_runs_at_least_one_even_where_its_min_is_zero() -> None:
    outcome = pipeline().decide(round_((ReplicaSample("a", 0.0),), minimum=0))
    assert outcome.inputs.minimum == 1 and outcome.decision.desired == 1


# -- zero ---------------------------------------------------------------------------------------


def test_a_quiet_metric_puts_a_running_service_to_sleep_once_it_has_lasted() -> None:
    stages = pipeline()
    quiet = {"minimum": 0, "zero": QUIET, "signal": demand(0.0)}
    assert stages.zero(round_(now=100.0, **quiet), running=True) is None
    assert stages.zero(round_(now=159.0, **quiet), running=True) is None
    assert stages.zero(round_(now=160.0, **quiet), running=True) == Zero(
        "sleep", "mqtt shop/queue 0 at 0 for 60s (to-zero-after 60s)"
    )


def test_demand_or_a_missing_value_starts_the_quiet_afresh() -> None:
    stages = pipeline()
    for now, value in ((100.0, 0.0), (150.0, 2.0), (160.0, 0.0), (200.0, None), (210.0, 0.0)):
        stages.zero(round_(now=now, minimum=0, zero=QUIET, signal=demand(value)), running=True)
    round_at = round_(now=269.0, minimum=0, zero=QUIET, signal=demand(0.0))
    assert stages.zero(round_at, running=True) is None
    assert stages.zero(replace(round_at, now=270.0), running=True) is not None


def test_without_a_signal_nothing_sleeps_and_nothing_wakes() -> None:
    stages = pipeline()
    assert stages.zero(round_(now=100.0, minimum=0, zero=QUIET), running=True) is None
    assert stages.zero(round_(now=900.0, minimum=0, zero=QUIET), running=True) is None
    assert stages.zero(round_(now=900.0, minimum=0, zero=QUIET), running=False) == Zero(
        None, "its metric no value"
    )


def test_a_service_at_zero_wakes_when_its_metric_is_wanted_and_says_why_it_stays() -> None:
    stages = pipeline()
    asleep = {"minimum": 0, "zero": ZeroRule(60.0, activation=5.0)}
    assert stages.zero(round_(signal=demand(4.0), **asleep), running=False) == Zero(
        None, "mqtt shop/queue 4 below activation 5"
    )
    assert stages.zero(round_(signal=demand(5.0), **asleep), running=False) == Zero(
        "wake", "mqtt shop/queue 5 reaches activation 5"
    )


def test_a_schedule_window_with_a_min_wakes_a_sleeping_service_and_keeps_it_awake() -> None:
    stages = pipeline()
    window = {"minimum": 0, "zero": QUIET, "signal": demand(0.0), "schedule": MORNING}
    assert stages.zero(round_(wall=MONDAY_8 + 60, **window), running=False) == Zero(
        "wake", "a schedule sets min 3"
    )
    for now in (100.0, 200.0, 300.0):
        assert stages.zero(round_(now=now, wall=MONDAY_8 + now, **window), running=True) is None


def test_at_zero_a_metric_missing_past_its_fallback_wait_wakes_the_service_to_run_it() -> None:
    stages = pipeline({"metric.target": "10"})
    asleep = {"minimum": 0, "zero": QUIET, "signal": demand(None, error="broker away"),
              "fallback": Fallback(2, 30.0)}  # fmt: skip
    assert stages.zero(round_(now=100.0, **asleep), running=False) == Zero(
        None, "mqtt shop/queue: broker away, missing 0s: woken to its fallback 2 at 30s"
    )
    assert stages.zero(round_(now=129.0, **asleep), running=False) == Zero(
        None, "mqtt shop/queue: broker away, missing 29s: woken to its fallback 2 at 30s"
    )
    assert stages.zero(round_(now=130.0, **asleep), running=False) == Zero(
        "wake", "mqtt shop/queue: broker away, missing 30s: fallback to 2"
    )
    # Awake, still missing: the next round runs the fallback count at once, and never sleeps.
    awake = round_((ReplicaSample("a", None, ready=False),), now=135.0, **asleep)
    assert stages.zero(awake, running=True) is None
    outcome = stages.decide(awake)
    assert outcome.falling_back and outcome.missing_for == 35.0
    assert outcome.decision.desired == 2


def test_a_value_at_zero_starts_the_fallback_wait_afresh() -> None:
    stages = pipeline()
    asleep = {"minimum": 0, "zero": QUIET, "fallback": Fallback(2, 30.0)}
    missing = asleep | {"signal": demand(None, error="broker away")}
    stages.zero(round_(now=100.0, **missing), running=False)
    stages.zero(round_(now=120.0, signal=demand(0.0), **asleep), running=False)
    stages.zero(round_(now=125.0, **missing), running=False)
    assert stages.zero(round_(now=150.0, **missing), running=False) == Zero(
        None, "mqtt shop/queue: broker away, missing 25s: woken to its fallback 2 at 30s"
    )
    assert stages.zero(round_(now=155.0, **missing), running=False) == Zero(
        "wake", "mqtt shop/queue: broker away, missing 30s: fallback to 2"
    )


@pytest.mark.parametrize("fallback", [None, Fallback(0, 30.0)], ids=["no fallback", "fallback 0"])
def test_at_zero_a_missing_metric_without_a_fallback_above_0_never_wakes(
    fallback: Fallback | None,
) -> None:
    stages = pipeline()
    asleep = {"minimum": 0, "zero": QUIET, "signal": demand(None, error="broker away"),
              "fallback": fallback}  # fmt: skip
    for now in (100.0, 200.0, 900.0):
        assert stages.zero(round_(now=now, **asleep), running=False) == Zero(
            None, "mqtt shop/queue: broker away: not woken on missing data"
        )


def test_the_quiet_counts_from_the_services_next_start_and_survives_new_labels() -> None:
    stages = pipeline()
    quiet = {"minimum": 0, "zero": QUIET, "signal": demand(0.0)}
    stages.zero(round_(now=100.0, **quiet), running=True)
    relabelled = pipeline({"scale-up.cooldown": "5s"}, previous=stages)
    assert relabelled.zero(round_(now=160.0, **quiet), running=True) is not None
    # Asleep and woken again: the quiet before the sleep is gone.
    relabelled.zero(round_(now=170.0, **quiet), running=False)
    assert relabelled.zero(round_(now=240.0, **quiet), running=True) is None
    # A new rule (another to-zero-after) starts the quiet afresh.
    longer = quiet | {"zero": ZeroRule(after=30.0)}
    relabelled.zero(round_(now=250.0, **quiet), running=True)
    assert relabelled.zero(round_(now=260.0, **longer), running=True) is None
    assert relabelled.zero(round_(now=290.0, **longer), running=True) is not None


# -- idle, the fallback, the behaviour, the user's own floor -------------------------------------


def test_idle_replicas_beside_saturated_ones_are_a_finding_from_the_third_round_on() -> None:
    stages = pipeline()
    outcomes = [stages.decide(round_(PEGGED + IDLE, now=100.0 + 5 * i)) for i in range(4)]
    assert [o.idle is not None for o in outcomes] == [False, False, True, True]
    assert IDLE_ROUNDS == 3
    found = outcomes[2]
    assert found.idle is not None and found.idle.idle == ("x",)
    assert found.decision.ignored == {"x": "takes no load while others are saturated"}
    # Decided over the two that take load, the idle one kept on top.
    assert found.decision.desired >= 4
    # It lasts while they idle and others take load; once one takes load, the count starts
    # again.
    assert stages.decide(round_(AT_TARGET + IDLE, now=125.0)).idle is not None
    stages.decide(round_((*PEGGED, ReplicaSample("x", 30.0)), now=130.0))
    again = [stages.decide(round_(PEGGED + IDLE, now=135.0 + 5 * i)).idle for i in range(3)]
    assert [found is not None for found in again] == [False, False, True]
    # A round with no finding at all (nobody saturated) starts the count again too.
    stages.decide(round_(AT_TARGET + IDLE, now=150.0))  # still idle beside load: it lasts
    stages.decide(round_((*AT_TARGET, ReplicaSample("x", 40.0)), now=155.0))
    stages.decide(round_(AT_TARGET + IDLE, now=160.0))  # no saturated replica: no finding
    again = [stages.decide(round_(PEGGED + IDLE, now=165.0 + 5 * i)).idle for i in range(3)]
    assert [found is not None for found in again] == [False, False, True]


def test_a_metric_missing_past_its_wait_runs_the_fallback_count() -> None:
    stages = pipeline({"metric.target": "10"})
    missing = {"signal": demand(None, error="broker away"), "fallback": Fallback(4, 30.0)}
    first = stages.decide(round_(now=100.0, **missing))
    assert first.missing_for == 0.0 and not first.falling_back
    later = stages.decide(round_(now=131.0, **missing))
    assert later.missing_for == 31.0 and later.falling_back
    assert later.decision.desired == 4
    back = stages.decide(round_(now=136.0, signal=demand(20.0)))
    assert back.missing_for is None and not back.falling_back


def test_never_below_the_users_own_containers() -> None:
    outcome = pipeline().decide(round_((ReplicaSample("a", 1.0),) * 3, own=3))
    decision = outcome.decision
    assert decision.desired == 3 and decision.bound == "own"
    assert decision.reason.endswith("; 3 of its containers are not clones: never removed")
    assert decision.steps[-1] == "3 of its containers are not clones: never removed"
    at_own = pipeline().decide(round_(AT_TARGET, own=2)).decision
    assert at_own.desired == 2 and at_own.bound != "own"


def test_new_labels_keep_the_behaviours_windows() -> None:
    stages = pipeline({"scale-up.cooldown": "60s"})
    stages.record(100.0, 2, 4)
    relabelled = pipeline({"scale-up.cooldown": "60s", "cpu.target": "40"}, previous=stages)
    busy = (ReplicaSample("a", 90.0), ReplicaSample("b", 90.0))
    decision = relabelled.decide(round_(busy, now=110.0)).decision
    assert decision.desired == 2 and decision.bound == "cooldown"


def test_the_policy_sees_the_rounds_signal_clock_and_start_up() -> None:
    stages = pipeline({"metric.target": "10"})
    outcome = stages.decide(round_(now=100.0, wall=MONDAY_8, signal=demand(45.0), startup=7.0))
    assert outcome.inputs.signal == demand(45.0)
    assert (outcome.inputs.wall, outcome.inputs.startup) == (MONDAY_8, 7.0)
    assert outcome.decision.desired == 5
