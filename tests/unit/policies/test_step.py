"""The classic step rule, as a table: one more above the target, one fewer below half of it."""

from __future__ import annotations

import pytest

from policies.base import PolicyInput, Proposal, ReplicaSample
from policies.step import Step, StepOptions


def propose(current: int, *samples: ReplicaSample) -> Proposal:
    policy = Step(StepOptions.model_validate({"cpu.target": "50"}))
    return policy.propose(PolicyInput(current, 1, 10, samples, 100.0))


@pytest.mark.parametrize(
    ("cpu", "count", "reason"),
    [
        pytest.param(60.0, 3, "cpu 60.0% above target 50%: propose 3", id="above"),
        pytest.param(50.0, 2, "cpu 50.0% within the band: hold at 2", id="at-the-target"),
        pytest.param(25.0, 2, "cpu 25.0% within the band: hold at 2", id="at-half"),
        pytest.param(20.0, 1, "cpu 20.0% below half of 50%: propose 1", id="below-half"),
    ],
)
def test_one_step_at_a_time(cpu: float, count: int, reason: str) -> None:
    assert propose(2, ReplicaSample("a", cpu), ReplicaSample("b", cpu)) == Proposal(
        count, reason, {"cpu": cpu}, {}
    )


def test_no_step_down_while_a_replica_is_not_measured_and_it_says_which() -> None:
    got = propose(2, ReplicaSample("a", 10.0), ReplicaSample("b", None))
    assert got == Proposal(2, "cpu 10.0% within the band: hold at 2", {"cpu": 10.0},
                           {"b": "no sample yet"})  # fmt: skip


def test_without_a_sample_it_holds() -> None:
    assert propose(2, ReplicaSample("a", None, ready=False, note="starting")) == Proposal(
        None, "no usable samples: holding", {}, {"a": "starting"}
    )
