"""Metric sources: payloads to numbers, labels to a source, a source's value to a count."""

from __future__ import annotations

import pytest

from autoscaler.errors import LabelError
from autoscaler.labels import ServiceKey
from autoscaler.signals.sources import parse
from autoscaler.spec import parse as parse_labels
from policies import registry
from policies.base import PolicyInput, ReplicaSample, Signal
from policies.behavior import Behavior

KEY = ServiceKey("shop", "worker")
BASE = {
    "com.docker.compose.project": "shop",
    "com.docker.compose.service": "worker",
    "autoscaler.enable": "true",
    "autoscaler.max": "10",
}
MQTT = {"autoscaler.metric.source": "mqtt", "autoscaler.metric.topic": "q/jobs",
        "autoscaler.metric.target": "10"}  # fmt: skip


@pytest.mark.parametrize(
    ("payload", "field", "value"),
    [
        pytest.param(b"42", None, 42.0, id="a-number"),
        pytest.param(b" 4.5\n", None, 4.5, id="spaces"),
        pytest.param(b'{"queue": {"depth": 7}}', "queue.depth", 7.0, id="a-json-path"),
    ],
)
def test_a_payload_is_a_number_or_json_with_the_number_at_a_path(
    payload: bytes, field: str | None, value: float
) -> None:
    assert parse(payload, field) == value


@pytest.mark.parametrize(
    ("payload", "field", "words"),
    [
        pytest.param(b"lots", None, "payload 'lots' is not a number", id="text"),
        pytest.param(b"nan", None, "not a finite number", id="nan"),
        pytest.param(b"[1]", "depth", "has no depth", id="not-an-object"),
        pytest.param(b'{"depth": "7"}', "depth", "depth in payload", id="a-string"),
        pytest.param(b'{"depth": true}', "depth", "is not a number", id="a-bool"),
        pytest.param(b"{oops", "depth", "is not JSON", id="broken-json"),
    ],
)
def test_a_payload_that_is_not_a_number_says_why(
    payload: bytes, field: str | None, words: str
) -> None:
    with pytest.raises(ValueError, match=words):
        parse(payload, field)


@pytest.mark.parametrize(
    ("labels", "label", "words"),
    [
        pytest.param({"autoscaler.metric.source": "mqtt", "autoscaler.metric.target": "5"}, "autoscaler.metric.topic", "required with metric.source=mqtt", id="mqtt-without-topic"),
        pytest.param({"autoscaler.metric.source": "prometheus", "autoscaler.metric.url": "http://p:9090", "autoscaler.metric.target": "5"}, "autoscaler.metric.query", "required", id="prometheus-without-query"),
        pytest.param(MQTT | {"autoscaler.metric.url": "http://p:9090"}, "autoscaler.metric.url", "not for metric.source=mqtt", id="a-url-for-mqtt"),
        pytest.param({"autoscaler.metric.source": "kafka", "autoscaler.metric.target": "5"}, "autoscaler.metric.source", "mqtt", id="unknown-source"),
        pytest.param({k: v for k, v in MQTT.items() if k != "autoscaler.metric.target"}, "autoscaler.metric.source", "needs metric.target", id="source-without-target"),
        pytest.param({"autoscaler.metric.target": "5"}, "autoscaler.metric.target", "needs metric.source", id="target-without-source"),
        pytest.param(MQTT | {"autoscaler.metric.target": "0"}, "autoscaler.metric.target", "greater than 0", id="zero-target"),
        pytest.param({}, "autoscaler.cpu.target", "required (or metric.target", id="no-target-at-all"),
    ],
)  # fmt: skip
def test_bad_metric_labels_are_label_errors(labels: dict[str, str], label: str, words: str) -> None:
    with pytest.raises(LabelError) as caught:
        parse_labels(KEY, BASE | labels)
    assert caught.value.label == label
    assert words in str(caught.value)


def test_a_metric_alone_is_enough_and_its_source_is_parsed() -> None:
    spec = parse_labels(KEY, BASE | MQTT | {"autoscaler.metric.max-age": "30s"})
    assert spec.metric is not None
    assert (spec.metric.source, spec.metric.topic, spec.metric.max_age) == ("mqtt", "q/jobs", 30)
    assert spec.metric.name == "mqtt q/jobs"


def decide(current: int, value: float | None, *cpu: float, error: str | None = None,
           **labels: str) -> int:  # fmt: skip
    policy, options = registry.build(
        "target-tracking",
        {"metric.target": "10", "scale-up.max-replicas": "10",
         "scale-down.stabilization": "0", **labels},
    )  # fmt: skip
    samples = tuple(ReplicaSample(f"c{i}", v) for i, v in enumerate(cpu))
    signal = Signal("mqtt q", value, error=error)
    inputs = PolicyInput(current, 1, 20, samples, now=0.0, signal=signal)
    return Behavior(options).decide(inputs, policy.propose(inputs)).desired


@pytest.mark.parametrize(
    ("current", "value", "cpu", "labels", "desired"),
    [
        pytest.param(1, 90.0, (), {}, 9, id="ceil-of-value-over-target"),
        pytest.param(4, 41.0, (), {}, 4, id="within-tolerance-holds"),
        pytest.param(4, 45.0, (), {}, 5, id="past-the-tolerance"),
        pytest.param(5, 3.0, (), {"metric.activation": "5"}, 1, id="below-activation-asks-for-min"),
        pytest.param(5, 20.0, (), {}, 2, id="a-drop-scales-down"),
        pytest.param(2, 50.0, (50.0, 50.0), {"cpu.target": "50"}, 5, id="the-metric-asks-more-than-cpu"),
        pytest.param(2, 10.0, (100.0, 100.0), {"cpu.target": "50"}, 4, id="cpu-asks-more-than-the-metric"),
    ],
)  # fmt: skip
def test_the_metric_is_the_hpas_average_value_rule(
    current: int, value: float, cpu: tuple[float, ...], labels: dict[str, str], desired: int
) -> None:
    assert decide(current, value, *cpu, **labels) == desired


@pytest.mark.parametrize(
    ("cpu", "labels", "desired"),
    [
        pytest.param((), {}, 5, id="alone-it-holds"),
        # CPU would go down to 1; a missing metric holds any scale-down.
        pytest.param((5.0,) * 5, {"cpu.target": "50"}, 5, id="no-scale-down-with-cpu"),
        # But a scale-up CPU asks for goes ahead.
        pytest.param((100.0,) * 5, {"cpu.target": "50"}, 10, id="cpu-may-still-scale-up"),
    ],
)
def test_a_missing_metric_never_lets_the_count_fall(
    cpu: tuple[float, ...], labels: dict[str, str], desired: int
) -> None:
    assert decide(5, None, *cpu, error="no value for longer than its max age", **labels) == desired
