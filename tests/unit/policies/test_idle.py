"""Replicas that take no load beside saturated ones are a finding, and the decision is made over
those that take load, the idle ones kept on top."""

from __future__ import annotations

from policies import registry
from policies.base import PolicyInput, ReplicaSample
from policies.idle import Idle, idle_beside_saturated, propose_without, still_idle

PEGGED = (ReplicaSample("a", 100.0, throttled=0.9), ReplicaSample("b", 100.0, throttled=0.8))
IDLE = (ReplicaSample("x", 1.0, throttled=0.0), ReplicaSample("y", 0.0),
        ReplicaSample("z", 2.0, throttled=0.0))  # fmt: skip


def test_idle_replicas_beside_saturated_ones_are_found() -> None:
    assert idle_beside_saturated(PEGGED + IDLE) == Idle(("x", "y", "z"), held=2, measured=5)


def test_no_finding_without_both_a_saturated_and_an_idle_replica() -> None:
    assert idle_beside_saturated(IDLE) is None
    assert idle_beside_saturated(PEGGED) is None
    busy = (ReplicaSample("c", 40.0, throttled=0.0),)
    assert idle_beside_saturated(PEGGED + busy) is None
    # One just at the idle line takes load; one not measured yet or not ready is no finding.
    assert idle_beside_saturated((*PEGGED, ReplicaSample("d", 5.0))) is None
    assert (
        idle_beside_saturated(
            (*PEGGED, ReplicaSample("e", None), ReplicaSample("f", 0.0, ready=False))
        )
        is None
    )


def test_the_idle_ones_cpu_does_not_hide_the_saturation() -> None:
    policy, _ = registry.build("target-tracking", {"cpu.target": "50"})
    inputs = PolicyInput(5, 1, 20, PEGGED + IDLE, 100.0)
    # Averaged in: 40.6 % against 50 %, a scale-down the hold-on-saturation stops at best.
    assert (policy.propose(inputs).count or 0) <= 5
    found = idle_beside_saturated(inputs.samples)
    assert found is not None
    proposal = propose_without(policy, inputs, found, "takes no load")
    # The two that take load need 5 (their floor: 200 % of a replica at 50 %); the 3 kept: 8.
    assert proposal.count == 8
    assert proposal.reason.endswith("; 3 idle kept on top: 8")
    assert proposal.notes[-1] == "decided on the 2 replicas that take load, 3 idle kept on top"
    assert {cid: proposal.ignored[cid] for cid in "xyz"} == dict.fromkeys("xyz", "takes no load")


def test_a_finding_lasts_while_those_replicas_idle_beside_others_that_take_load() -> None:
    relieved = (ReplicaSample("a", 40.0), ReplicaSample("b", 45.0), *IDLE)
    assert still_idle(relieved, ("x", "y", "z")) == Idle(("x", "y", "z"), held=0, measured=5)
    unmeasured = (ReplicaSample("a", None), ReplicaSample("x", None))  # right after an action
    assert still_idle(unmeasured, ("x",)) == Idle(("x",), held=0, measured=0)


def test_a_finding_ends_when_they_take_load_go_away_or_nobody_takes_any() -> None:
    assert still_idle((*PEGGED, ReplicaSample("x", 30.0)), ("x",)) is None
    assert still_idle(PEGGED, ("x",)) is None
    assert still_idle((ReplicaSample("a", 1.0), ReplicaSample("x", 0.0)), ("x",)) is None
