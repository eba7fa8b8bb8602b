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
