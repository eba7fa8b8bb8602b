"""The one state a service shows the world (control/state.py): its wire form, which MQTT, /status
and the page read, and the rule that says when it has something new to tell."""

from __future__ import annotations

import json
from dataclasses import asdict, fields, replace
from typing import Any

import pytest

from autoscaler.control.state import _MEANINGFUL, Evaluation, Phase, ServiceState
from policies.base import Decision, ReplicaSample

FULL = ServiceState(
    project="shop", service="web", phase=Phase.SCALING, replicas=3,
    containers=("shop-web-2", "shop-web-1"), reason="cpu 80% > 50%", time=1_796_000_000.5,
    instance="host-1", dry_run=False, scope="swarm", desired=4, own=1, decided=3, minimum=1,
    maximum=6, policy="target_tracking", paused=False, cpu=80.25, memory=12.5, saturated=False,
    targets={"cpu": 50.0}, metric="mqtt queue/jobs", metric_value=7.0, received=10.0, sent=20.0,
    bound="max", last_action="scale_up 2 → 3", last_action_at=1_795_999_990.0, startup=1.25,
    sampler="cgroup", error="an error", finding="a finding", schedule="weekdays: min 2",
    control={"action": "hold", "replicas": 3, "since": 1.0, "until": None, "who": "me",
             "why": "a sale"},
)  # fmt: skip


def test_every_field_of_the_state_is_set_in_the_full_example() -> None:
    """The examples below hold for every field only if none is left at its default."""
    unset = [f.name for f in fields(ServiceState) if getattr(FULL, f.name) == f.default]
    assert unset == []


def test_the_wire_form_holds_every_field_with_min_and_max_named_as_users_read_them() -> None:
    wire = FULL.to_dict()
    expected = asdict(FULL)
    expected["containers"] = ["shop-web-2", "shop-web-1"]
    expected["min"], expected["max"] = expected.pop("minimum"), expected.pop("maximum")
    assert wire == expected
    assert list(wire) == list(expected)  # the same order, field by field
    assert json.loads(json.dumps(wire))["phase"] == "scaling"


def test_the_wire_form_is_a_copy_that_a_reader_may_change_without_changing_the_state() -> None:
    wire = FULL.to_dict()
    wire["containers"].append("x")
    wire["targets"]["cpu"] = 1.0
    wire["control"]["action"] = "pause"
    assert FULL.containers == ("shop-web-2", "shop-web-1")
    assert FULL.targets == {"cpu": 50.0}
    assert FULL.control is not None and FULL.control["action"] == "hold"


def test_a_state_without_targets_or_control_says_none_of_them() -> None:
    wire = replace(FULL, targets=None, control=None).to_dict()
    assert wire["targets"] is None
    assert wire["control"] is None


OTHER: dict[str, Any] = {
    "phase": Phase.HOLDING, "replicas": 4, "containers": ("shop-web-1",), "desired": 5,
    "minimum": 2, "maximum": 7, "policy": "step", "paused": True, "dry_run": True,
    "sampler": "api", "error": None, "finding": None, "schedule": None, "instance": "host-2",
    "metric": None, "bound": None, "last_action": "restore", "last_action_at": 1.0,
    "control": {"action": "pause"},
}  # fmt: skip


def test_the_examples_change_every_meaningful_field() -> None:
    assert sorted(OTHER) == sorted(_MEANINGFUL)


@pytest.mark.parametrize("name", sorted(OTHER))
def test_a_change_of_any_meaningful_field_is_news(name: str) -> None:
    changed = replace(FULL, **{name: OTHER[name]})
    assert changed.differs(FULL, 5.0)
    assert FULL.differs(changed, 5.0)


def test_the_same_state_a_round_later_is_no_news() -> None:
    later = replace(FULL, time=FULL.time + 2, reason="another reason", received=99.0, sent=0.0,
                    containers=tuple(FULL.containers), control=dict(FULL.control or {}))  # fmt: skip
    assert not later.differs(FULL, 5.0)


@pytest.mark.parametrize(
    ("cpu", "news"),
    [(84.0, False), (76.5, False), (85.5, True), (70.0, True), (None, True)],
    ids=["up within the band", "down within it", "up past it", "down past it", "no reading"],
)
def test_cpu_is_news_once_it_moves_past_the_band(cpu: float | None, news: bool) -> None:
    assert replace(FULL, cpu=cpu).differs(FULL, 5.0) is news


def test_the_cpu_of_replicas_held_at_their_limit_is_news_once_they_are_not() -> None:
    """Replicas held at their CPU limit read about 100 % with a jitter that says nothing new;
    once they are no longer held (or were not), a move past the band is news again."""
    held = replace(FULL, cpu=101.0, saturated=True)
    assert not replace(held, cpu=88.0).differs(held, 5.0)
    assert not replace(held, cpu=115.0).differs(held, 5.0)
    assert replace(held, cpu=88.0, saturated=False).differs(held, 5.0)
    assert not replace(held, saturated=False).differs(held, 5.0)  # the flag alone rides along
    assert replace(held, cpu=88.0, memory=30.0).differs(held, 5.0)  # memory still counts
    free = replace(FULL, cpu=101.0, saturated=False)
    assert replace(free, cpu=88.0).differs(free, 5.0)


def sample(
    container: str, cpu: float | None, memory: float | None, *, ready: bool = True
) -> ReplicaSample:
    return ReplicaSample(container_id=container, cpu=cpu, memory=memory, ready=ready)


def test_an_evaluation_averages_the_ready_replicas_readings() -> None:
    unready = sample("c", 99.0, 99.0, ready=False)
    samples = (sample("a", 40.0, 10.0), sample("b", 80.0, None), unready)
    decision = Decision(current=3, desired=3, reason="holding")
    evaluation = Evaluation(1.0, decision, samples, {})
    assert evaluation.cpu == 60.0
    assert evaluation.memory == 10.0


def test_an_evaluation_without_a_ready_reading_has_no_averages() -> None:
    decision = Decision(current=1, desired=1, reason="no data")
    evaluation = Evaluation(1.0, decision, (sample("a", None, None),), {})
    assert evaluation.cpu is None
    assert evaluation.memory is None
