"""The simulator on small traces, with exact timelines."""

from __future__ import annotations

import pytest

from policies import registry
from policies.simulator import Model, Result, Row, read_trace, simulate, write_timeline


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
    rows = [Row(0, 1.0, 2, 2, 2), Row(1, 1.5, 3, 2, 2)]
    assert write_timeline(rows) == (
        "time,demand,needed,replicas,ready\n0,1.000,2,2,2\n1,1.500,3,2,2\n"
    )


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
