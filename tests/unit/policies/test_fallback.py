"""A fallback when the metric fails: the count the labels name, once the metric has been missing
for long enough, in place of holding."""

from __future__ import annotations

from policies.base import Proposal, Signal
from policies.fallback import Fallback, apply, due

MISSING = Signal("mqtt queue/depth", None, error="no value for longer than its max age of 15s")
HOLD = Proposal(4, "mqtt queue/depth: no value: hold at 4")
RULE = Fallback(replicas=6, after=60.0)


def test_a_metric_missing_for_less_than_the_wait_still_holds() -> None:
    assert not due(MISSING, 59.0, RULE)
    assert apply(HOLD, MISSING, 59.0, RULE) == HOLD


def test_a_metric_missing_for_the_whole_wait_runs_the_fallback_count_and_says_why() -> None:
    assert due(MISSING, 60.0, RULE)
    proposal = apply(HOLD, MISSING, 60.0, RULE)
    assert proposal.count == 6
    assert proposal.reason == (
        "mqtt queue/depth: no value for longer than its max age of 15s, missing 60s: fallback to 6"
    )
    assert proposal.notes == (proposal.reason,)


def test_the_fallback_count_is_run_downwards_too() -> None:
    busy = Proposal(9, "mqtt queue/depth: no value: hold at 9")
    assert apply(busy, MISSING, 120.0, RULE).count == 6


def test_a_service_held_at_its_cpu_limit_is_not_taken_below_what_it_needs() -> None:
    saturated = Proposal(8, "held at its CPU limit: at least 8", saturated=True)
    proposal = apply(saturated, MISSING, 120.0, RULE)
    assert proposal.count == 8
    assert "fallback to 6, below what it needs now" in proposal.reason


def test_a_metric_that_reads_or_no_fallback_leaves_the_proposal_alone() -> None:
    reading = Signal("mqtt queue/depth", 120.0)
    assert apply(HOLD, reading, None, RULE) == HOLD
    assert apply(HOLD, MISSING, 600.0, None) == HOLD
    assert apply(HOLD, None, 600.0, RULE) == HOLD
    assert not due(MISSING, None, RULE)
