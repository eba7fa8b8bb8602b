"""`autoscaler explain`'s head lines: an operator's control in force is named with who set it,
why and until when, beside the count and bounds."""

from __future__ import annotations

from datetime import datetime

from autoscaler.ops.explain import render

STATE = {"replicas": 5, "min": 1, "max": 10, "policy": "target-tracking", "phase": "holding"}


def status(**state: object) -> dict[str, object]:
    return {"services": {"shop/web": {"state": STATE | state, "decisions": []}}}


def test_a_hold_is_named_with_who_why_and_when_it_ends() -> None:
    until = datetime(2026, 12, 3, 14, 30).timestamp()
    control = {"action": "hold", "replicas": 5, "since": until - 7200, "until": until,
               "who": "alice", "why": "launch"}  # fmt: skip
    lines = render(status(control=control), 10).splitlines()
    assert lines[0] == "shop/web: 5 replicas (min 1, max 10), policy target-tracking, holding"
    assert lines[1] == "  control: held at 5 by alice (launch), until 14:30:00"


def test_a_pause_until_resumed_and_no_control_at_all() -> None:
    control = {"action": "pause", "replicas": None, "since": 0, "until": None, "who": "bob",
               "why": ""}  # fmt: skip
    assert "  control: paused by bob, until resumed" in render(status(control=control), 10)
    assert "control:" not in render(status(control=None), 10)


def test_a_hold_that_stood_since_its_decision_says_so_after_it() -> None:
    decided = datetime(2026, 12, 3, 14, 0).timestamp()
    decision = {"time": decided, "from": 5, "to": 5, "proposal": 4, "stabilized": 5,
                "bound": None, "reason": "cpu 41.0% vs target 50% over 5 ready of 5: hold at 5",
                "steps": [], "samples": []}  # fmt: skip
    service = {"state": STATE | {"time": decided + 300, "cpu": 43.25}, "decisions": [decision]}
    lines = render({"services": {"shop/web": service}}, 10).splitlines()
    assert lines[-1] == (
        "  14:05:00  hold 5     stands since 14:00:00: its readings (cpu 43.2%) ask for the same"
    )
    # Decided this round: nothing to add.
    service["state"] = STATE | {"time": decided, "cpu": 41.0}
    assert "stands" not in render({"services": {"shop/web": service}}, 10)
