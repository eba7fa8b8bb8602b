"""The simulator on small traces, with exact timelines."""

from __future__ import annotations

import pytest

from policies import registry
from policies.options import BehaviorOptions
from policies.schedule import Schedule, parse_window
from policies.simulator import Model, Result, Row, read_trace, simulate, write_timeline
from policies.target_tracking import TargetTracking, TargetTrackingOptions


def run(
    trace: list[tuple[float, float]], name: str, labels: dict[str, str], model: Model
) -> Result:
    policy, behavior = registry.build(name, labels)
    return simulate(trace, policy, model, behavior)


def changes(rows: list[Row], field: str) -> list[tuple[float, int]]:
    """(time, value) at every change of `field`: a timeline in a few numbers."""
    out: list[tuple[float, int]] = []
    for row in rows:
        value = getattr(row, field)
        if not out or out[-1][1] != value:
            out.append((row.t, value))
    return out


def test_a_step_is_decided_in_the_next_report_and_served_after_start_up() -> None:
    # 1.0 core needs 2 replicas (0.5 core each at the 50 % target); 1.8 cores need 4.
    trace = [(0, 1.0), (20, 1.8), (60, 1.8)]
    result = run(trace, "target-tracking", {"cpu.target": "50"}, Model())
    # The report at 20 covers [15, 20): the old demand. The one at 25 sees 90 % per replica.
    assert changes(result.timeline, "replicas") == [(0, 2), (25, 4)]
    assert changes(result.timeline, "ready") == [(0, 2), (35, 4)]
    assert result.decisions == [(25, 2, 4, "cpu 90.0% vs target 50% over 2 ready of 2: propose 4")]
    summary = result.summary
    assert summary is not None
    assert summary.actions == 1
    assert summary.under_provisioned_s == 15  # seconds 20 to 34
    assert summary.saturated_s == 0
    assert summary.over_provisioned_replica_s == 0
    assert summary.reaction_s == 15  # one interval plus the start-up delay


def test_a_drop_waits_for_the_scale_down_window() -> None:
    trace = [(0, 1.8), (30, 1.0), (120, 1.0)]
    labels = {"cpu.target": "50", "scale-down.stabilization": "30s"}
    result = run(trace, "target-tracking", labels, Model())
    # Proposals of 4 stand until 30 s after the last one (t=30): down to 2 at 60.
    assert changes(result.timeline, "replicas") == [(0, 4), (60, 2)]
    assert result.summary is not None
    assert result.summary.over_provisioned_replica_s == 2 * 30


def test_saturated_replicas_take_more_than_one_decision() -> None:
    # 3 cores on 2 replicas: each is pegged at 100 %, which only says "at least double".
    trace = [(0, 1.0), (20, 3.0), (120, 3.0)]
    result = run(trace, "hpa", {"cpu.target": "50"}, Model())
    # New replicas serve from 35; the report at 40 sees 4 x 75 %: 6.
    assert changes(result.timeline, "replicas") == [(0, 2), (25, 4), (40, 6)]
    assert result.summary is not None
    assert result.summary.saturated_s == 15


def test_replicas_stay_within_min_and_max() -> None:
    trace = [(0, 0.1), (10, 9.0), (100, 9.0)]
    model = Model(minimum=2, maximum=5)
    result = run(trace, "step", {"cpu.target": "50"}, model)
    replicas = [row.replicas for row in result.timeline]
    assert min(replicas) == 2
    assert max(replicas) == 5


def test_a_trace_is_csv_with_an_optional_header() -> None:
    assert read_trace("time,demand\n10,2.5\n0,1\n") == [(0.0, 1.0), (10.0, 2.5)]
    with pytest.raises(ValueError, match="trace line 3"):
        read_trace("time,demand\n0,1\nten,2\n")


def test_the_timeline_is_csv() -> None:
    rows = [Row(0, 1.0, 2, 2, 2), Row(1, 1.5, 4, 2, 2, "schedule work (min 4): min 4, max 20")]
    assert write_timeline(rows) == (
        "time,demand,needed,replicas,ready,schedule\n0,1.000,2,2,2,\n"
        '1,1.500,4,2,2,"schedule work (min 4): min 4, max 20"\n'
    )


def test_a_trace_runs_across_a_schedule_that_raises_min_ahead_of_a_peak_and_lets_it_go() -> None:
    # Idle all along: a morning window (from 00:01 of the Monday the trace starts on) holds 4.
    trace = [(0.0, 0.1), (180.0, 0.1)]
    window = parse_window("morning", "Mon 00:01-00:02 min=4")
    model = Model(interval=5.0, startup=1.0, schedule=Schedule((window,)))
    result = simulate(trace, TargetTracking(TargetTrackingOptions(**{"cpu.target": 50})),
                      model, BehaviorOptions(**{"scale-down.stabilization": 0}))  # fmt: skip
    at = {row.t: row for row in result.timeline}
    assert at[30].replicas == 1 and at[30].schedule is None
    assert at[65].replicas == 4 and at[65].needed == 4
    assert at[65].schedule == "schedule morning (min 4): min 4, max 20"
    assert at[170].replicas == 1 and at[170].schedule is None


def test_a_saturated_service_grows_every_decision_to_exactly_what_it_needs() -> None:
    # 5 cores on 2 replicas of 1 core: each is held at its limit. The hpa can at most double
    # per decision and then waits out its 15 s rate period; the default knows the replicas are
    # throttled, so each decision may grow again (by 4 or double), until it is not saturated
    # and the ordinary calculation sizes it: 10 for 5 cores at 50 %.
    trace = [(0, 1.0), (20, 5.0), (300, 5.0)]
    model = Model(startup=2.0, maximum=20)
    default = run(trace, "target-tracking", {"cpu.target": "50"}, model)
    assert [(t, a, b) for t, a, b, _ in default.decisions] == [(25, 2, 5), (30, 5, 10)]
    assert default.decisions[0][3].startswith("saturated: 2 of 2 replicas held at their CPU limit")
    hpa = run(trace, "hpa", {"cpu.target": "50"}, model)
    assert [(t, a, b) for t, a, b, _ in hpa.decisions][:2] == [(25, 2, 4), (30, 4, 6)]
    assert default.summary is not None and hpa.summary is not None
    assert (default.summary.reaction_s, hpa.summary.reaction_s) == (12, 27)
    assert default.summary.under_provisioned_s < hpa.summary.under_provisioned_s
    assert max(row.replicas for row in default.timeline) == 10


# The model rule by rule, each pinned by what it changes in a result: the cases a mutation run
# (make mutate) showed no test pinned.


def test_a_trace_skips_comments_and_blank_lines_anywhere_and_needs_a_row() -> None:
    assert read_trace("time,demand\n0,1\n# a note\n\n10,2\n#\n20,3\n") == [
        (0.0, 1.0), (10.0, 2.0), (20.0, 3.0),
    ]  # fmt: skip
    with pytest.raises(ValueError, match=r"^trace has no rows$"):
        read_trace("time,demand\n# nothing yet\n")


def test_the_timeline_has_a_row_a_second_from_the_first_to_the_last_and_follows_each_row() -> None:
    trace = [(0, 1.0), (2, 2.0), (3, 0.5), (4, 3.0)]
    rows = run(trace, "step", {"cpu.target": "50"}, Model()).timeline
    assert [(r.t, r.demand, r.needed) for r in rows] == [
        (0, 1.0, 2), (1, 1.0, 2), (2, 2.0, 4), (3, 0.5, 1), (4, 3.0, 6),
    ]  # fmt: skip


def test_the_model_starts_with_its_initial_count_and_the_first_report_one_interval_in() -> None:
    model = Model(initial=4)
    result = run([(0, 0.1), (100, 0.1)], "target-tracking",
                 {"cpu.target": "50", "scale-down.stabilization": "30s"}, model)  # fmt: skip
    # The window starts at the first decision (t=5) holding 4: down 30 s later, not at 30.
    assert changes(result.timeline, "replicas") == [(0, 4), (35, 1)]


def test_a_report_every_second_starts_after_the_first_second() -> None:
    result = run([(0, 1.8), (30, 1.8)], "hpa", {"cpu.target": "50"}, Model(interval=1.0, initial=2))
    assert result.decisions[0][:3] == (1, 2, 4)


def test_no_replica_at_all_is_served_nothing_and_min_brings_one() -> None:
    result = run([(0, 1.0), (30, 1.0)], "step", {"cpu.target": "50"}, Model(initial=0))
    assert changes(result.timeline, "replicas")[:2] == [(0, 0), (5, 1)]


def test_utilisation_is_of_the_replicas_capacity() -> None:
    # 0.45 core on one replica of 0.5: 90 %.
    result = run(
        [(0, 0.45), (30, 0.45)], "hpa", {"cpu.target": "50"}, Model(capacity=0.5, initial=1)
    )
    assert result.decisions[0] == (5, 1, 2, "cpu 90.0% vs target 50% over 1 ready of 1: propose 2")
    summary = result.summary
    assert summary is not None and summary.under_provisioned_s == 15  # until the second serves
    assert summary.saturated_s == 0  # 0.45 < 1 x 0.5


def test_a_replica_exactly_at_capacity_is_not_held_back_nor_is_work_lost() -> None:
    # 2 cores on 2 replicas of 1: each at 100 %, none beyond: no throttling, no saturation.
    result = run([(0, 2.0), (30, 2.0)], "target-tracking", {"cpu.target": "50"}, Model(initial=2))
    assert result.decisions[0][:3] == (5, 2, 4)  # not the saturation floor of 5
    assert result.summary is not None and result.summary.saturated_s == 0


def test_a_flat_trace_has_no_step_up_to_react_to() -> None:
    summary = run([(0, 1.0), (60, 1.0)], "step", {"cpu.target": "50"}, Model()).summary
    assert summary is not None and summary.reaction_s is None


def test_a_step_up_never_caught_up_with_reacts_until_the_end() -> None:
    summary = run([(0, 0.5), (58, 3.0), (60, 3.0)], "step", {"cpu.target": "50"}, Model()).summary
    assert summary is not None and summary.reaction_s == 2


def test_a_step_down_at_the_start_of_the_trace_is_no_step_up() -> None:
    summary = run([(0, 2.0), (10, 0.5), (60, 0.5)], "step", {"cpu.target": "50"}, Model()).summary
    assert summary is not None and summary.reaction_s is None


def test_a_report_covers_the_interval_it_closes_and_no_more() -> None:
    # 1.0 core until 22, then 1.8: the report at 25 sees (50, 50, 90, 90, 90) %: 74 %.
    result = run([(0, 1.0), (22, 1.8), (60, 1.8)], "hpa",
                 {"cpu.target": "50", "scale-up.tolerance": "0"}, Model())  # fmt: skip
    assert result.decisions[0] == (25, 2, 3, "cpu 74.0% vs target 50% over 2 ready of 2: propose 3")


def test_every_window_starts_afresh_when_a_new_replica_starts_serving() -> None:
    # Up to 4 at 25; the new ones serve from 32. The report at 35 covers [32, 35) for all four
    # (45 % each): no further move. Windows that ran on would read the old ones at 63 %.
    labels = {"cpu.target": "50", "scale-up.tolerance": "0", "scale-down.tolerance": "0"}
    result = run([(0, 1.0), (20, 1.8), (60, 1.8)], "target-tracking", labels, Model(startup=7.0))
    assert [d[:3] for d in result.decisions] == [(25, 2, 4)]


def test_a_starting_replica_is_unready_and_holds_a_scale_down_until_it_serves() -> None:
    labels = {"cpu.target": "50", "scale-down.stabilization": "0"}
    result = run([(0, 1.0), (20, 1.8), (26, 0.05), (80, 0.05)], "target-tracking", labels, Model())
    # At 30 the new two are starting: the drop waits. At 35 they serve without a reading yet
    # (missing: at the target going down), and the count comes down in steps.
    assert [d[:3] for d in result.decisions][:2] == [(25, 2, 4), (35, 4, 3)]


def test_a_replica_inside_its_warm_up_is_not_counted() -> None:
    trace = [(0, 1.0), (20, 1.8), (40, 3.6), (90, 3.6)]
    result = run(trace, "target-tracking", {"cpu.target": "50", "warmup": "30s"}, Model())
    # The two made at 25 serve from 35, but count only from 55: the next step up waits.
    assert [d[:3] for d in result.decisions][:2] == [(25, 2, 4), (55, 4, 8)]


def test_a_saturated_report_says_how_often_the_replicas_were_held() -> None:
    result = run([(0, 1.0), (20, 5.0), (60, 5.0)], "target-tracking", {"cpu.target": "50"},
                 Model(startup=2.0))  # fmt: skip
    assert result.decisions[0][3] == (
        "saturated: 2 of 2 replicas held at their CPU limit (throttled in 100% of periods), so "
        "demand is at least 200% of one replica's limit: at least 5"
    )


def test_work_is_lost_beyond_the_ready_replicas_full_capacity() -> None:
    # 0.8 core on one replica of 0.5 (max 1): 0.3 core a second finds no capacity.
    model = Model(capacity=0.5, initial=1, maximum=1)
    summary = run([(0, 0.8), (10, 0.8)], "hpa", {"cpu.target": "50"}, model).summary
    assert summary is not None and summary.saturated_s == 11
