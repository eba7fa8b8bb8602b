"""An operator's command, as the API and MQTT hand it over: parsed into a control or refused
naming the field; a control bends the spec (pause, hold within min and max), ends on its own,
and survives its record on the engine; whatever JSON arrives, the parser answers with a control
or a ControlError."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autoscaler.control import spec as specs
from autoscaler.control.controls import Control, ControlError, check, command
from autoscaler.labels import ServiceKey
from autoscaler.sources.registry import OPTIONS

KEY = ServiceKey("shop", "web")
SPEC = specs.parse(KEY, {
    "com.docker.compose.project": "shop", "com.docker.compose.service": "web",
    "autoscaler.enable": "true", "autoscaler.min": "2", "autoscaler.max": "10",
    "autoscaler.cpu.target": "60",
}, OPTIONS)  # fmt: skip
NOW = 1_000_000.0


def test_a_hold_for_two_hours_is_a_control_that_ends_two_hours_later() -> None:
    name, control = command(
        {"service": "shop/web", "action": "hold", "replicas": 8, "for": "2h", "who": "alice",
         "why": "launch"}, wall=NOW,
    )  # fmt: skip
    assert name == "shop/web"
    assert (control.action, control.replicas, control.until) == ("hold", 8, NOW + 7200)
    assert (control.who, control.why) == ("alice", "launch")
    assert control.in_force(NOW + 7199) and not control.in_force(NOW + 7200)
    assert control.describe() == "held at 8 for 2h by alice (launch)"


def test_a_pause_without_for_lasts_until_resumed_and_names_the_default_who() -> None:
    _, control = command({"service": "web", "action": "pause"}, wall=NOW, who="mqtt")
    assert (control.until, control.who) == (None, "mqtt")
    assert control.in_force(NOW + 10 * 365 * 86400)


def test_a_resume_is_never_in_force() -> None:
    _, control = command({"service": "web", "action": "resume", "for": "1h"}, wall=NOW)
    assert control.action == "resume" and control.until is None
    assert not control.in_force(NOW)


def test_a_pause_bends_the_spec_to_paused_and_a_hold_to_min_and_max_both_its_count() -> None:
    pause = Control("pause", since=NOW)
    assert pause.applied(SPEC).paused and (
        pause.applied(SPEC).minimum,
        pause.applied(SPEC).maximum,
    ) == (2, 10)
    held = Control("hold", since=NOW, replicas=8).applied(SPEC)
    assert (held.minimum, held.maximum, held.paused) == (8, 8, False)
    # A schedule may have moved the bounds since the hold was set: the hold stays within them.
    assert Control("hold", since=NOW, replicas=12).applied(SPEC).maximum == 10
    assert Control("resume", since=NOW).applied(SPEC) is SPEC
    # A hold wins over the label's pause while it lasts; a pause or resume leaves it as it is.
    paused = dataclasses.replace(SPEC, paused=True)
    assert not Control("hold", since=NOW, replicas=4).applied(paused).paused
    assert Control("resume", since=NOW).applied(paused).paused


@pytest.mark.parametrize(
    ("body", "words"),
    [
        pytest.param([], "a JSON object", id="not-an-object"),
        pytest.param({"action": "pause"}, "service:", id="no-service"),
        pytest.param({"service": " ", "action": "pause"}, "service:", id="blank-service"),
        pytest.param({"service": "web", "action": "stop"}, "action: expected one of pause, hold, resume", id="unknown-action"),
        pytest.param({"service": "web", "action": "hold"}, "replicas: a hold needs", id="hold-without-count"),
        pytest.param({"service": "web", "action": "hold", "replicas": -1}, "replicas:", id="hold-negative"),
        pytest.param({"service": "web", "action": "hold", "replicas": 2.5}, "replicas:", id="hold-fraction"),
        pytest.param({"service": "web", "action": "hold", "replicas": True}, "replicas:", id="hold-bool"),
        pytest.param({"service": "web", "action": "pause", "for": "soon"}, "for: expected a duration", id="for-text"),
        pytest.param({"service": "web", "action": "pause", "for": 0}, "for: expected a duration above zero", id="for-zero"),
        pytest.param({"service": "web", "action": "pause", "for": "nan"}, "for:", id="for-nan"),
        pytest.param({"service": "web", "action": "pause", "for": 10**400}, "for:", id="for-no-float-holds"),
        pytest.param({"service": "web", "action": "pause", "for": 1e12}, "at most a year", id="for-past-a-year"),
        pytest.param({"service": "web", "action": "pause", "who": 5}, "who, why and id", id="who-number"),
    ],
)  # fmt: skip
def test_a_bad_command_is_refused_naming_its_field(body: Any, words: str) -> None:
    with pytest.raises(ControlError, match=words) as caught:
        command(body, wall=NOW)
    assert caught.value.status == 400


def test_a_hold_outside_the_labels_min_and_max_is_refused_naming_them() -> None:
    check(Control("hold", since=NOW, replicas=10), SPEC, "shop/web")
    check(Control("pause", since=NOW), SPEC, "shop/web")
    with pytest.raises(ControlError, match=r"hold 11 is outside its min and max \(2..10"):
        check(Control("hold", since=NOW, replicas=11), SPEC, "shop/web")
    with pytest.raises(ControlError, match="hold 1 is outside"):
        check(Control("hold", since=NOW, replicas=1), SPEC, "shop/web")


def test_a_control_survives_its_record_and_a_record_that_cannot_be_read_is_none() -> None:
    control = Control("hold", since=NOW, until=NOW + 60, replicas=4, who="bob", why="x", id="c1")
    assert Control.from_record(control.record("shop/web")) == control
    assert control.record("shop/web")["autoscaler.control.service"] == "shop/web"
    assert Control.from_record({}) is None
    assert Control.from_record({"autoscaler.control.record": "{"}) is None
    assert (
        Control.from_record({"autoscaler.control.record": '{"action": "stop", "since": 1}'}) is None
    )
    assert (
        Control.from_record({"autoscaler.control.record": '{"action": "hold", "since": "x"}'})
        is None
    )


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
FIELDS = st.fixed_dictionaries({}, optional={
    "service": JSON | st.text(max_size=12), "action": JSON | st.sampled_from(["pause", "hold", "resume"]),
    "replicas": JSON, "for": JSON | st.sampled_from(["30m", "2h", "0s", "1y"]), "who": JSON,
    "why": JSON, "id": JSON,
})  # fmt: skip


@given(FIELDS | JSON)
def test_whatever_json_arrives_the_answer_is_a_control_or_a_control_error(body: Any) -> None:
    try:
        name, control = command(body, wall=NOW)
    except ControlError as exc:
        assert exc.status == 400 and str(exc)
        return
    assert name and control.action in ("pause", "hold", "resume")
    assert Control.from_record(control.record(name)) == control
